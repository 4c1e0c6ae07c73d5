//! Whole training epochs of the GPU backend on ML-100K's ratings, beside `cpu_epoch`:
//! `gpu_epoch_adamw` (the default recipe: adamw + one-cycle, K = 50, B = 64), `gpu_epoch_sgd` and
//! `gpu_epoch_sgd_bs65536` on the fused training path, and each again with `_single_op` (the
//! single-op kernels, nine or eleven dispatches per batch). After each case the backend's timings
//! (upload, encode, read-back wait, GPU kernel time from timestamp queries) and memory report are
//! printed. `train_batches` reads the batch losses back, so every sample waits for
//! the GPU before the clock stops. Reports ratings/s through criterion's throughput.
//! `COLLABGPU_BENCH_QUICK=1` trains on a tenth of the ratings (software adapters are slow).
//! Without an adapter or without ML-100K the bench prints why and measures nothing.

mod common;

use std::hint::black_box;

use collabgpu::data::Ratings;
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{self, Backend, OptimizerKind, ScheduleKind, TrainConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench_epochs(c: &mut Criterion) {
    let Some(device) = common::gpu_device("gpu_epoch") else {
        return;
    };
    let Some((ratings, users, items)) = common::ml_100k_train() else {
        return;
    };
    let single_op = GpuOptions {
        unfused: true,
        ..GpuOptions::default()
    };
    let mut backends = [
        (
            "",
            GpuBackend::with_device(device.clone(), &GpuOptions::default()),
        ),
        ("_single_op", GpuBackend::with_device(device, &single_op)),
    ];
    eprintln!("gpu_epoch on {}", backends[0].1.name());
    let mut group = c.benchmark_group("gpu_epoch");
    let cases = [
        ("adamw", OptimizerKind::AdamW, ScheduleKind::OneCycle, 64),
        ("sgd", OptimizerKind::Sgd, ScheduleKind::Constant, 64),
        (
            "sgd_bs65536",
            OptimizerKind::Sgd,
            ScheduleKind::Constant,
            65_536,
        ),
    ];
    for (name, optimizer, schedule, batch_size) in cases {
        let config = TrainConfig {
            epochs: 1,
            optimizer,
            schedule,
            batch_size,
            drop_last: batch_size <= ratings.len(),
            ..TrainConfig::default()
        };
        let trained = if config.drop_last {
            ratings.len() / batch_size * batch_size
        } else {
            ratings.len()
        };
        group.throughput(Throughput::Elements(trained as u64));
        let state = train::initial_state(&config, users, items);
        let empty = Ratings::default();
        for (suffix, backend) in &mut backends {
            group.bench_function(format!("gpu_epoch_{name}{suffix}"), |b| {
                b.iter(|| {
                    let report =
                        train::train(backend, &config, &state, &ratings, &empty, &mut |_| {})
                            .unwrap();
                    black_box(report.epochs[0].train_loss)
                })
            });
            eprintln!("  last epoch: {:?}", backend.timings());
            eprintln!("  GPU memory: {:?}", backend.memory_report());
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_epochs
}
criterion_main!(benches);
