//! One training epoch on ML-100K's 80 % training split, fused path against the single-op kernels
//! (the path main had before the fused one), printing ratings/s, the backend's timings and its
//! memory report. Ignored by default (minutes on a software adapter); run it with
//! `cargo test --test gpu_throughput -- --ignored --nocapture`.

mod support;

use std::time::Instant;

use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{self, OptimizerKind, ScheduleKind, TrainConfig};
use support::{gpu_device, ml100k_split};

#[test]
#[ignore = "a throughput measurement, not a check; run with --ignored --nocapture"]
fn ml100k_epoch_throughput_fused_vs_single_op() {
    let Some(device) = gpu_device() else { return };
    let (users, items, train_set, _) = ml100k_split(42);
    let cases = [
        (
            "adamw B=64",
            OptimizerKind::AdamW,
            ScheduleKind::OneCycle,
            64,
        ),
        ("sgd B=64", OptimizerKind::Sgd, ScheduleKind::Constant, 64),
        (
            "sgd B=65536",
            OptimizerKind::Sgd,
            ScheduleKind::Constant,
            65_536,
        ),
    ];
    let empty = collabgpu::data::Ratings::default();
    println!("adapter: {}", device.adapter_name());
    for (name, optimizer, schedule, batch_size) in cases {
        let config = TrainConfig {
            epochs: 1,
            optimizer,
            schedule,
            batch_size,
            ..TrainConfig::default()
        };
        let state = train::initial_state(&config, users, items);
        for unfused in [true, false] {
            let options = GpuOptions {
                unfused,
                ..GpuOptions::default()
            };
            let mut gpu = GpuBackend::with_device(device.clone(), &options);
            // A warm-up epoch first: pipelines and buffers settle.
            train::train(&mut gpu, &config, &state, &train_set, &empty, &mut |_| {}).unwrap();
            let started = Instant::now();
            let report =
                train::train(&mut gpu, &config, &state, &train_set, &empty, &mut |_| {}).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            let trained = train_set.len() / batch_size * batch_size;
            let path = if unfused { "single-op" } else { "fused" };
            println!(
                "{name:12} {path:9}: {:>10.0} ratings/s ({seconds:.3} s, train loss {:.4})",
                trained as f64 / seconds,
                report.epochs[0].train_loss
            );
            println!("    {:?}", gpu.timings());
            println!("    {:?}", gpu.memory_report().unwrap());
        }
    }
}
