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
    let Some((users, items, train_set, _)) = ml100k_split(42) else {
        return;
    };
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

/// What a run on the ML-25M shape allocates on the GPU (U = 162,541, I = 59,047), for `sgd` with
/// B = 65536 and `adamw` with B = 64 and 65536, at K = 64 and K = 128: only `start`, no training.
/// `sgd` must fit the adapter, and so must `adamw` wherever the parameters fit one binding (m and
/// v are a buffer each): on lavapipe's 128 MiB limit both fit at K = 128.
#[test]
#[ignore = "allocates hundreds of MB on the adapter; run with --ignored --nocapture"]
fn ml25m_shape_memory_report() {
    let Some(device) = gpu_device() else { return };
    let (users, items) = (162_541, 59_047);
    for factors in [64, 128] {
        for (optimizer, batch_size) in [
            (OptimizerKind::Sgd, 65_536),
            (OptimizerKind::AdamW, 64),
            (OptimizerKind::AdamW, 65_536),
        ] {
            let config = TrainConfig {
                factors,
                optimizer,
                batch_size,
                ..TrainConfig::default()
            };
            let mut gpu = GpuBackend::with_device(device.clone(), &GpuOptions::default());
            let state = train::initial_state(&config, users, items);
            let n = ((users + items) * (factors + 1)).next_multiple_of(4) as u64 * 4;
            let limit = device.device.limits().max_storage_buffer_binding_size;
            if let Err(e) = collabgpu::train::Backend::start(&mut gpu, &config, &state) {
                assert!(
                    n > limit,
                    "the parameters fit one binding, so this must: {e}"
                );
                println!("K = {factors:3} {optimizer:?} B = {batch_size:5}: does not fit: {e}");
                continue;
            }
            let memory = gpu.memory_report().unwrap();
            assert_eq!(memory.parameters, n);
            if optimizer == OptimizerKind::AdamW {
                assert_eq!(memory.optimizer_state, 2 * n, "m and v, a buffer each");
            }
            println!(
                "K = {factors:3} {optimizer:?} B = {batch_size:5}: {:.1} MiB in all; {memory:?}",
                memory.total() as f64 / (1 << 20) as f64
            );
        }
    }
}
