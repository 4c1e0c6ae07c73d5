//! Whole training epochs of the GPU backend on ML-100K's ratings, beside `cpu_epoch`:
//! `gpu_epoch_adamw` (the default recipe: adamw + one-cycle, K = 50, B = 64), `gpu_epoch_sgd` and
//! `gpu_epoch_sgd_bs65536` on the fused training path, and each again with `_single_op` (the
//! single-op kernels, nine or eleven dispatches per batch). After each case the backend's timings
//! (upload, encode, read-back wait, GPU kernel time from timestamp queries) and memory report are
//! printed. `train_batches` reads the batch losses back, so every sample waits for
//! the GPU before the clock stops. Reports ratings/s through criterion's throughput.
//! `COLLABGPU_BENCH_QUICK=1` trains on a tenth of the ratings (software adapters are slow).
//! Without an adapter the bench prints why and measures nothing.

use std::hint::black_box;

use collabgpu::data::{IdMap, Ratings};
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{self, Backend, OptimizerKind, ScheduleKind, TrainConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ML_100K: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/ml-100k");

/// `u.data` read directly, as `cpu_epoch` reads it: the first 80 % (or 8 % when quick).
fn ml_100k_train() -> (Ratings, usize, usize) {
    let path = format!("{ML_100K}/u.data");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; the benches expect ML-100K at {ML_100K}"));
    let rows: Vec<(String, String, f32)> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap())
        })
        .collect();
    let users = IdMap::from_raw_ids(rows.iter().map(|r| r.0.clone()).collect());
    let items = IdMap::from_raw_ids(rows.iter().map(|r| r.1.clone()).collect());
    let mut ratings = Ratings::default();
    for (u, i, r) in &rows {
        ratings.users.push(users.index_of(u).unwrap());
        ratings.items.push(items.index_of(i).unwrap());
        ratings.ratings.push(*r);
    }
    let quick = std::env::var_os("COLLABGPU_BENCH_QUICK").is_some();
    let n_train = if quick { 8_000 } else { 80_000 };
    let keep: Vec<u32> = (0..n_train as u32).collect();
    (ratings.select(&keep), users.len(), items.len())
}

fn bench_epochs(c: &mut Criterion) {
    let device = match collabgpu::gpu::Device::new(&GpuOptions::default()) {
        Ok(device) => std::sync::Arc::new(device),
        Err(e) => {
            eprintln!("gpu_epoch: skipped: {e}");
            return;
        }
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
    let (ratings, users, items) = ml_100k_train();
    let mut group = c.benchmark_group("gpu_epoch");
    group.sample_size(10);
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

criterion_group!(benches, bench_epochs);
criterion_main!(benches);
