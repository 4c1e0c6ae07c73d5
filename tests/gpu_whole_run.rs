//! Whole runs through the project's epoch loop (`train::train`) on synthetic data with a planted
//! model, on the GPU backend and on the CPU backend from the same seed: the final validation MSE
//! must agree within 1e-3 (issue 4), every epoch's training loss too, and training must learn.
//! Then the loop's traffic with the GPU (issue 15): however many runs of batches an epoch is cut
//! into, the host waits for the GPU once per epoch and once per evaluation, a step is two
//! dispatches, and a stop inside an epoch (Ctrl-C) resumes where the batches in flight ended.

mod support;

use collabgpu::cpu::CpuBackend;
use collabgpu::gpu::{GpuBackend, GpuOptions};
use collabgpu::train::{
    self, OptimizerKind, Position, Progress, RunControl, ScheduleKind, TrainConfig,
};
use std::sync::atomic::{AtomicBool, Ordering};
use support::{gpu_device, planted_ratings, random_split, train_run};

const USERS: usize = 300;
const ITEMS: usize = 200;

fn compare(config: &TrainConfig) {
    let Some(device) = gpu_device() else { return };
    let data = planted_ratings(USERS, ITEMS, 24_000, 5);
    let (train, valid) = random_split(&data, 0.2, config.seed);
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let on_gpu = train_run(&mut gpu, config, USERS, ITEMS, &train, &valid);
    let mut cpu = CpuBackend::new(1).unwrap();
    let on_cpu = train_run(&mut cpu, config, USERS, ITEMS, &train, &valid);
    let valid_mse = |r: &collabgpu::train::TrainReport| -> Vec<f64> {
        r.epochs.iter().map(|e| e.valid_loss.unwrap()).collect()
    };
    eprintln!(
        "valid MSE per epoch: gpu {:?} cpu {:?}",
        valid_mse(&on_gpu),
        valid_mse(&on_cpu)
    );
    let (g, c) = (
        on_gpu.final_valid_loss().unwrap(),
        on_cpu.final_valid_loss().unwrap(),
    );
    assert!(
        (g - c).abs() <= 1e-3,
        "final validation MSE: gpu {g} vs cpu {c}, more than 1e-3 apart"
    );
    for (epoch, (g, c)) in on_gpu.epochs.iter().zip(&on_cpu.epochs).enumerate() {
        assert!(
            (g.train_loss - c.train_loss).abs() <= 1e-3,
            "epoch {epoch} mean training loss: gpu {} vs cpu {}",
            g.train_loss,
            c.train_loss
        );
    }
    let first = on_cpu.epochs[0].valid_loss.unwrap();
    assert!(
        c < 0.9 * first,
        "training did not learn: validation MSE {:?}",
        valid_mse(&on_cpu)
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

/// The project's own synthetic generator (`synthetic:ml-100k`, seed 42), every tenth rating so the
/// run stays short on a software adapter, the full U x I parameter tables, the default recipe.
#[test]
fn default_recipe_on_the_synthetic_ml100k_preset_matches_cpu_within_1e_3() {
    use collabgpu::data::synth::{Preset, generate};
    let Some(device) = gpu_device() else { return };
    let synthetic = generate(Preset::Ml100k, 42).expect("the ml-100k preset generates");
    let dataset = synthetic.dataset;
    let every_tenth: Vec<u32> = (0..dataset.ratings.len() as u32).step_by(10).collect();
    let data = dataset.ratings.select(&every_tenth);
    let (users, items) = (dataset.users.len(), dataset.items.len());
    let config = TrainConfig::default();
    let (train, valid) = random_split(&data, 0.2, config.seed);
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let on_gpu = train_run(&mut gpu, &config, users, items, &train, &valid);
    let on_cpu = train_run(
        &mut CpuBackend::new(1).unwrap(),
        &config,
        users,
        items,
        &train,
        &valid,
    );
    let (g, c) = (
        on_gpu.final_valid_loss().unwrap(),
        on_cpu.final_valid_loss().unwrap(),
    );
    eprintln!("synthetic:ml-100k (1/10): final validation MSE gpu {g} cpu {c}");
    assert!(
        (g - c).abs() <= 1e-3,
        "final validation MSE: gpu {g} vs cpu {c}, more than 1e-3 apart"
    );
}

/// `--order blocks` with S = 2 (K = 1,100 spills the cache budget on 300 x 200): batches of
/// different lengths in the middle of a run, every block's last one short. The GPU takes the very
/// same batches, so its epochs must agree with the CPU's as in random order.
#[test]
fn block_order_sgd_matches_cpu_within_1e_3() {
    let Some(device) = gpu_device() else { return };
    let config = TrainConfig {
        factors: 1100,
        epochs: 2,
        init_std: 0.001,
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        lr: 0.5,
        wd: 0.0,
        batch_size: 700,
        order: collabgpu::train::BatchOrder::Blocks,
        ..TrainConfig::default()
    };
    assert_eq!(
        collabgpu::train::batches::block_ranges(USERS, ITEMS, 1100),
        2
    );
    let data = planted_ratings(USERS, ITEMS, 24_000, 5);
    let (train, valid) = random_split(&data, 0.2, config.seed);
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let on_gpu = train_run(&mut gpu, &config, USERS, ITEMS, &train, &valid);
    let mut cpu = CpuBackend::new(2).unwrap();
    let on_cpu = train_run(&mut cpu, &config, USERS, ITEMS, &train, &valid);
    for (g, c) in on_gpu.epochs.iter().zip(&on_cpu.epochs) {
        let (gv, cv) = (g.valid_loss.unwrap(), c.valid_loss.unwrap());
        assert!(
            (gv - cv).abs() <= 1e-3,
            "epoch {}: gpu {gv} vs cpu {cv}",
            g.epoch
        );
        assert!((g.train_loss - c.train_loss).abs() <= 1e-3);
    }
    assert!(
        on_cpu.final_valid_loss().unwrap() < on_cpu.epochs[0].train_loss,
        "the run must learn"
    );
    assert_eq!(
        on_gpu.ratings_trained,
        train.len() as u64 * 2,
        "every rating, every epoch"
    );
}

#[test]
fn rowwise_adagrad_with_l2_on_synthetic_data_matches_cpu_within_1e_3() {
    compare(&TrainConfig {
        optimizer: OptimizerKind::RowwiseAdagrad,
        schedule: ScheduleKind::Constant,
        lr: 0.05,
        wd: 0.0,
        l2: 0.05,
        batch_size: 256,
        ..TrainConfig::default()
    });
}

#[test]
fn sparse_adam_with_l2_on_synthetic_data_matches_cpu_within_1e_3() {
    compare(&TrainConfig {
        optimizer: OptimizerKind::SparseAdam,
        lr: 0.01,
        wd: 0.0,
        l2: 0.05,
        batch_size: 256,
        ..TrainConfig::default()
    });
}

/// The `ml-25m` recipe as a user runs it (rowwise-adagrad, `--l2`, block order), with a batch size
/// that gives this small data set more than one batch per block; the early stop is off so that
/// both backends run every epoch whatever the last digits of their losses.
#[test]
fn the_ml_25m_recipe_matches_cpu_within_1e_3() {
    compare(&TrainConfig {
        batch_size: 512,
        early_stop: 0,
        ..collabgpu::train::Recipe::Ml25m.config()
    });
}

/// Runs of 10 batches, 30 per epoch: today's loop (a blocking read-back per run) waited 31 times an
/// epoch; the queue waits once at the end of the epoch and once for the evaluation, and the
/// progress reports still come per run of batches as their losses arrive.
#[test]
fn an_epoch_waits_for_the_gpu_once_however_many_runs_it_is_cut_into() {
    let Some(device) = gpu_device() else { return };
    let data = planted_ratings(USERS, ITEMS, 24_000, 5);
    let (train_set, valid) = random_split(&data, 0.2, 42);
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let per_epoch = train_set.len() / config.batch_size;
    let mut gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let state = train::initial_state(&config, USERS, ITEMS);
    let mut reports = Vec::new();
    let control = RunControl {
        batches_per_call: Some(10),
        ..RunControl::default()
    };
    let outcome = train::train_controlled(
        &mut gpu,
        &config,
        &state,
        &train_set,
        &valid,
        control,
        &mut |progress| {
            if let Progress::Batches { epoch, done, .. } = progress {
                reports.push((epoch, done));
            }
        },
    )
    .unwrap();
    let timings = gpu.timings();
    eprintln!("{timings:?}");
    assert_eq!(timings.batches, 2 * per_epoch as u64);
    assert_eq!(timings.chunks, 2 * per_epoch.div_ceil(10) as u64);
    assert_eq!(
        timings.host_waits, 4,
        "one wait at the end of each of 2 epochs and one per evaluation"
    );
    assert_eq!(
        timings.dispatches,
        2 * timings.batches,
        "forward_backward and adamw per step"
    );
    assert_eq!(
        timings.gather_dispatches, timings.chunks,
        "one gather per chunk"
    );
    // Every epoch reports progress up to its end, in order.
    for epoch in 0..2 {
        let done: Vec<usize> = (reports.iter())
            .filter(|(e, _)| *e == epoch)
            .map(|&(_, d)| d)
            .collect();
        assert_eq!(done.last(), Some(&per_epoch), "epoch {epoch}: {done:?}");
        assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    }
    // The same model as the CPU's, as a run in one piece trains it.
    let mut cpu = CpuBackend::new(1).unwrap();
    let on_cpu = train_run(&mut cpu, &config, USERS, ITEMS, &train_set, &valid);
    let (g, c) = (
        outcome.report.final_valid_loss().unwrap(),
        on_cpu.final_valid_loss().unwrap(),
    );
    assert!((g - c).abs() <= 1e-3, "valid MSE: gpu {g} vs cpu {c}");
}

/// A stop raised at the first progress report of epoch 1 lands after the runs then in flight,
/// at a whole number of runs, and the run resumed from there on a fresh backend ends where an
/// uninterrupted GPU run does.
#[test]
fn a_stop_inside_an_epoch_resumes_after_the_batches_in_flight() {
    let Some(device) = gpu_device() else { return };
    let data = planted_ratings(USERS, ITEMS, 24_000, 5);
    let (train_set, valid) = random_split(&data, 0.2, 42);
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let per_epoch = train_set.len() / config.batch_size;
    let state = train::initial_state(&config, USERS, ITEMS);
    let stop = AtomicBool::new(false);
    let mut gpu = GpuBackend::with_device(device.clone(), &GpuOptions::default());
    let control = RunControl {
        stop: Some(&stop),
        batches_per_call: Some(10),
        ..RunControl::default()
    };
    let stopped = train::train_controlled(
        &mut gpu,
        &config,
        &state,
        &train_set,
        &valid,
        control,
        &mut |progress| {
            if let Progress::Batches { epoch: 1, .. } = progress {
                stop.store(true, Ordering::SeqCst);
            }
        },
    )
    .unwrap();
    let Position { epoch, batch, .. } = stopped.stopped_at.expect("the run stopped");
    eprintln!("stopped at epoch {epoch}, batch {batch} of {per_epoch}");
    assert_eq!(epoch, 1);
    assert!(
        batch >= 10 && batch % 10 == 0 && batch < per_epoch,
        "{batch}"
    );
    assert_eq!(stopped.report.epochs.len(), 1);

    let mut resumed_gpu = GpuBackend::with_device(device.clone(), &GpuOptions::default());
    let resumed = train::train_controlled(
        &mut resumed_gpu,
        &config,
        &stopped.report.state,
        &train_set,
        &valid,
        RunControl {
            start: stopped.stopped_at.unwrap(),
            ..RunControl::default()
        },
        &mut |_| {},
    )
    .unwrap()
    .report;
    let mut whole_gpu = GpuBackend::with_device(device, &GpuOptions::default());
    let whole = train_run(&mut whole_gpu, &config, USERS, ITEMS, &train_set, &valid);
    let (r, w) = (&resumed.epochs[0], &whole.epochs[1]);
    assert!(
        (r.train_loss - w.train_loss).abs() <= 1e-5,
        "epoch 1 train loss: resumed {} vs whole {}",
        r.train_loss,
        w.train_loss
    );
    let (r, w) = (r.valid_loss.unwrap(), w.valid_loss.unwrap());
    assert!((r - w).abs() <= 1e-5, "valid MSE: resumed {r} vs whole {w}");
}
