//! MovieLens 100K through the project's loader, split and epoch loop: one epoch of the default
//! recipe on both backends must land within 0.005 of each other in validation MSE (issue 4) on the
//! real data. One epoch is enough here: `gpu_whole_run` follows whole runs epoch by epoch on
//! synthetic data; this test adds the real data's shape and skew. Skips with the reason printed
//! when the data or an adapter is missing (fails instead under `COLLABGPU_REQUIRE_DATA=1` or
//! `COLLABGPU_REQUIRE_GPU=1`). The throughput figures are benches: `benches/gpu_epoch.rs`,
//! `benches/cpu_epoch.rs`.

mod support;

use collabgpu::cpu::CpuBackend;
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{Backend, TrainConfig};
use support::{gpu_device, ml100k_split, train_run};

#[test]
fn ml100k_default_recipe_gpu_matches_cpu_within_0_005() {
    let Some(device) = gpu_device() else { return };
    let config = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let Some((users, items, train, valid)) = ml100k_split(config.seed) else {
        return;
    };
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let on_gpu = train_run(&mut gpu, &config, users, items, &train, &valid);
    let mut cpu = CpuBackend::new(0).unwrap();
    let on_cpu = train_run(&mut cpu, &config, users, items, &train, &valid);
    let (g, c) = (
        on_gpu.final_valid_loss().unwrap(),
        on_cpu.final_valid_loss().unwrap(),
    );
    eprintln!(
        "ml-100k default recipe, 1 epoch: valid MSE gpu {g:.4} ({}, scatter-add {}), cpu {c:.4}",
        gpu.name(),
        gpu.scatter_add_path()
    );
    assert!(
        (g - c).abs() <= 0.005,
        "final validation MSE gpu {g} vs cpu {c}"
    );
}
