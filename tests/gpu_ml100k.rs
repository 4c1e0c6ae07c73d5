//! MovieLens 100K through the project's loader, split and epoch loop:
//! the default recipe on both backends must land within 0.005 of each other (issue 4), and the
//! throughput figures for BENCHMARKS.md. The quality check runs in every `cargo test` (about 25 s
//! on lavapipe since the fused path); the throughput run is ignored:
//!
//!     cargo test --test gpu_ml100k -- --ignored --nocapture --test-threads 1
//!
//! `COLLABGPU_BENCH_EPOCHS` shortens the runs.

mod support;

use collabgpu::cpu::CpuBackend;
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{Backend, OptimizerKind, ScheduleKind, TrainConfig, TrainReport};
use support::{gpu_device, ml100k_split, train_run};

fn epochs(default: usize) -> usize {
    std::env::var("COLLABGPU_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(label: &str, backend: &str, run: &TrainReport) {
    let valid: Vec<String> = run
        .epochs
        .iter()
        .map(|e| format!("{:.4}", e.valid_loss.unwrap()))
        .collect();
    println!(
        "{label}: {backend}: valid MSE per epoch [{}], {:.0} ratings/s",
        valid.join(", "),
        run.ratings_per_second()
    );
}

/// `(gpu, cpu)` final validation MSE, or `None` (the reason printed) without an adapter or data.
fn both(config: &TrainConfig, label: &str) -> Option<(f64, f64)> {
    let device = gpu_device()?;
    let (users, items, train, valid) = ml100k_split(config.seed)?;
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let on_gpu = train_run(&mut gpu, config, users, items, &train, &valid);
    report(
        label,
        &format!(
            "gpu {} (scatter-add {})",
            gpu.name(),
            gpu.scatter_add_path()
        ),
        &on_gpu,
    );
    let mut cpu = CpuBackend::new(0).unwrap();
    let on_cpu = train_run(&mut cpu, config, users, items, &train, &valid);
    report(label, &cpu.name(), &on_cpu);
    Some((
        on_gpu.final_valid_loss().unwrap(),
        on_cpu.final_valid_loss().unwrap(),
    ))
}

#[test]
fn ml100k_default_recipe_gpu_matches_cpu_within_0_005() {
    let config = TrainConfig {
        epochs: epochs(5),
        ..TrainConfig::default()
    };
    let Some((g, c)) = both(&config, "ml-100k default recipe") else {
        return;
    };
    assert!(
        (g - c).abs() <= 0.005,
        "final validation MSE gpu {g} vs cpu {c}"
    );
}

#[test]
#[ignore = "minutes on a software adapter; run with --ignored"]
fn ml100k_sgd_bs_65536_throughput() {
    let config = TrainConfig {
        epochs: epochs(5),
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        batch_size: 65_536,
        ..TrainConfig::default()
    };
    both(&config, "ml-100k sgd --bs 65536");
}
