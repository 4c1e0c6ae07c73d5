//! `collabgpu train`: flags -> validated [`TrainConfig`] -> load, split, train, report, save.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use collabgpu::atomic_file::{OutputError, check_output, resolve};
use collabgpu::backends::{BackendChoice, OpenedBackend};
use collabgpu::cpu::backend::mean_squared_error;
use collabgpu::data::split::{Fold, SplitKind};
use collabgpu::data::synth::Truth;
use collabgpu::data::{Dataset, SplitData, noise_floor, split_dataset, split_dataset_fold};
use collabgpu::files::{Checkpoint, EpochLine, LogFile, ModelFile, TrainingSplit, fold_path};
use collabgpu::gpu::GpuOptions;
use collabgpu::model::Params;
use collabgpu::train::{
    self, BatchOrder, EpochReport, MemoryEstimate, OptimizerKind, Placement, Position, Progress,
    Recipe, RunControl, ScheduleKind, Snapshot, TrainConfig, TrainError, TrainReport,
};
use serde_json::json;

use super::data_args::DataArgs;
use super::folds::{self, FoldMetric};

/// Arguments of `collabgpu train`. Defaults are SPEC's default recipe (fastai's chapter 8).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Which backend trains.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,

    /// The named recipe that sets every training flag below that you do not give: `fastai`
    /// (fastai's chapter 8: adamw, one-cycle, lr 5e-3, wd 0.1, K 50, B 64, 5 epochs) or `ml-25m`
    /// (the tuned recipe for large data sets; `collabgpu help train` and README list its values).
    /// Flags you give win over the recipe's.
    #[arg(long, value_enum, default_value_t = RecipeArg::Fastai)]
    pub recipe: RecipeArg,

    /// `K`, the number of latent factors [default: the recipe's; fastai 50].
    #[arg(long)]
    pub factors: Option<usize>,

    /// Passes over the training ratings [default: the recipe's; fastai 5].
    #[arg(long)]
    pub epochs: Option<usize>,

    /// The peak learning rate of one-cycle, or the learning rate of a constant schedule
    /// [default: the recipe's; fastai 5e-3].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,

    /// Weight decay: decoupled for adamw and sparse-adam, lazy for sgd; rowwise-adagrad has none
    /// (use --l2) [default: the recipe's; fastai 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub wd: Option<f32>,

    /// L2 per occurrence `λ`: each time a row occurs in a batch the loss is charged
    /// `(λ / B) |row|^2` (LibMF's regularisation), for every optimiser; reported losses stay the
    /// plain MSE [default: the recipe's; fastai 0].
    #[arg(long, allow_negative_numbers = true)]
    pub l2: Option<f32>,

    /// `B`, ratings per batch [default: the recipe's; fastai 64].
    #[arg(long)]
    pub bs: Option<usize>,

    /// The optimiser: dense adamw (fastai's), or one of the sparse ones, where only the rows of a
    /// batch move: sgd, rowwise-adagrad (one adaptive rate per row, as LibMF), sparse-adam (lazy
    /// Adam) [default: the recipe's; fastai adamw].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,

    /// The learning-rate (and momentum) schedule [default: the recipe's; fastai one-cycle].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,

    /// The order of each epoch's ratings: random (one permutation of all of them), or blocks (a
    /// grid of user x item ranges whose rows fit in a core's cache, visited block by block, every
    /// batch inside one block) [default: the recipe's; fastai random].
    #[arg(long, value_enum)]
    pub order: Option<OrderArg>,

    /// Stop when the validation loss has not improved for N epochs; --out and the summary get the
    /// best epoch's parameters (0: train every epoch, keep the last) [default: the recipe's;
    /// fastai 0].
    #[arg(long, value_name = "N")]
    pub early_stop: Option<usize>,

    /// The prediction range LO,HI of the sigmoid.
    #[arg(
        long,
        value_name = "LO,HI",
        default_value = "0,5.5",
        allow_hyphen_values = true,
        conflicts_with = "no_y_range"
    )]
    pub y_range: String,

    /// Predict the raw score, without a sigmoid range.
    #[arg(long)]
    pub no_y_range: bool,

    /// Standard deviation of the (truncated) normal initialisation.
    #[arg(long, allow_negative_numbers = true, default_value_t = TrainConfig::default().init_std)]
    pub init_std: f32,

    /// Fraction of the ratings held out for validation.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.2)]
    pub valid_pct: f64,

    /// How to choose the validation ratings.
    #[arg(long, value_enum, default_value_t = SplitArg::Random)]
    pub split: SplitArg,

    /// The seed of every random draw (split, initialisation, batch order).
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,

    /// CPU threads (0: one per core). Results are identical for every thread count.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Keep each epoch's last, short batch (fastai drops it).
    #[arg(long)]
    pub keep_last_batch: bool,

    /// Print one JSON object per line: one per epoch, then a summary.
    #[arg(long)]
    pub json: bool,

    /// Save the trained model here (safetensors, with the ids and configuration as metadata).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// With `--backend gpu`: use the adapter whose name contains NAME (case-insensitive; see
    /// `collabgpu info`). `WGPU_ADAPTER_NAME` when unset.
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,

    /// With `--backend gpu`: the graphics API wgpu uses. `WGPU_BACKEND` when unset, else any.
    #[arg(long, value_enum)]
    pub wgpu_backend: Option<WgpuBackendArg>,

    /// Save a checkpoint (parameters, optimiser state, position, data fingerprint) here every
    /// `--checkpoint-every` epochs and on Ctrl-C, SIGTERM or SIGHUP. Written atomically; a write
    /// that fails (a full disk) is a warning, and the previous checkpoint stays.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,

    /// Epochs between checkpoints (0: only on Ctrl-C).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "checkpoint")]
    pub checkpoint_every: usize,

    /// Continue a run from a checkpoint. The data, split and every flag that decides the model must
    /// be those of the run that wrote it; the backend, threads and output flags may differ.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,

    /// Append one JSON line per epoch (epoch, train_loss, valid_loss, valid_rmse, seconds) to
    /// FILE, the format `collabgpu plot --log` reads. Started afresh unless `--resume` is given,
    /// which cuts it back to the checkpoint's epoch (no half or repeated line) and appends.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// No progress bar and no epoch table; only the final line (or the JSON summary).
    #[arg(long, short)]
    pub quiet: bool,

    /// Cross-validate: train K models, each holding out one of K equal parts of the ratings (the
    /// random split's seeded permutation cut into K blocks; fold 1 of 5 is the default split),
    /// and report the mean and spread of their final metrics, as Surprise's cross_validate does.
    /// With --out m.safetensors fold N's model is saved as m.foldN.safetensors, which
    /// `eval --model m.safetensors --folds K` scores.
    #[arg(
        long,
        value_name = "K",
        conflicts_with_all = ["resume", "checkpoint", "log", "valid_pct", "split"]
    )]
    pub folds: Option<usize>,

    /// The fold this run holds out: set by --folds for each of its runs.
    #[arg(skip)]
    pub fold: Option<Fold>,
}

/// `--wgpu-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WgpuBackendArg {
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl WgpuBackendArg {
    /// The name `GpuOptions::wgpu_backend` takes.
    fn name(self) -> &'static str {
        match self {
            WgpuBackendArg::Vulkan => "vulkan",
            WgpuBackendArg::Metal => "metal",
            WgpuBackendArg::Dx12 => "dx12",
            WgpuBackendArg::Gl => "gl",
        }
    }
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    Cpu,
    Gpu,
}

/// `--optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    Adamw,
    Sgd,
    RowwiseAdagrad,
    SparseAdam,
}

impl OptimizerArg {
    /// The library's optimiser of the same name.
    pub fn kind(self) -> OptimizerKind {
        match self {
            OptimizerArg::Adamw => OptimizerKind::AdamW,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::RowwiseAdagrad => OptimizerKind::RowwiseAdagrad,
            OptimizerArg::SparseAdam => OptimizerKind::SparseAdam,
        }
    }
}

/// `--recipe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecipeArg {
    Fastai,
    #[value(name = "ml-25m")]
    Ml25m,
}

/// `--order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OrderArg {
    Random,
    Blocks,
}

/// `--schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleArg {
    OneCycle,
    Constant,
}

/// `--split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    Random,
    Time,
}

impl TrainArgs {
    /// The validated library configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        let y_range = if self.no_y_range {
            None
        } else {
            Some(parse_y_range(&self.y_range).context("--y-range")?)
        };
        let recipe = match self.recipe {
            RecipeArg::Fastai => Recipe::Fastai,
            RecipeArg::Ml25m => Recipe::Ml25m,
        }
        .config();
        let config = TrainConfig {
            factors: self.factors.unwrap_or(recipe.factors),
            epochs: self.epochs.unwrap_or(recipe.epochs),
            lr: self.lr.unwrap_or(recipe.lr),
            wd: self.wd.unwrap_or(recipe.wd),
            l2: self.l2.unwrap_or(recipe.l2),
            batch_size: self.bs.unwrap_or(recipe.batch_size),
            optimizer: self.optimizer.map_or(recipe.optimizer, OptimizerArg::kind),
            schedule: self.schedule.map_or(recipe.schedule, |s| match s {
                ScheduleArg::OneCycle => ScheduleKind::OneCycle,
                ScheduleArg::Constant => ScheduleKind::Constant,
            }),
            order: self.order.map_or(recipe.order, |o| match o {
                OrderArg::Random => BatchOrder::Random,
                OrderArg::Blocks => BatchOrder::Blocks,
            }),
            early_stop: self.early_stop.unwrap_or(recipe.early_stop),
            y_range,
            init_std: self.init_std,
            seed: self.seed,
            drop_last: !self.keep_last_batch,
            ..recipe
        };
        config.validate()?;
        Ok(config)
    }
}

/// `LO,HI` as two numbers.
fn parse_y_range(text: &str) -> anyhow::Result<(f32, f32)> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [lo, hi] = parts.as_slice() else {
        bail!("expected LO,HI (e.g. 0,5.5), got {text:?}");
    };
    let number = |s: &str| {
        s.parse::<f32>().with_context(|| {
            format!("{s:?} in {text:?} is not a number (expected LO,HI, e.g. 0,5.5)")
        })
    };
    Ok((number(lo)?, number(hi)?))
}

/// Set by the first Ctrl-C, SIGTERM or SIGHUP: the epoch loop stops after the current run of
/// batches and the run writes a checkpoint.
static STOP: AtomicBool = AtomicBool::new(false);

/// The first Ctrl-C, SIGTERM (schedulers, `docker stop`) or SIGHUP (a closed terminal) asks the
/// loop to stop and checkpoint; a second one exits at once, removing any temporary file a write
/// in progress had made ([`collabgpu::atomic_file`]).
fn install_signal_handler() -> anyhow::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            let _ = writeln!(
                std::io::stderr(),
                "\nsecond interrupt: exiting without a checkpoint"
            );
            collabgpu::atomic_file::exit_removing_temporaries(130);
        }
        let _ = writeln!(
            std::io::stderr(),
            "\ninterrupted (Ctrl-C, SIGTERM or SIGHUP): stopping after the current batch and writing a checkpoint (interrupt again to quit at once)"
        );
    })
    .context("installing the handler of Ctrl-C, SIGTERM and SIGHUP")
}

/// A warning on stderr; a closed stderr is no reason to stop a run.
fn warn(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "warning: {message}");
}

/// Checks every file the run may write before any work: `--out`, `--checkpoint`, `--log` and the
/// checkpoint an interrupted run writes must each be a regular file (or a link to one) or a new
/// name in a writable directory, and no two may be one file. See [`collabgpu::atomic_file`].
fn check_outputs(args: &TrainArgs) -> anyhow::Result<()> {
    let mut seen: Vec<(&str, &Path, PathBuf)> = Vec::new();
    let flags = [
        ("--out", &args.out),
        ("--checkpoint", &args.checkpoint),
        ("--log", &args.log),
    ];
    for (flag, path) in flags {
        let Some(path) = path else { continue };
        let target = check_output(path).with_context(|| format!("{flag} {}", path.display()))?;
        if let Some((other, other_path, _)) = seen.iter().find(|(_, _, t)| *t == target) {
            bail!(
                "{flag} {} and {other} {} are the same file; give each output its own path",
                path.display(),
                other_path.display()
            );
        }
        seen.push((flag, path, target));
    }
    if let Some(resume) = &args.resume
        && let Ok(target) = resolve(resume)
        && let Some((flag, path, _)) = seen
            .iter()
            .find(|(flag, _, t)| *flag != "--checkpoint" && *t == target)
    {
        bail!(
            "{flag} {} would overwrite the checkpoint --resume {} continues from; write it elsewhere",
            path.display(),
            resume.display()
        );
    }
    if args.checkpoint.is_none() {
        let path = interrupt_checkpoint_path(args);
        match check_output(&path) {
            Ok(target) => {
                if let Some((flag, other, _)) = seen.iter().find(|(_, _, t)| *t == target) {
                    bail!(
                        "{flag} {} is where an interrupted run saves its checkpoint; choose another name or pass --checkpoint FILE",
                        other.display()
                    );
                }
            }
            Err(error @ OutputError::NotAFile { .. }) => {
                return Err(error).context(
                    "the checkpoint an interrupted run writes; pass --checkpoint FILE to choose another",
                );
            }
            Err(error) => warn(format!(
                "an interrupted run could not save its checkpoint: {error}; pass --checkpoint FILE to choose a writable place"
            )),
        }
    }
    Ok(())
}

/// Stdout for the epoch table, the JSON lines and the summary. A failed write stops the printing,
/// never the run: a closed pipe (`train | head -3`) quietly, any other error (a full disk) with a
/// report once the model is saved.
struct Printer<'a> {
    out: std::io::StdoutLock<'a>,
    closed: bool,
    failed: Option<std::io::Error>,
}

impl Printer<'_> {
    fn new() -> Self {
        Printer {
            out: std::io::stdout().lock(),
            closed: false,
            failed: None,
        }
    }

    /// Prints `text` and a newline, above the progress bar when there is one.
    fn print(&mut self, bar: Option<&indicatif::ProgressBar>, text: &str) {
        if self.closed {
            return;
        }
        let out = &mut self.out;
        let mut write = || writeln!(out, "{text}").and_then(|()| out.flush());
        let written = match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        if let Err(e) = written {
            self.closed = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.failed = Some(e);
            }
        }
    }
}

/// What became of the periodic checkpoints: the epochs the file holds, and the last failure while
/// no later write succeeded.
#[derive(Default)]
struct CheckpointRecord {
    saved_epochs: Option<usize>,
    failed: Option<String>,
}

/// Where an interrupted run writes its checkpoint: `--checkpoint`, else beside `--out`, else in
/// the current directory.
fn interrupt_checkpoint_path(args: &TrainArgs) -> PathBuf {
    if let Some(path) = &args.checkpoint {
        return path.clone();
    }
    match &args.out {
        Some(out) => {
            let mut name = out.file_name().unwrap_or_default().to_os_string();
            name.push(".ckpt");
            out.with_file_name(name)
        }
        None => PathBuf::from("collabgpu-interrupted.ckpt"),
    }
}

/// This very command line with `--resume CHECKPOINT` in place of any earlier `--resume`, quoted
/// for a POSIX shell.
fn resume_command(checkpoint: &Path) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--resume" {
            args.next();
        } else if !arg.starts_with("--resume=") {
            words.push(arg);
        }
    }
    words.push("--resume".into());
    words.push(checkpoint.display().to_string());
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@%+".contains(c));
    match plain {
        true => word.to_string(),
        false => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

impl TrainArgs {
    /// The backend `--backend` names, with its settings.
    fn backend_choice(&self) -> anyhow::Result<BackendChoice> {
        match self.backend {
            BackendArg::Cpu => {
                if self.adapter.is_some() || self.wgpu_backend.is_some() {
                    bail!("--adapter and --wgpu-backend choose a GPU; add --backend gpu");
                }
                Ok(BackendChoice::Cpu {
                    threads: self.threads,
                })
            }
            BackendArg::Gpu => Ok(BackendChoice::Gpu(GpuOptions {
                adapter: self.adapter.clone(),
                wgpu_backend: self.wgpu_backend.map(|b| b.name().to_string()),
                ..GpuOptions::default()
            })),
        }
    }

    fn split_kind(&self) -> SplitKind {
        match self.split {
            SplitArg::Random => SplitKind::Random,
            SplitArg::Time => SplitKind::Time,
        }
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    match args.folds {
        Some(count) => cross_validate(args, count),
        None => run_one(args, None).map(drop),
    }
}

/// `train --folds K`: one run per fold on the data read once, then the mean and spread.
fn cross_validate(args: &TrainArgs, count: usize) -> anyhow::Result<()> {
    if !(2..=100).contains(&count) {
        bail!("--folds must be 2 to 100 (5 is usual), got {count}");
    }
    let runs: Vec<TrainArgs> = (0..count)
        .map(|index| {
            let mut run = args.clone();
            run.folds = None;
            run.fold = Some(Fold { index, count });
            run.out = args.out.as_deref().map(|out| fold_path(out, index));
            run
        })
        .collect();
    for run in &runs {
        if let Some(out) = &run.out {
            check_output(out).with_context(|| format!("--out (fold model {})", out.display()))?;
        }
    }
    let options = args.data.load_options()?;
    let loaded = collabgpu::data::load::load_with_truth(&args.data.data, &options)
        .with_context(|| format!("cannot read --data {}", args.data.data))?;
    let mut reports = Vec::with_capacity(count);
    for (index, run) in runs.iter().enumerate() {
        if !args.json {
            println!(
                "{}fold {} of {count}:",
                if index == 0 { "" } else { "\n" },
                index + 1
            );
        }
        let report = run_one(run, Some(&loaded))?
            .expect("a fold run starts from scratch, never from a finished checkpoint");
        reports.push(report);
    }
    let metric = |name: &str, values: Vec<Option<f64>>| FoldMetric {
        name: name.to_string(),
        values,
    };
    let valid: Vec<Option<f64>> = reports.iter().map(|r| r.final_valid_loss()).collect();
    let rows = [
        metric("valid_loss", valid.clone()),
        metric(
            "valid_rmse",
            valid.iter().map(|v| v.map(f64::sqrt)).collect(),
        ),
        metric(
            "train_loss",
            reports
                .iter()
                .map(|r| r.epochs.last().map(|e| e.train_loss))
                .collect(),
        ),
        metric(
            "seconds",
            reports.iter().map(|r| Some(r.train_seconds)).collect(),
        ),
    ];
    let mut out = std::io::stdout().lock();
    if args.json {
        let line = json!({
            "type": "cross_validation",
            "folds": count,
            "metrics": folds::metrics_json(&rows),
            "out": runs.iter().map(|r| r.out.as_ref().map(|p| p.display().to_string())).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "\n{count}-fold cross-validation (std: the population standard deviation, as Surprise reports):"
    )?;
    folds::write_table(&mut out, &rows)?;
    Ok(())
}

/// One training run (one fold of `--folds`, or the whole of a plain `train`); `preloaded` is
/// the data when a cross-validation has read it already. `None` when it resumed a finished
/// checkpoint.
fn run_one(
    args: &TrainArgs,
    preloaded: Option<&(Dataset, Option<Truth>)>,
) -> anyhow::Result<Option<TrainReport>> {
    let config = args.config()?;
    if !(0.0..1.0).contains(&args.valid_pct) {
        bail!("--valid-pct must lie in [0, 1), got {}", args.valid_pct);
    }
    check_outputs(args)?;
    // From here on a signal stops the run with a checkpoint instead of killing it.
    install_signal_handler()?;
    let (dataset, own_truth) = match preloaded {
        Some((dataset, _)) => (dataset.clone(), None),
        None => {
            let options = args.data.load_options()?;
            collabgpu::data::load::load_with_truth(&args.data.data, &options)
                .with_context(|| format!("cannot read --data {}", args.data.data))?
        }
    };
    let truth = own_truth
        .as_ref()
        .or(preloaded.and_then(|(_, truth)| truth.as_ref()));
    let mut data = match args.fold {
        Some(fold) => split_dataset_fold(dataset, fold, config.seed),
        None => split_dataset(dataset, args.split_kind(), args.valid_pct, config.seed),
    }
    .with_context(|| format!("cannot split --data {}", args.data.data))?;
    data.noise_floor = truth.and_then(|truth| noise_floor(truth, &data.valid));
    check_memory(args, &config, &data)?;

    let (state, start) = match &args.resume {
        Some(path) => {
            let checkpoint = Checkpoint::load(path)?;
            checkpoint.check_resumable(&config, &data.fingerprint, path)?;
            if checkpoint.position.epoch >= config.epochs {
                return finished_checkpoint(args, &config, &data, &checkpoint, path).map(|_| None);
            }
            (checkpoint.state, checkpoint.position)
        }
        None => (
            train::initial_state(&config, data.users(), data.items()),
            Position::default(),
        ),
    };
    let opened = args.backend_choice()?.open()?;
    if let Some(note) = opened.software_note()
        && !args.quiet
    {
        eprintln!("{note}");
    }
    let OpenedBackend {
        mut backend,
        adapter,
        ..
    } = opened;
    let mut log = open_log(args, start)?;

    let mut printer = Printer::new();
    let table = !args.json && !args.quiet;
    if table {
        let mut head = Vec::new();
        write_table_head(&mut head, args, &data, backend.name(), &adapter, start)
            .expect("writing to memory");
        printer.print(None, String::from_utf8_lossy(&head).trim_end());
    }
    // The bar draws on stderr, but only when a person watches stdout too.
    let bar = (!args.json
        && !args.quiet
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal())
    .then(|| {
        // Sized and named before the first report, so it never shows 0/0 or an empty message.
        let per_epoch = train::batches::batches_per_epoch(
            data.train.len(),
            config.batch_size,
            config.drop_last,
        );
        indicatif::ProgressBar::new(per_epoch as u64)
            .with_style(progress_style())
            .with_message(starting_message(start.epoch))
    });
    let mut log_error: Option<(usize, std::io::Error)> = None;
    let mut checkpoints = CheckpointRecord::default();
    // A checkpoint that cannot be written (a full disk) is a warning: the previous one stays, and
    // the run goes on to its model.
    let mut save_checkpoint = |snapshot: &Snapshot| -> Result<(), TrainError> {
        let path = args
            .checkpoint
            .as_ref()
            .expect("checkpoints are only asked for with --checkpoint");
        let saved = Checkpoint {
            config: config.clone(),
            state: snapshot.state.clone(),
            position: snapshot.position,
            data: data.fingerprint,
        }
        .save(path);
        let epochs = snapshot.position.epoch;
        match saved {
            Ok(()) => {
                checkpoints.saved_epochs = Some(epochs);
                checkpoints.failed = None;
            }
            Err(e) => {
                let kept = match checkpoints.saved_epochs {
                    Some(n) => format!("{} keeps the state after {n} epochs", path.display()),
                    None if path.exists() => format!("{} is left as it was", path.display()),
                    None => "there is no checkpoint yet".to_string(),
                };
                warn(format!(
                    "cannot write the checkpoint after {epochs} epochs: {e}; {kept}; training goes on"
                ));
                checkpoints.failed = Some(format!(
                    "the checkpoint after {epochs} epochs could not be written ({e}); {kept}"
                ));
            }
        }
        Ok(())
    };
    let control = RunControl {
        start,
        stop: Some(&STOP),
        checkpoint_every: if args.checkpoint.is_some() {
            args.checkpoint_every
        } else {
            0
        },
        on_checkpoint: Some(&mut save_checkpoint),
        batches_per_call: None,
    };
    let result = train::train_controlled(
        backend.as_mut(),
        &config,
        &state,
        &data.train,
        &data.valid,
        control,
        &mut |progress| match progress {
            Progress::Batches {
                epoch,
                done,
                total,
                running_loss,
                ratings_per_second,
            } => {
                if let Some(bar) = &bar {
                    // Each call draws: length and position in one update, then the text.
                    bar.update(|state| {
                        state.set_len(total as u64);
                        state.set_pos(done as u64);
                    });
                    bar.set_message(format!(
                        "epoch {epoch}: loss {running_loss:.4}, {ratings_per_second:.0} ratings/s"
                    ));
                }
            }
            Progress::Epoch(epoch) => {
                // The next epoch starts from nothing: no batches and none of this epoch's
                // loss or rate, which the bar kept showing until the next epoch's first report.
                if let Some(bar) = &bar {
                    bar.set_message(starting_message(epoch.epoch + 1));
                    bar.set_position(0);
                    bar.reset_eta();
                }
                let line = EpochLine::from(epoch).with_noise_floor(data.noise_floor);
                // The log line comes before the epoch's checkpoint: a resumed run cuts the log
                // back to its checkpoint, so a kill in between repeats no epoch.
                if let Some(file) = &mut log
                    && let Err(e) = file.append(&line)
                {
                    warn(format!(
                        "cannot write epoch {} to --log {}: {e}; the log stops here, training goes on",
                        epoch.epoch,
                        args.log.as_deref().unwrap_or(Path::new("")).display()
                    ));
                    log_error.get_or_insert((epoch.epoch, e));
                    log = None;
                }
                if args.json {
                    printer.print(bar.as_ref(), &line.to_line());
                } else if table {
                    printer.print(bar.as_ref(), &epoch_row(epoch, data.noise_floor));
                }
            }
        },
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error @ TrainError::NonFinite { .. }) => {
            let kept = match &args.checkpoint {
                Some(path) if path.exists() => {
                    format!("; the last good checkpoint {} is unchanged", path.display())
                }
                _ => String::new(),
            };
            return Err(anyhow::anyhow!("{error}{kept}"));
        }
        Err(error) => return Err(error.into()),
    };
    let report = outcome.report;
    if let Some(position) = outcome.stopped_at {
        let checkpoint = Checkpoint {
            config,
            state: report.state,
            position,
            data: data.fingerprint,
        };
        exit_interrupted(args, &mut printer, &checkpoint);
    }

    // The model first: no failed output stream costs the trained model.
    if let Some(path) = &args.out {
        // With --early-stop, the best epoch's parameters.
        model_file(args, &config, &data, report.kept_params())
            .save(path)
            .with_context(|| {
                let kept = match (&args.checkpoint, checkpoints.saved_epochs) {
                    (Some(ck), Some(n)) => {
                        format!(
                            "; the checkpoint {} holds the state after {n} epochs",
                            ck.display()
                        )
                    }
                    _ => String::new(),
                };
                format!("saving the model to --out {}{kept}", path.display())
            })?;
    }
    let mut summary = Vec::new();
    write_summary(&mut summary, args, &config, &data, &report, &adapter)?;
    printer.print(None, String::from_utf8_lossy(&summary).trim_end());

    let mut problems = Vec::new();
    if let Some((epoch, e)) = log_error {
        let path = args.log.as_deref().unwrap_or(Path::new(""));
        problems.push(format!(
            "--log {}: cannot write epoch {epoch} ({e}); the log holds the epochs before it",
            path.display()
        ));
    }
    if let Some(e) = printer.failed.take() {
        problems.push(format!(
            "cannot write to stdout ({e}); the printing stopped there"
        ));
    }
    if let Some(failed) = checkpoints.failed {
        problems.push(failed);
    }
    if !problems.is_empty() {
        let saved = match &args.out {
            Some(path) => format!(" (the model was saved to {})", path.display()),
            None => String::new(),
        };
        bail!("training finished{saved}, but {}", problems.join("; "));
    }
    Ok(Some(report))
}

/// Refuses a run whose parameters, optimiser state and buffers cannot fit in the available host
/// memory, before any of them is allocated.
fn check_memory(args: &TrainArgs, config: &TrainConfig, data: &SplitData) -> anyhow::Result<()> {
    let placement = match args.backend {
        BackendArg::Cpu => Placement::Cpu,
        BackendArg::Gpu => Placement::Gpu,
    };
    MemoryEstimate::training(
        config,
        data.users(),
        data.items(),
        data.train.len(),
        placement,
        args.checkpoint.is_some(),
    )
    .check("train", MemoryEstimate::TRAINING_ADVICE)?;
    Ok(())
}

/// `--log`, opened: on `--resume` cut back to the checkpoint's epoch ([`LogFile::resume`]) and
/// appended to, started afresh otherwise.
fn open_log(args: &TrainArgs, start: Position) -> anyhow::Result<Option<LogFile>> {
    let Some(path) = &args.log else {
        return Ok(None);
    };
    let cannot = || format!("cannot open --log {}", path.display());
    if args.resume.is_none() {
        return Ok(Some(LogFile::create(path).with_context(cannot)?));
    }
    let (log, cut) = LogFile::resume(path, start.epoch).with_context(cannot)?;
    if !cut.is_empty() {
        let mut removed = Vec::new();
        if cut.later_epochs > 0 {
            removed.push(format!(
                "{} line(s) of epoch {} or later, written after the checkpoint (this run writes them again)",
                cut.later_epochs, start.epoch
            ));
        }
        if !cut.broken_lines.is_empty() {
            let lines: Vec<String> = cut.broken_lines.iter().map(|n| n.to_string()).collect();
            removed.push(format!(
                "broken line(s) {} (a run killed while writing)",
                lines.join(", ")
            ));
        }
        let _ = writeln!(
            std::io::stderr(),
            "--log {}: removed {}",
            path.display(),
            removed.join(" and ")
        );
    }
    Ok(Some(log))
}

/// The lines above the epoch table: the data, the backend and where a resumed run starts.
fn write_table_head(
    out: &mut impl Write,
    args: &TrainArgs,
    data: &SplitData,
    backend: String,
    adapter: &str,
    start: Position,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} users, {} items, {} training and {} validation ratings; {backend}; adapter: {adapter}",
        data.dataset.source,
        data.users(),
        data.items(),
        data.train.len(),
        data.valid.len(),
    )?;
    if let Some(path) = &args.resume {
        writeln!(
            out,
            "resuming from {} at epoch {}, batch {}",
            path.display(),
            start.epoch,
            start.batch
        )?;
    }
    if let Some(floor) = data.noise_floor {
        writeln!(
            out,
            "noise floor (the planted model's MSE on the validation ratings): {floor:.6}"
        )?;
    }
    let floor_column = match data.noise_floor {
        Some(_) => format!("  {:>7}", "x floor"),
        None => String::new(),
    };
    writeln!(
        out,
        "{:>5}  {:>10}  {:>10}  {:>10}  {:>8}{floor_column}",
        "epoch", "train_loss", "valid_loss", "valid_rmse", "seconds"
    )
}

/// After the first Ctrl-C: saves `checkpoint`, says how to resume and exits with 130.
fn exit_interrupted(args: &TrainArgs, printer: &mut Printer, checkpoint: &Checkpoint) -> ! {
    let path = interrupt_checkpoint_path(args);
    let position = checkpoint.position;
    if let Err(e) = checkpoint.save(&path) {
        let kept = match path.exists() {
            true => format!("; {} is left as it was", path.display()),
            false => String::new(),
        };
        let _ = writeln!(
            std::io::stderr(),
            "error: interrupted: cannot write the checkpoint {}: {e}{kept}",
            path.display()
        );
        std::process::exit(1);
    }
    let command = resume_command(&path);
    if args.json {
        let line = json!({
            "type": "interrupted",
            "epoch": position.epoch,
            "batch": position.batch,
            "checkpoint": path.display().to_string(),
            "resume_command": command,
        });
        printer.print(None, &line.to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "interrupted at epoch {}, batch {}: saved a checkpoint to {}\nresume with: {command}",
        position.epoch,
        position.batch,
        path.display()
    );
    // 130 = 128 + SIGINT, as shells report a run stopped by Ctrl-C (also after SIGTERM or SIGHUP,
    // which ctrlc does not tell apart); the checkpoint is complete.
    std::process::exit(130);
}

/// The last line, or the JSON summary.
fn write_summary(
    out: &mut impl Write,
    args: &TrainArgs,
    config: &TrainConfig,
    data: &SplitData,
    report: &TrainReport,
    adapter: &str,
) -> anyhow::Result<()> {
    // The kept model's: with --early-stop the best epoch's, else the last epoch's.
    let valid_loss = report.kept_valid_loss();
    let best_epoch = report.best.as_ref().map(|b| b.epoch);
    if args.json {
        let summary = json!({
            "type": "summary",
            "valid_loss": valid_loss,
            "valid_rmse": valid_loss.map(f64::sqrt),
            "best_epoch": best_epoch,
            "last_valid_loss": report.final_valid_loss(),
            "stopped_early": report.stopped_early,
            "noise_floor": data.noise_floor,
            "noise_floor_ratio": data.noise_floor.zip(valid_loss).map(|(f, l)| l / f),
            "train_loss": report.epochs.last().map(|e| e.train_loss),
            "backend": report.backend,
            "adapter": adapter,
            "ratings_per_second": report.ratings_per_second(),
            "train_seconds": report.train_seconds,
            "epochs": report.epochs.len(),
            "users": data.users(),
            "items": data.items(),
            "train_ratings": data.train.len(),
            "valid_ratings": data.valid.len(),
            "data": data.dataset.source,
            "config": config.to_json(),
            "out": args.out.as_ref().map(|p| p.display().to_string()),
            "checkpoint": args.checkpoint.as_ref().map(|p| p.display().to_string()),
            "resumed_from": args.resume.as_ref().map(|p| p.display().to_string()),
            "fold": args.fold.map(|f| json!({"number": f.index + 1, "count": f.count})),
        });
        writeln!(out, "{summary}")?;
    } else {
        let valid = valid_loss.map_or("n/a (no validation ratings)".to_string(), |l| {
            let floor = data.noise_floor.map_or(String::new(), |f| {
                format!(", {:.4}x the noise floor {f:.6}", l / f)
            });
            format!("{l:.6} (RMSE {:.6}{floor})", l.sqrt())
        });
        let which = match best_epoch {
            Some(epoch) => format!(
                "best valid_loss (epoch {epoch}{}) ",
                if report.stopped_early {
                    ", stopped early"
                } else {
                    ""
                }
            ),
            None => "final valid_loss ".to_string(),
        };
        writeln!(
            out,
            "{which}{valid}; {} trained {:.0} ratings/s",
            report.backend,
            report.ratings_per_second()
        )?;
        if let Some(path) = &args.out {
            writeln!(out, "saved the model to {}", path.display())?;
        }
    }
    Ok(())
}

/// The model file of `params` trained on `data`: ids, titles, configuration, how the data was
/// split and who rated what in training.
fn model_file(
    args: &TrainArgs,
    config: &TrainConfig,
    data: &SplitData,
    params: &Params,
) -> ModelFile {
    let split = TrainingSplit {
        source: args.data.data.clone(),
        kind: match args.fold {
            Some(_) => SplitKind::Random,
            None => args.split_kind(),
        },
        valid_pct: match args.fold {
            Some(fold) => 1.0 / fold.count as f64,
            None => args.valid_pct,
        },
        seed: config.seed,
        fold: args.fold,
        data: data.fingerprint,
    };
    ModelFile::trained(params.clone(), data, config, split)
}

/// `--resume` of a checkpoint that has trained every epoch: nothing to train, so say so with the
/// model's validation loss, and save it when `--out` asks (it used to print "no validation
/// ratings" and "0 ratings/s").
fn finished_checkpoint(
    args: &TrainArgs,
    config: &TrainConfig,
    data: &SplitData,
    checkpoint: &Checkpoint,
    path: &Path,
) -> anyhow::Result<()> {
    let params = &checkpoint.state.params;
    let mse = mean_squared_error(params, &data.valid, config.y_range)
        .context("starting the evaluation threads")?;
    if let Some(target) = &args.out {
        model_file(args, config, data, params)
            .save(target)
            .with_context(|| format!("saving the model to --out {}", target.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let line = json!({
            "finished": true,
            "checkpoint": path.display().to_string(),
            "epochs": config.epochs,
            "valid_loss": mse,
            "valid_rmse": mse.map(f64::sqrt),
            "out": args.out.as_ref().map(|p| p.display().to_string()),
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    let valid = match mse {
        None => "no validation ratings".to_string(),
        Some(mse) => format!("valid_loss {mse:.6} (RMSE {:.6})", mse.sqrt()),
    };
    writeln!(
        out,
        "{} has finished all {} epochs, so there is nothing to train: {valid}. To train longer, \
         start a new run with a larger --epochs (the schedule depends on the epoch count).",
        path.display(),
        config.epochs
    )?;
    if let Some(target) = &args.out {
        writeln!(out, "saved the model to {}", target.display())?;
    }
    Ok(())
}

/// The bar's message before an epoch's first report.
fn starting_message(epoch: usize) -> String {
    format!("epoch {epoch}: starting")
}

fn progress_style() -> indicatif::ProgressStyle {
    // `wide_bar` takes what the terminal width leaves, so the line never wraps.
    indicatif::ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} batches, {eta} left")
        .expect("a valid template")
        .progress_chars("=> ")
}

/// One row of the fastai-like table; on synthetic data with the validation loss over the noise
/// floor.
fn epoch_row(epoch: &EpochReport, noise_floor: Option<f64>) -> String {
    let valid = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.6}"));
    let ratio = match noise_floor {
        Some(floor) => format!(
            "  {:>7}",
            epoch
                .valid_loss
                .map_or("n/a".to_string(), |l| format!("{:.4}x", l / floor))
        ),
        None => String::new(),
    };
    format!(
        "{:>5}  {:>10.6}  {:>10}  {:>10}  {:>8.2}{ratio}",
        epoch.epoch,
        epoch.train_loss,
        valid(epoch.valid_loss),
        valid(epoch.valid_rmse()),
        epoch.seconds + epoch.eval_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_range_parses_and_rejects_garbage() {
        assert_eq!(parse_y_range("0,5.5").unwrap(), (0.0, 5.5));
        assert_eq!(parse_y_range(" 1 , 5 ").unwrap(), (1.0, 5.0));
        assert!(parse_y_range("5.5").is_err());
        assert!(parse_y_range("a,b").is_err());
    }
}
