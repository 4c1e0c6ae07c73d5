//! `collabgpu train`: flags -> validated [`TrainConfig`] -> load, split, train, report, save.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use collabgpu::backends::{BackendChoice, OpenedBackend};
use collabgpu::data::split::SplitKind;
use collabgpu::data::{SplitData, load_split};
use collabgpu::files::{Checkpoint, EpochLine, ModelFile};
use collabgpu::gpu::GpuOptions;
use collabgpu::train::{
    self, EpochReport, MemoryEstimate, OptimizerKind, Placement, Position, Progress, RunControl,
    ScheduleKind, Snapshot, TrainConfig, TrainError, TrainReport,
};
use serde_json::json;

use super::data_args::DataArgs;

/// Arguments of `collabgpu train`. Defaults are SPEC's default recipe (fastai's chapter 8).
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Which backend trains.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,

    /// `K`, the number of latent factors.
    #[arg(long, default_value_t = TrainConfig::default().factors)]
    pub factors: usize,

    /// Passes over the training ratings.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,

    /// The peak learning rate of one-cycle, or the learning rate of a constant schedule.
    #[arg(long, allow_negative_numbers = true, default_value_t = TrainConfig::default().lr)]
    pub lr: f32,

    /// Weight decay (decoupled for adamw, lazy for sgd).
    #[arg(long, allow_negative_numbers = true, default_value_t = TrainConfig::default().wd)]
    pub wd: f32,

    /// `B`, ratings per batch.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub bs: usize,

    /// The optimiser: dense adamw (fastai's) or sparse sgd.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adamw)]
    pub optimizer: OptimizerArg,

    /// The learning-rate (and momentum) schedule.
    #[arg(long, value_enum, default_value_t = ScheduleArg::OneCycle)]
    pub schedule: ScheduleArg,

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
    /// `--checkpoint-every` epochs and on Ctrl-C. Written atomically.
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
    /// FILE, the format `collabgpu plot --log` reads. Started afresh unless `--resume` is given.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// No progress bar and no epoch table; only the final line (or the JSON summary).
    #[arg(long, short)]
    pub quiet: bool,
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
        let config = TrainConfig {
            factors: self.factors,
            epochs: self.epochs,
            lr: self.lr,
            wd: self.wd,
            batch_size: self.bs,
            optimizer: match self.optimizer {
                OptimizerArg::Adamw => OptimizerKind::AdamW,
                OptimizerArg::Sgd => OptimizerKind::Sgd,
            },
            schedule: match self.schedule {
                ScheduleArg::OneCycle => ScheduleKind::OneCycle,
                ScheduleArg::Constant => ScheduleKind::Constant,
            },
            y_range,
            init_std: self.init_std,
            seed: self.seed,
            drop_last: !self.keep_last_batch,
            ..TrainConfig::default()
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

/// Set by the first Ctrl-C: the epoch loop stops after the current run of batches.
static STOP: AtomicBool = AtomicBool::new(false);

/// The first Ctrl-C asks the loop to stop and checkpoint; a second one exits at once.
fn install_ctrl_c() -> anyhow::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: stopping after the current batch and writing a checkpoint (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")
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
    let config = args.config()?;
    if !(0.0..1.0).contains(&args.valid_pct) {
        bail!("--valid-pct must lie in [0, 1), got {}", args.valid_pct);
    }
    let options = args.data.load_options()?;
    let data = load_split(
        &args.data.data,
        &options,
        args.split_kind(),
        args.valid_pct,
        config.seed,
    )
    .with_context(|| format!("cannot read --data {}", args.data.data))?;
    check_memory(args, &config, &data)?;

    let (state, start) = match &args.resume {
        Some(path) => {
            let checkpoint = Checkpoint::load(path)?;
            checkpoint.check_resumable(&config, &data.fingerprint, path)?;
            (checkpoint.state, checkpoint.position)
        }
        None => (
            train::initial_state(&config, data.users(), data.items()),
            Position::default(),
        ),
    };
    let OpenedBackend {
        mut backend,
        adapter,
    } = args.backend_choice()?.open()?;
    install_ctrl_c()?;
    let mut log = open_log(args)?;

    let mut out = std::io::stdout().lock();
    let table = !args.json && !args.quiet;
    if table {
        write_table_head(&mut out, args, &data, backend.name(), &adapter, start)?;
    }
    // The bar draws on stderr, but only when a person watches stdout too.
    let bar = (!args.json
        && !args.quiet
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal())
    .then(|| indicatif::ProgressBar::new(0).with_style(progress_style()));
    let mut write_error = None;
    let mut save_checkpoint = |snapshot: &Snapshot| -> Result<(), TrainError> {
        let path = args
            .checkpoint
            .as_ref()
            .expect("checkpoints are only asked for with --checkpoint");
        Checkpoint {
            config: config.clone(),
            state: snapshot.state.clone(),
            position: snapshot.position,
            data: data.fingerprint,
        }
        .save(path)
        .map_err(|e| TrainError::Checkpoint(Box::new(e)))
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
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(format!(
                        "epoch {epoch}: loss {running_loss:.4}, {ratings_per_second:.0} ratings/s"
                    ));
                }
            }
            Progress::Epoch(epoch) => {
                if let Some(bar) = &bar {
                    bar.set_position(0);
                    bar.reset_eta();
                }
                let line = EpochLine::from(epoch).to_line();
                if let Some(file) = &mut log
                    && let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush())
                {
                    write_error.get_or_insert(e);
                }
                if !(args.json || table) {
                    return;
                }
                let line = if args.json { line } else { epoch_row(epoch) };
                let written = match &bar {
                    Some(bar) => bar.suspend(|| writeln!(out, "{line}").and_then(|()| out.flush())),
                    None => writeln!(out, "{line}").and_then(|()| out.flush()),
                };
                if let Err(e) = written {
                    write_error.get_or_insert(e);
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
    if let Some(e) = write_error {
        return Err(e).context("writing the epoch table or the --log file");
    }
    let report = outcome.report;
    if let Some(position) = outcome.stopped_at {
        let checkpoint = Checkpoint {
            config,
            state: report.state,
            position,
            data: data.fingerprint,
        };
        exit_interrupted(args, out, &checkpoint);
    }

    if let Some(path) = &args.out {
        ModelFile::new(report.state.params.clone(), &data.dataset, &config)
            .save(path)
            .with_context(|| format!("saving the model to --out {}", path.display()))?;
    }
    write_summary(&mut out, args, &config, &data, &report, &adapter)
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

/// `--log`, opened: appended to on `--resume`, started afresh otherwise.
fn open_log(args: &TrainArgs) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = &args.log else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(args.resume.is_some())
        .truncate(args.resume.is_none())
        .open(path)
        .with_context(|| format!("cannot open --log {}", path.display()))?;
    Ok(Some(file))
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
    writeln!(
        out,
        "{:>5}  {:>10}  {:>10}  {:>10}  {:>8}",
        "epoch", "train_loss", "valid_loss", "valid_rmse", "seconds"
    )
}

/// After the first Ctrl-C: saves `checkpoint`, says how to resume and exits with 130.
fn exit_interrupted(args: &TrainArgs, mut out: impl Write, checkpoint: &Checkpoint) -> ! {
    let path = interrupt_checkpoint_path(args);
    let position = checkpoint.position;
    if let Err(e) = checkpoint.save(&path) {
        eprintln!(
            "error: Ctrl-C: cannot write the checkpoint {}: {e}",
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
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    eprintln!(
        "interrupted at epoch {}, batch {}: saved a checkpoint to {}\nresume with: {command}",
        position.epoch,
        position.batch,
        path.display()
    );
    // 130 = 128 + SIGINT, as shells report a run stopped by Ctrl-C; the checkpoint is complete.
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
    let valid_loss = report.final_valid_loss();
    if args.json {
        let summary = json!({
            "type": "summary",
            "valid_loss": valid_loss,
            "valid_rmse": valid_loss.map(f64::sqrt),
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
        });
        writeln!(out, "{summary}")?;
    } else {
        let valid = valid_loss.map_or("n/a (no validation ratings)".to_string(), |l| {
            format!("{l:.6} (RMSE {:.6})", l.sqrt())
        });
        writeln!(
            out,
            "final valid_loss {valid}; {} trained {:.0} ratings/s",
            report.backend,
            report.ratings_per_second()
        )?;
        if let Some(path) = &args.out {
            writeln!(out, "saved the model to {}", path.display())?;
        }
    }
    Ok(())
}

fn progress_style() -> indicatif::ProgressStyle {
    // `wide_bar` takes what the terminal width leaves, so the line never wraps.
    indicatif::ProgressStyle::with_template("{msg} [{wide_bar}] {pos}/{len} batches, {eta} left")
        .expect("a valid template")
        .progress_chars("=> ")
}

/// One row of the fastai-like table.
fn epoch_row(epoch: &EpochReport) -> String {
    let valid = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.6}"));
    format!(
        "{:>5}  {:>10.6}  {:>10}  {:>10}  {:>8.2}",
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
