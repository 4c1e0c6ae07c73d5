//! `collabgpu bench`: the same configuration, data and split trained on every selected backend (the
//! CPU with its thread count, every GPU adapter or the chosen one), each after an untimed warm-up,
//! and one table of ratings/s, seconds per epoch, final validation MSE and speed-up over the CPU.
//!
//! Only the training steps are timed (the epoch loop's own clock, evaluation excluded), so the
//! figures compare the backends' kernels and streaming, not data loading. Progress goes to stderr;
//! stdout carries the table, or one JSON object per backend with `--json`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::SplitKind;
use collabgpu::data::{LoadOptions, Ratings, SplitData, load_split};
use collabgpu::files::ModelFile;
use collabgpu::gpu::{GpuBackend, GpuMemoryReport, GpuOptions, GpuTimings};
use collabgpu::train::{
    self, Backend, MemoryEstimate, Placement, Progress, Recipe, TrainConfig, TrainReport,
};
use serde_json::json;

use super::train::OptimizerArg;

/// Arguments of `collabgpu bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The ratings (a MovieLens directory or ratings file, a cache name, or synthetic:NAME[:SEED]).
    /// Default: ml-100k for the ml-100k preset, as `train` (from the cache, downloaded when
    /// missing), and synthetic:ml-25m for the ml-25m preset.
    #[arg(long, value_name = "PATH|NAME")]
    pub data: Option<String>,

    /// The configuration: `ml-100k` is SPEC's default recipe (adamw, one-cycle, K = 50, B = 64,
    /// 5 epochs); `ml-25m` is the scale recipe (`train --recipe ml-25m`: rowwise-adagrad, constant lr
    /// 0.15, l2 0.1, K = 64, B = 65536, block order, at most 5 epochs with early
    /// stopping).
    #[arg(long, value_enum, default_value_t = PresetArg::Ml100k)]
    pub preset: PresetArg,

    /// The backends to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cpu,gpu")]
    pub backends: Vec<BackendArg>,

    /// Passes over the training ratings (default: the preset's).
    #[arg(long)]
    pub epochs: Option<usize>,

    /// `K`, the number of latent factors (default: the preset's).
    #[arg(long)]
    pub factors: Option<usize>,

    /// `B`, ratings per batch (default: the preset's).
    #[arg(long)]
    pub bs: Option<usize>,

    /// The learning rate (default: the preset's).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,

    /// The optimiser (default: the preset's), e.g. `sgd` to measure the GPU's sparse path on the
    /// ml-100k preset, whose other settings the GPU runs.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,

    /// CPU threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Only the GPU adapter whose name contains this (case-insensitive); default: every adapter.
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,

    /// Batches of the untimed warm-up run on each backend (pipelines, threads, allocations).
    #[arg(long, default_value_t = 8)]
    pub warmup_batches: usize,

    /// The seed of the split, the initialisation and the batch order.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,

    /// Fraction of the ratings held out for validation (a random split).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.2)]
    pub valid_pct: f64,

    /// Save each backend's trained model into this directory as `BACKEND-N.safetensors`
    /// (`cpu-0`, `gpu-0`, `gpu-1`, ...), so the whole path (load, split, train, evaluate, save) is
    /// measured.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Print one JSON object per line and backend instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `--preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    #[value(name = "ml-100k")]
    Ml100k,
    #[value(name = "ml-25m")]
    Ml25m,
}

/// `--backends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    Cpu,
    Gpu,
}

impl PresetArg {
    /// The library's recipe of the same name.
    pub fn recipe(self) -> Recipe {
        match self {
            PresetArg::Ml100k => Recipe::Fastai,
            PresetArg::Ml25m => Recipe::Ml25m,
        }
    }
}

impl BenchArgs {
    /// The validated configuration: the preset with `--epochs`, `--factors`, `--bs`, `--lr`,
    /// `--optimizer` and `--seed` applied.
    pub fn config(&self) -> anyhow::Result<TrainConfig> {
        let preset = self.preset.recipe().config();
        let config = TrainConfig {
            epochs: self.epochs.unwrap_or(preset.epochs),
            factors: self.factors.unwrap_or(preset.factors),
            batch_size: self.bs.unwrap_or(preset.batch_size),
            lr: self.lr.unwrap_or(preset.lr),
            optimizer: self.optimizer.map_or(preset.optimizer, OptimizerArg::kind),
            seed: self.seed,
            ..preset
        };
        config.validate()?;
        Ok(config)
    }
}

/// What one backend measured.
#[derive(Debug, Clone)]
struct Row {
    /// `cpu` or `gpu`.
    backend: &'static str,
    /// The CPU's thread count, or the GPU adapter's name and API.
    adapter: String,
    threads: Option<usize>,
    report: TrainReport,
    warmup_seconds: f64,
    /// For a GPU: what the run allocated and where its time went.
    gpu: Option<(GpuMemoryReport, GpuTimings)>,
    /// For a GPU: how `forward_backward` ran (`subgroup` or `thread-per-rating`).
    forward_backward: Option<&'static str>,
}

/// A backend under test, kept concrete so that a GPU's own reports stay reachable.
enum BenchBackend {
    Cpu(Box<CpuBackend>),
    Gpu(Box<GpuBackend>),
}

impl BenchBackend {
    fn as_backend(&mut self) -> &mut dyn Backend {
        match self {
            BenchBackend::Cpu(backend) => backend.as_mut(),
            BenchBackend::Gpu(backend) => backend.as_mut(),
        }
    }

    fn gpu_reports(&self) -> Option<(GpuMemoryReport, GpuTimings)> {
        match self {
            BenchBackend::Cpu(_) => None,
            BenchBackend::Gpu(backend) => Some((backend.memory_report()?, backend.timings())),
        }
    }

    fn forward_backward_path(&self) -> Option<&'static str> {
        match self {
            BenchBackend::Cpu(_) => None,
            BenchBackend::Gpu(backend) => Some(backend.forward_backward_path()),
        }
    }
}

impl Row {
    fn epoch_seconds(&self) -> f64 {
        self.report.train_seconds / self.report.epochs.len().max(1) as f64
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    if args.backends.is_empty() {
        bail!("--backends names no backend; use cpu, gpu or cpu,gpu");
    }
    if !(0.0..1.0).contains(&args.valid_pct) || args.valid_pct == 0.0 {
        bail!(
            "--valid-pct must lie in (0, 1) so that there is a validation MSE to compare, got {}",
            args.valid_pct
        );
    }
    // As `train` does: the real ML-100K for the chapter 8 recipe (downloaded into the cache when
    // missing); ML-25M's shape synthetic, since the real one is a 250 MB download.
    let data = args.data.clone().unwrap_or_else(|| match args.preset {
        PresetArg::Ml100k => "ml-100k".to_string(),
        PresetArg::Ml25m => args.preset.recipe().synthetic_data().to_string(),
    });

    let started = Instant::now();
    eprintln!("bench: loading {data}");
    let SplitData {
        dataset,
        train: train_set,
        valid: valid_set,
        ..
    } = load_split(
        &data,
        &LoadOptions::default(),
        SplitKind::Random,
        args.valid_pct,
        config.seed,
    )
    .with_context(|| format!("cannot read --data {data}"))?;
    let (users, items) = (dataset.users.len(), dataset.items.len());
    eprintln!(
        "bench: {}: U = {users}, I = {items}, {} training and {} validation ratings (read and split in {:.1} s)",
        dataset.source,
        train_set.len(),
        valid_set.len(),
        started.elapsed().as_secs_f64()
    );
    let placement = match args.backends.contains(&BackendArg::Cpu) {
        true => Placement::Cpu,
        false => Placement::Gpu,
    };
    MemoryEstimate::training(&config, users, items, train_set.len(), placement, false)
        .check("bench", MemoryEstimate::TRAINING_ADVICE)?;
    let state = train::initial_state(&config, users, items);
    let warmup = warmup_set(&train_set, config.batch_size, args.warmup_batches);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the --out directory {}", dir.display()))?;
    }

    let mut rows = Vec::new();
    let mut out = std::io::stdout().lock();
    for &kind in &args.backends {
        let backends: Vec<(BenchBackend, Option<usize>)> = match kind {
            BackendArg::Cpu => {
                let backend = CpuBackend::new(args.threads)?;
                let threads = backend.threads();
                vec![(BenchBackend::Cpu(Box::new(backend)), Some(threads))]
            }
            BackendArg::Gpu => gpu_backends(args.adapter.as_deref())?
                .into_iter()
                .map(|b| (BenchBackend::Gpu(Box::new(b)), None))
                .collect(),
        };
        for (mut bench_backend, threads) in backends {
            let backend = bench_backend.as_backend();
            let label = match kind {
                BackendArg::Cpu => "cpu",
                BackendArg::Gpu => "gpu",
            };
            let adapter = backend.name();
            let warmup_seconds = match &warmup {
                Some(warmup) => {
                    eprintln!("bench: {adapter}: warm-up on {} ratings", warmup.len());
                    let warm_config = TrainConfig {
                        epochs: 1,
                        ..config.clone()
                    };
                    train::train(
                        backend,
                        &warm_config,
                        &state,
                        warmup,
                        &Ratings::default(),
                        &mut |_| {},
                    )
                    .with_context(|| format!("warming up {adapter}"))?
                    .train_seconds
                }
                None => 0.0,
            };
            eprintln!("bench: {adapter}: training {} epoch(s)", config.epochs);
            let report = train::train(
                backend,
                &config,
                &state,
                &train_set,
                &valid_set,
                &mut |progress| {
                    if let Progress::Epoch(epoch) = progress {
                        eprintln!(
                            "bench: {adapter}: epoch {} train_loss {:.6} valid_loss {} ({:.2} s, {:.0} ratings/s)",
                            epoch.epoch,
                            epoch.train_loss,
                            epoch
                                .valid_loss
                                .map_or("n/a".to_string(), |l| format!("{l:.6}")),
                            epoch.seconds,
                            epoch.ratings_per_second
                        );
                    }
                },
            )
            .with_context(|| format!("training on {adapter}"))?;
            let index = rows.iter().filter(|r: &&Row| r.backend == label).count();
            if let Some(dir) = &args.out {
                let path = dir.join(format!("{label}-{index}.safetensors"));
                ModelFile::new(report.kept_params().clone(), &dataset, &config)
                    .save(&path)
                    .with_context(|| format!("saving the model to {}", path.display()))?;
                eprintln!("bench: {adapter}: saved the model to {}", path.display());
            }
            let row = Row {
                backend: label,
                adapter,
                threads,
                report,
                warmup_seconds,
                gpu: bench_backend.gpu_reports(),
                forward_backward: bench_backend.forward_backward_path(),
            };
            if args.json {
                let cpu_rate = rows
                    .iter()
                    .chain(std::iter::once(&row))
                    .find(|r: &&Row| r.backend == "cpu")
                    .map(|r| r.report.ratings_per_second());
                writeln!(
                    out,
                    "{}",
                    row_json(&row, cpu_rate, &config, &dataset.source)
                )?;
                out.flush()?;
            }
            rows.push(row);
        }
    }
    if rows.is_empty() {
        bail!("no backend ran; see the messages above");
    }
    if !args.json {
        write_table(&mut out, &rows, &config, &dataset.source)?;
        write_gpu_reports(&mut out, &rows)?;
    }
    Ok(())
}

/// The first `batches` batches of the training set, for an untimed warm-up; `None` for zero.
fn warmup_set(train_set: &Ratings, batch_size: usize, batches: usize) -> Option<Ratings> {
    let n = batches.saturating_mul(batch_size).min(train_set.len());
    if batches == 0 || n < batch_size {
        return None;
    }
    let keep: Vec<u32> = (0..n as u32).collect();
    Some(Ratings {
        timestamps: None,
        ..train_set.select(&keep)
    })
}

/// One backend per GPU adapter (distinct names), or the one `--adapter` names. No adapter at all
/// is an error only when `--adapter` asked for one; otherwise the GPU rows are skipped with a
/// message.
fn gpu_backends(adapter: Option<&str>) -> anyhow::Result<Vec<GpuBackend>> {
    if let Some(name) = adapter {
        let options = GpuOptions {
            adapter: Some(name.to_string()),
            ..GpuOptions::default()
        };
        let backend = GpuBackend::new(&options)
            .with_context(|| format!("opening the GPU adapter --adapter {name:?}"))?;
        return Ok(vec![backend]);
    }
    let adapters = collabgpu::gpu::device::list_adapters(None)?;
    let mut names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    names.dedup();
    let mut seen = Vec::new();
    names.retain(|n| {
        let new = !seen.contains(n);
        seen.push(n.clone());
        new
    });
    if names.is_empty() {
        eprintln!("bench: no GPU adapter on this machine; skipping the GPU backend");
        return Ok(Vec::new());
    }
    let mut backends = Vec::new();
    for name in names {
        let options = GpuOptions {
            adapter: Some(name.clone()),
            ..GpuOptions::default()
        };
        match GpuBackend::new(&options) {
            Ok(backend) => backends.push(backend),
            Err(e) => eprintln!("bench: skipping the GPU adapter {name:?}: {e}"),
        }
    }
    for backend in &backends {
        if backend.is_software() {
            eprintln!(
                "bench: {:?} is a software adapter that runs on the CPU (as Mesa's lavapipe does): \
                 its figures say nothing about a real GPU",
                backend.adapter_name()
            );
        }
    }
    Ok(backends)
}

/// `ratings_per_second / cpu_ratings_per_second`, when a CPU row exists.
fn speedup(row: &Row, cpu_rate: Option<f64>) -> Option<f64> {
    cpu_rate.map(|cpu| row.report.ratings_per_second() / cpu.max(f64::MIN_POSITIVE))
}

fn row_json(
    row: &Row,
    cpu_rate: Option<f64>,
    config: &TrainConfig,
    source: &str,
) -> serde_json::Value {
    json!({
        "backend": row.backend,
        "adapter": row.adapter,
        "threads": row.threads,
        "ratings_per_second": row.report.ratings_per_second(),
        "epoch_seconds": row.epoch_seconds(),
        "valid_loss": row.report.kept_valid_loss(),
        "train_loss": row.report.epochs.last().map(|e| e.train_loss),
        "speedup_over_cpu": speedup(row, cpu_rate),
        "epochs": row.report.epochs.len(),
        "ratings_trained": row.report.ratings_trained,
        "train_seconds": row.report.train_seconds,
        "warmup_seconds": row.warmup_seconds,
        "data": source,
        "factors": config.factors,
        "batch_size": config.batch_size,
        "optimizer": config.optimizer.name(),
        "forward_backward": row.forward_backward,
        "gpu_memory_bytes": row.gpu.as_ref().map(|(memory, _)| json!({
            "parameters": memory.parameters,
            "gradients": memory.gradients,
            "optimizer_state": memory.optimizer_state,
            "scratch": memory.scratch,
            "train_set": memory.train_set,
            "triple_chunks": memory.triple_chunks,
            "step_records": memory.step_records,
            "small_buffers": memory.small_buffers,
            "staging": memory.staging,
            "eval_set": memory.eval_set,
            "total": memory.total(),
        })),
        "gpu_seconds": row.gpu.as_ref().map(|(_, timings)| json!({
            "upload": timings.upload_seconds,
            "encode": timings.encode_seconds,
            "readback_wait": timings.readback_wait_seconds,
            "kernels": timings.kernel_seconds,
            "eval": timings.eval_seconds,
            "batches": timings.batches,
            "chunks": timings.chunks,
            "dispatches": timings.dispatches,
            "gather_dispatches": timings.gather_dispatches,
            "host_waits": timings.host_waits,
            "queue_full_waits": timings.queue_full_waits,
        })),
        // Counted, not timed: a CPU machine checks them on any adapter.
        "dispatches_per_step": row.gpu.as_ref()
            .map(|(_, t)| t.dispatches as f64 / t.batches.max(1) as f64),
        "host_waits_per_epoch": row.gpu.as_ref()
            .map(|(_, t)| t.host_waits as f64 / row.report.epochs.len().max(1) as f64),
        // Waits for the oldest of the chunks in flight while the others keep the GPU busy.
        "queue_full_waits_per_epoch": row.gpu.as_ref()
            .map(|(_, t)| t.queue_full_waits as f64 / row.report.epochs.len().max(1) as f64),
        "bytes_per_rating": row.gpu.as_ref()
            .filter(|(_, t)| t.kernel_bytes > 0)
            .map(|(_, t)| t.kernel_bytes as f64 / row.report.ratings_trained.max(1) as f64),
        "kernel_gb_per_second": row.gpu.as_ref().and_then(|(_, t)| {
            let seconds = t.kernel_seconds.filter(|&s| s > 0.0)?;
            (t.kernel_bytes > 0).then(|| t.kernel_bytes as f64 / seconds / 1e9)
        }),
    })
}

/// The GPU's memory and time breakdown under the table, one block per GPU row.
fn write_gpu_reports(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    const MIB: f64 = 1024.0 * 1024.0;
    for row in rows {
        let Some((memory, timings)) = &row.gpu else {
            continue;
        };
        let mib = |bytes: u64| bytes as f64 / MIB;
        writeln!(
            out,
            "{}: GPU memory {:.1} MiB = parameters {:.1} + gradients {:.1} + optimiser state {:.1} \
             + scratch {:.1} + training set {:.1} + triple chunks {:.1} + step records {:.1} \
             + small {:.1} + staging {:.1} + validation set {:.1}",
            row.adapter,
            mib(memory.total()),
            mib(memory.parameters),
            mib(memory.gradients),
            mib(memory.optimizer_state),
            mib(memory.scratch),
            mib(memory.train_set),
            mib(memory.triple_chunks),
            mib(memory.step_records),
            mib(memory.small_buffers),
            mib(memory.staging),
            mib(memory.eval_set),
        )?;
        let kernels = timings
            .kernel_seconds
            .map_or("n/a (no TIMESTAMP_QUERY)".to_string(), |s| {
                format!("{s:.3} s")
            });
        writeln!(
            out,
            "{}: time: upload {:.3} s, encode {:.3} s, read-back wait {:.3} s, GPU kernels {kernels}, \
             evaluation {:.3} s; {} batches in {} chunks, {} dispatches (and {} gathers), {} host \
             waits, {} waits on a full queue",
            row.adapter,
            timings.upload_seconds,
            timings.encode_seconds,
            timings.readback_wait_seconds,
            timings.eval_seconds,
            timings.batches,
            timings.chunks,
            timings.dispatches,
            timings.gather_dispatches,
            timings.host_waits,
            timings.queue_full_waits,
        )?;
    }
    Ok(())
}

fn write_table(
    out: &mut impl Write,
    rows: &[Row],
    config: &TrainConfig,
    source: &str,
) -> std::io::Result<()> {
    let cpu_rate = rows
        .iter()
        .find(|r| r.backend == "cpu")
        .map(|r| r.report.ratings_per_second());
    writeln!(
        out,
        "{source}: K = {}, B = {}, {} epoch(s), {:?}",
        config.factors, config.batch_size, config.epochs, config.optimizer
    )?;
    let width = rows
        .iter()
        .map(|r| r.adapter.len())
        .max()
        .unwrap_or(0)
        .max(7);
    writeln!(
        out,
        "{:<7}  {:<width$}  {:>14}  {:>13}  {:>11}  {:>8}",
        "backend", "adapter", "ratings/s", "s/epoch", "valid MSE", "speed-up"
    )?;
    for row in rows {
        let valid = row
            .report
            .final_valid_loss()
            .map_or("n/a".to_string(), |l| format!("{l:.6}"));
        let speed = speedup(row, cpu_rate).map_or("n/a".to_string(), |s| format!("{s:.2}x"));
        writeln!(
            out,
            "{:<7}  {:<width$}  {:>14.0}  {:>13.4}  {:>11}  {:>8}",
            row.backend,
            row.adapter,
            row.report.ratings_per_second(),
            row.epoch_seconds(),
            valid,
            speed
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_takes_whole_batches_from_the_front() {
        let ratings = Ratings {
            users: (0..10).collect(),
            items: (0..10).collect(),
            ratings: vec![3.0; 10],
            timestamps: Some(vec![0; 10]),
        };
        let warm = warmup_set(&ratings, 3, 2).unwrap();
        assert_eq!(warm.users, vec![0, 1, 2, 3, 4, 5]);
        assert!(warm.timestamps.is_none());
        assert_eq!(warmup_set(&ratings, 3, 100).unwrap().len(), 10);
        assert!(warmup_set(&ratings, 3, 0).is_none());
        assert!(warmup_set(&ratings, 20, 1).is_none());
    }
}
