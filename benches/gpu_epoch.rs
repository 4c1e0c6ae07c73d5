//! Whole training epochs of the GPU backend on ML-100K's ratings, beside `cpu_epoch`:
//! `gpu_epoch_adamw` (the default recipe: adamw + one-cycle, K = 50, B = 64), `gpu_epoch_sgd` and
//! `gpu_epoch_sgd_bs65536` on the fused training path, and each again with `_single_op` (the
//! single-op kernels, nine or eleven dispatches per batch). After each case the backend's timings
//! (upload, encode, read-back wait, GPU kernel time from timestamp queries) and memory report are
//! printed. The epoch loop waits for the last chunk's losses (`Backend::finish`), so every sample
//! waits for the GPU before the clock stops. Reports ratings/s through criterion's throughput.
//! `COLLABGPU_BENCH_QUICK=1` trains on a tenth of the ratings (software adapters are slow).
//!
//! `gpu_start_{sgd_bs65536,adamw,adamw_bs65536}_k{64,128}/ml-25m`: what a run on the ML-25M shape
//! (U = 162,541, I = 59,047) allocates on the GPU, printed per case, and how long `start` takes to
//! create and fill those buffers (throughput in bytes of the whole allocation). A configuration
//! whose parameters pass the adapter's binding limit prints so and is left out
//! (`tests/gpu_binding_limit.rs` checks that refusal). Quick mode uses the ML-1M shape.
//!
//! Without an adapter, or without ML-100K for the epoch cases, the bench prints why and measures
//! nothing.

mod common;

use std::hint::black_box;

use collabgpu::data::Ratings;
use collabgpu::data::synth::Preset;
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{self, Backend, OptimizerKind, ScheduleKind, TrainConfig};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

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

fn bench_start(c: &mut Criterion) {
    let Some(device) = common::gpu_device("gpu_epoch: gpu_start_*") else {
        return;
    };
    let preset = if common::quick() {
        Preset::Ml1m
    } else {
        Preset::Ml25m
    };
    let shape = preset.shape();
    let mut group = c.benchmark_group("gpu_start");
    // Each sample allocates hundreds of MB at full size: one `start` per iteration.
    group.sampling_mode(SamplingMode::Flat);
    for factors in [64, 128] {
        for (name, optimizer, batch_size) in [
            ("sgd_bs65536", OptimizerKind::Sgd, 65_536),
            ("adamw", OptimizerKind::AdamW, 64),
            ("adamw_bs65536", OptimizerKind::AdamW, 65_536),
        ] {
            let id = format!("gpu_start_{name}_k{factors}/{}", preset.name());
            let config = TrainConfig {
                factors,
                optimizer,
                batch_size,
                ..TrainConfig::default()
            };
            let state = train::initial_state(&config, shape.users, shape.items);
            let mut gpu = GpuBackend::with_device(device.clone(), &GpuOptions::default());
            if let Err(e) = gpu.start(&config, &state) {
                eprintln!("{id}: does not fit this adapter: {e}");
                continue;
            }
            let memory = gpu
                .memory_report()
                .expect("a started run reports its memory");
            eprintln!(
                "{id}: {:.1} MiB in all; {memory:?}",
                memory.total() as f64 / (1 << 20) as f64
            );
            group.throughput(Throughput::Bytes(memory.total()));
            group.bench_function(id, |b| {
                b.iter(|| {
                    gpu.start(&config, &state).unwrap();
                    device.wait().unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_epochs, bench_start
}
criterion_main!(benches);
