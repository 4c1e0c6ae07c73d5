//! `collabgpu train`: flags -> validated [`TrainConfig`] -> load, split, train, report, save.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::model::ModelFile;
use collabgpu::model::file::config_to_json;
use collabgpu::train::{self, EpochReport, OptimizerKind, Progress, ScheduleKind, TrainConfig};
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
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    pub lr: f32,

    /// Weight decay (decoupled for adamw, lazy for sgd).
    #[arg(long, default_value_t = TrainConfig::default().wd)]
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
    #[arg(long, value_name = "LO,HI", default_value = "0,5.5", conflicts_with = "no_y_range")]
    pub y_range: String,

    /// Predict the raw score, without a sigmoid range.
    #[arg(long)]
    pub no_y_range: bool,

    /// Standard deviation of the (truncated) normal initialisation.
    #[arg(long, default_value_t = TrainConfig::default().init_std)]
    pub init_std: f32,

    /// Fraction of the ratings held out for validation.
    #[arg(long, default_value_t = 0.2)]
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
        s.parse::<f32>()
            .with_context(|| format!("{s:?} in {text:?} is not a number (expected LO,HI, e.g. 0,5.5)"))
    };
    Ok((number(lo)?, number(hi)?))
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    if args.backend == BackendArg::Gpu {
        bail!("--backend gpu is not built yet; use --backend cpu");
    }
    if !(0.0..1.0).contains(&args.valid_pct) {
        bail!("--valid-pct must lie in [0, 1), got {}", args.valid_pct);
    }
    let options = args.data.load_options()?;
    let dataset = collabgpu::data::load(&args.data.data, &options)
        .with_context(|| format!("cannot read --data {}", args.data.data))?;
    let split_kind = match args.split {
        SplitArg::Random => SplitKind::Random,
        SplitArg::Time => SplitKind::Time,
    };
    let (train_set, valid_set) = split(&dataset.ratings, split_kind, args.valid_pct, config.seed)?;
    let (users, items) = (dataset.users.len(), dataset.items.len());

    let mut backend = CpuBackend::new(args.threads)?;
    let state = train::initial_state(&config, users, items);
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(
            out,
            "{}: {} users, {} items, {} training and {} validation ratings; {}",
            dataset.source,
            users,
            items,
            train_set.len(),
            valid_set.len(),
            collabgpu::train::Backend::name(&backend)
        )?;
        writeln!(
            out,
            "{:>5}  {:>10}  {:>10}  {:>10}  {:>8}",
            "epoch", "train_loss", "valid_loss", "valid_rmse", "seconds"
        )?;
    }
    let bar = (!args.json && std::io::stderr().is_terminal())
        .then(|| indicatif::ProgressBar::new(0).with_style(progress_style()));
    let mut write_error = None;
    let report = train::train(
        &mut backend,
        &config,
        &state,
        &train_set,
        &valid_set,
        &mut |progress| match progress {
            Progress::Batches { epoch, done, total } => {
                if let Some(bar) = &bar {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(format!("epoch {epoch}"));
                }
            }
            Progress::Epoch(epoch) => {
                if let Some(bar) = &bar {
                    bar.set_position(0);
                }
                let line = if args.json {
                    epoch_json(epoch).to_string()
                } else {
                    epoch_row(epoch)
                };
                let written = match &bar {
                    Some(bar) => {
                        bar.suspend(|| writeln!(out, "{line}").and_then(|()| out.flush()))
                    }
                    None => writeln!(out, "{line}").and_then(|()| out.flush()),
                };
                if let Err(e) = written {
                    write_error.get_or_insert(e);
                }
            }
        },
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(e) = write_error {
        return Err(e).context("writing the epoch table");
    }

    if let Some(path) = &args.out {
        let model = ModelFile {
            params: report.state.params.clone(),
            users: dataset.users.clone(),
            items: dataset.items.clone(),
            titles: dataset.titles.clone(),
            config: config.clone(),
        };
        model
            .save(path)
            .with_context(|| format!("saving the model to --out {}", path.display()))?;
    }

    let valid_loss = report.final_valid_loss();
    if args.json {
        let summary = json!({
            "type": "summary",
            "valid_loss": valid_loss,
            "valid_rmse": valid_loss.map(f64::sqrt),
            "train_loss": report.epochs.last().map(|e| e.train_loss),
            "backend": report.backend,
            "ratings_per_second": report.ratings_per_second(),
            "train_seconds": report.train_seconds,
            "epochs": report.epochs.len(),
            "users": users,
            "items": items,
            "train_ratings": train_set.len(),
            "valid_ratings": valid_set.len(),
            "data": dataset.source,
            "config": config_to_json(&config),
            "out": args.out.as_ref().map(|p| p.display().to_string()),
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
    indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} batches")
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

/// One epoch as a JSON line.
fn epoch_json(epoch: &EpochReport) -> serde_json::Value {
    json!({
        "type": "epoch",
        "epoch": epoch.epoch,
        "train_loss": epoch.train_loss,
        "valid_loss": epoch.valid_loss,
        "valid_rmse": epoch.valid_rmse(),
        "seconds": epoch.seconds + epoch.eval_seconds,
        "train_seconds": epoch.seconds,
        "ratings_per_second": epoch.ratings_per_second,
    })
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
