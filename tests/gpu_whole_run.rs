//! The whole default recipe (adamw + one-cycle, K = 50, B = 64, 5 epochs, y-range (0, 5.5)) on
//! synthetic data with a planted model, on the GPU and on the CPU reference: the final validation
//! MSE must agree within 1e-3 (issue 4), and training must actually learn.

mod support;

use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{OptimizerKind, ScheduleKind, TrainConfig};
use support::{CpuReference, gpu_device, planted_ratings, random_split, run_epochs};

const USERS: usize = 300;
const ITEMS: usize = 200;

fn compare(config: &TrainConfig) {
    let Some(device) = gpu_device() else { return };
    let data = planted_ratings(USERS, ITEMS, 24_000, 5);
    let (train, valid) = random_split(&data, 0.2, config.seed);
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let on_gpu = run_epochs(&mut gpu, config, USERS, ITEMS, &train, &valid);
    let on_cpu = run_epochs(
        &mut CpuReference::default(),
        config,
        USERS,
        ITEMS,
        &train,
        &valid,
    );
    eprintln!(
        "valid MSE per epoch: gpu {:?} cpu {:?}",
        on_gpu.valid_mse, on_cpu.valid_mse
    );
    let (g, c) = (
        *on_gpu.valid_mse.last().unwrap(),
        *on_cpu.valid_mse.last().unwrap(),
    );
    assert!(
        (g - c).abs() <= 1e-3,
        "final validation MSE: gpu {g} vs cpu {c}, more than 1e-3 apart"
    );
    for (epoch, (g, c)) in on_gpu.train_loss.iter().zip(&on_cpu.train_loss).enumerate() {
        assert!(
            (g - c).abs() <= 1e-3,
            "epoch {epoch} mean training loss: gpu {g} vs cpu {c}"
        );
    }
    assert!(
        c < 0.8 * on_cpu.valid_mse[0].max(1.0),
        "training did not learn: validation MSE {:?}",
        on_cpu.valid_mse
    );
}

#[test]
fn default_recipe_on_synthetic_data_matches_cpu_within_1e_3() {
    compare(&TrainConfig::default());
}

#[test]
fn sgd_constant_on_synthetic_data_matches_cpu_within_1e_3() {
    compare(&TrainConfig {
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        lr: 0.1,
        wd: 0.01,
        batch_size: 256,
        ..TrainConfig::default()
    });
}
