//! MovieLens 100K (`../shared/data/ml-100k`), the default recipe on both backends, and the
//! throughput figures for BENCHMARKS.md. Ignored by default (minutes on a software adapter):
//!
//!     cargo test --test gpu_ml100k -- --ignored --nocapture
//!
//! `COLLABGPU_BENCH_EPOCHS` shortens the runs.

mod support;

use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{OptimizerKind, ScheduleKind, TrainConfig};
use support::{CpuReference, gpu_device, load_ml100k, random_split, run_epochs};

fn epochs(default: usize) -> usize {
    std::env::var("COLLABGPU_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn both(config: &TrainConfig, label: &str) -> (f64, f64) {
    let device = gpu_device().expect("a GPU adapter");
    let (users, items, data) = load_ml100k();
    let (train, valid) = random_split(&data, 0.2, config.seed);
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let name = gpu.adapter_name().to_string();
    let on_gpu = run_epochs(&mut gpu, config, users, items, &train, &valid);
    let on_cpu = run_epochs(
        &mut CpuReference::default(),
        config,
        users,
        items,
        &train,
        &valid,
    );
    println!(
        "{label}: gpu ({name}, scatter-add {}) valid MSE {:?}, {:.0} ratings/s",
        gpu.scatter_add_path(),
        on_gpu.valid_mse,
        on_gpu.ratings_per_second
    );
    println!(
        "{label}: cpu reference (single thread) valid MSE {:?}, {:.0} ratings/s",
        on_cpu.valid_mse, on_cpu.ratings_per_second
    );
    (
        *on_gpu.valid_mse.last().unwrap(),
        *on_cpu.valid_mse.last().unwrap(),
    )
}

#[test]
#[ignore = "minutes on a software adapter; run with --ignored"]
fn ml100k_default_recipe_gpu_matches_cpu_within_0_005() {
    let config = TrainConfig {
        epochs: epochs(5),
        ..TrainConfig::default()
    };
    let (g, c) = both(&config, "ml-100k default recipe");
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
        drop_last: false,
        ..TrainConfig::default()
    };
    both(&config, "ml-100k sgd --bs 65536");
}
