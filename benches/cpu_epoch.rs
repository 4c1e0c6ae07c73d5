//! Whole training epochs of the CPU backend on ML-100K's ratings with the default recipe
//! (adamw + one-cycle, K = 50, B = 64): `cpu_epoch_adamw_{1,2}_threads` and `cpu_epoch_sgd_*`.
//! Reports ratings/s through criterion's throughput. `COLLABGPU_BENCH_QUICK=1` trains on a tenth of
//! the ratings for a quick run.

use std::hint::black_box;

use collabgpu::cpu::CpuBackend;
use collabgpu::data::{IdMap, Ratings};
use collabgpu::train::{self, OptimizerKind, TrainConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ML_100K: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/ml-100k");

/// `u.data` read directly (the bench must not depend on the loader's options): the training part
/// of a fixed 80/20 cut, indices as SPEC assigns them.
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
    let (ratings, users, items) = ml_100k_train();
    let mut group = c.benchmark_group("cpu_epoch");
    group.sample_size(10);
    group.throughput(Throughput::Elements((ratings.len() / 64 * 64) as u64));
    for (optimizer, name) in [(OptimizerKind::AdamW, "adamw"), (OptimizerKind::Sgd, "sgd")] {
        for threads in [1, 2] {
            let config = TrainConfig {
                epochs: 1,
                optimizer,
                ..TrainConfig::default()
            };
            let state = train::initial_state(&config, users, items);
            let mut backend = CpuBackend::new(threads).unwrap();
            let empty = Ratings::default();
            group.bench_function(format!("cpu_epoch_{name}_{threads}_threads"), |b| {
                b.iter(|| {
                    let report =
                        train::train(&mut backend, &config, &state, &ratings, &empty, &mut |_| {})
                            .unwrap();
                    black_box(report.epochs[0].train_loss)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_epochs);
criterion_main!(benches);
