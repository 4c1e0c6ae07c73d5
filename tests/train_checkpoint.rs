//! Checkpoints through the library: a run stopped (at an epoch boundary or mid-epoch), saved to a
//! file, loaded and resumed gives bit-for-bit the model of a run that never stopped on the CPU;
//! checkpoints refuse other data or configuration; a diverging run leaves the last good checkpoint.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};

use collabgpu::cpu::CpuBackend;
use collabgpu::data::{DataFingerprint, Ratings};
use collabgpu::files::{Checkpoint, CheckpointError};
use collabgpu::train::{
    self, Backend, Batches, OptimizerKind, Position, Progress, RunControl, ScheduleKind, Snapshot,
    TrainConfig, TrainError, TrainReport, TrainState,
};

struct Data {
    users: usize,
    items: usize,
    train: Ratings,
    valid: Ratings,
}

/// 60 users x 50 items, 4000 ratings: 3200 training ratings, 50 batches of 64 per epoch.
fn data() -> Data {
    let (users, items) = (60, 50);
    let all = support::planted_ratings(users, items, 4000, 11);
    let (train, valid) = support::random_split(&all, 0.2, 3);
    Data {
        users,
        items,
        train,
        valid,
    }
}

fn fingerprint(data: &Data, config: &TrainConfig) -> DataFingerprint {
    DataFingerprint::new(
        data.users,
        data.items,
        &data.train,
        &data.valid,
        config.seed,
    )
}

fn uninterrupted(config: &TrainConfig, data: &Data) -> TrainReport {
    let mut backend = CpuBackend::new(2).unwrap();
    support::train_run(
        &mut backend,
        config,
        data.users,
        data.items,
        &data.train,
        &data.valid,
    )
}

/// Resumes from the checkpoint file at `path` on a fresh backend (1 thread: results must not
/// depend on it) and trains to the end.
fn resume(path: &std::path::Path, config: &TrainConfig, data: &Data) -> TrainReport {
    let checkpoint = Checkpoint::load(path).unwrap();
    checkpoint
        .check_resumable(config, &fingerprint(data, config), path)
        .unwrap();
    let mut backend = CpuBackend::new(1).unwrap();
    let control = RunControl {
        start: checkpoint.position,
        ..RunControl::default()
    };
    train::train_controlled(
        &mut backend,
        config,
        &checkpoint.state,
        &data.train,
        &data.valid,
        control,
        &mut |_| {},
    )
    .unwrap()
    .report
}

fn assert_bit_equal(resumed: &TrainReport, full: &TrainReport) {
    let (a, b) = (&resumed.state, &full.state);
    for (name, (x, y)) in ["user_factors", "item_factors", "user_bias", "item_bias"]
        .iter()
        .zip(a.params.tensors().iter().zip(b.params.tensors()))
    {
        let same = x.len() == y.len()
            && x.iter()
                .zip(y.iter())
                .all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(
            same,
            "{name} differs between the resumed and the uninterrupted run"
        );
    }
    assert_eq!(a.moments, b.moments, "Adam moments differ");
    assert_eq!(a.row_sums, b.row_sums, "Adagrad's row sums differ");
    let (x, y) = (
        resumed.final_valid_loss().unwrap(),
        full.final_valid_loss().unwrap(),
    );
    assert_eq!(x.to_bits(), y.to_bits(), "final valid loss {x} vs {y}");
    let (x, y) = (
        resumed.epochs.last().unwrap().train_loss,
        full.epochs.last().unwrap().train_loss,
    );
    assert_eq!(
        x.to_bits(),
        y.to_bits(),
        "last epoch's train loss {x} vs {y}"
    );
}

fn config(optimizer: OptimizerKind) -> TrainConfig {
    TrainConfig {
        factors: 6,
        epochs: 3,
        optimizer,
        schedule: match optimizer {
            OptimizerKind::AdamW => ScheduleKind::OneCycle,
            _ => ScheduleKind::Constant,
        },
        lr: match optimizer {
            OptimizerKind::AdamW => 5e-3,
            OptimizerKind::Sgd => 0.5,
            OptimizerKind::RowwiseAdagrad => 0.05,
            OptimizerKind::SparseAdam => 0.01,
        },
        // The scale optimisers with their regulariser, so that it is resumed too.
        l2: if optimizer.is_sparse() && optimizer != OptimizerKind::Sgd {
            0.05
        } else {
            0.0
        },
        ..TrainConfig::default()
    }
}

/// Every optimiser.
const OPTIMIZERS: [OptimizerKind; 4] = [
    OptimizerKind::AdamW,
    OptimizerKind::Sgd,
    OptimizerKind::RowwiseAdagrad,
    OptimizerKind::SparseAdam,
];

/// Trains with checkpoints every epoch into `path`, keeping the snapshot after epoch `keep`.
fn checkpoint_at_epoch(config: &TrainConfig, data: &Data, path: &std::path::Path, keep: usize) {
    let mut backend = CpuBackend::new(2).unwrap();
    let state = train::initial_state(config, data.users, data.items);
    let fp = fingerprint(data, config);
    let mut save = |snapshot: &Snapshot| -> Result<(), TrainError> {
        if snapshot.position.epoch == keep {
            Checkpoint {
                config: config.clone(),
                state: snapshot.state.clone(),
                position: snapshot.position,
                data: fp,
            }
            .save(path)
            .map_err(|e| TrainError::Checkpoint(Box::new(e)))?;
        }
        Ok(())
    };
    let control = RunControl {
        checkpoint_every: 1,
        on_checkpoint: Some(&mut save),
        ..RunControl::default()
    };
    train::train_controlled(
        &mut backend,
        config,
        &state,
        &data.train,
        &data.valid,
        control,
        &mut |_| {},
    )
    .unwrap();
}

#[test]
fn resume_at_an_epoch_boundary_gives_the_same_bits_for_every_optimizer() {
    let data = data();
    for optimizer in OPTIMIZERS {
        let config = config(optimizer);
        let full = uninterrupted(&config, &data);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        checkpoint_at_epoch(&config, &data, &path, 1);
        let checkpoint = Checkpoint::load(&path).unwrap();
        assert_eq!(
            checkpoint.position,
            Position {
                epoch: 1,
                batch: 0,
                loss_sum: 0.0
            }
        );
        assert_eq!(
            checkpoint.state.row_sums.is_some(),
            optimizer == OptimizerKind::RowwiseAdagrad,
            "{optimizer:?}: the accumulators travel with the checkpoint"
        );
        assert_eq!(checkpoint.state.moments.is_some(), optimizer.has_moments());
        let resumed = resume(&path, &config, &data);
        assert_eq!(resumed.epochs.len(), 2, "epochs 1 and 2 remain");
        assert_bit_equal(&resumed, &full);
    }
}

#[test]
fn stop_flag_mid_epoch_then_resume_gives_the_same_bits_for_every_optimizer() {
    let data = data();
    for optimizer in OPTIMIZERS {
        let config = config(optimizer);
        let full = uninterrupted(&config, &data);
        // Raise the flag at the first progress report of epoch 1: the loop stops after that run
        // of batches, inside the epoch.
        let stop = AtomicBool::new(false);
        let mut backend = CpuBackend::new(2).unwrap();
        let state = train::initial_state(&config, data.users, data.items);
        let control = RunControl {
            stop: Some(&stop),
            batches_per_call: Some(7),
            ..RunControl::default()
        };
        let outcome = train::train_controlled(
            &mut backend,
            &config,
            &state,
            &data.train,
            &data.valid,
            control,
            &mut |progress| {
                if let Progress::Batches { epoch: 1, .. } = progress {
                    stop.store(true, Ordering::SeqCst);
                }
            },
        )
        .unwrap();
        let position = outcome.stopped_at.expect("the run stopped early");
        assert_eq!(
            (position.epoch, position.batch),
            (1, 7),
            "after one call of epoch 1"
        );
        assert!(position.loss_sum > 0.0);
        assert_eq!(outcome.report.epochs.len(), 1, "only epoch 0 finished");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stopped.ckpt");
        Checkpoint {
            config: config.clone(),
            state: outcome.report.state.clone(),
            position,
            data: fingerprint(&data, &config),
        }
        .save(&path)
        .unwrap();
        let resumed = resume(&path, &config, &data);
        assert_eq!(resumed.epochs[0].epoch, 1);
        // The interrupted epoch reports the very training loss of the uninterrupted one.
        assert_eq!(
            resumed.epochs[0].train_loss.to_bits(),
            full.epochs[1].train_loss.to_bits()
        );
        assert_bit_equal(&resumed, &full);
    }
}

/// `--order blocks` (S = 2 at K = 5,000 on 60 x 50) stopped mid-epoch and resumed from a file:
/// the same bits as the uninterrupted run.
#[test]
fn block_order_stopped_mid_epoch_and_resumed_gives_the_same_bits() {
    let data = data();
    let config = TrainConfig {
        factors: 5000,
        epochs: 2,
        init_std: 0.001,
        order: collabgpu::train::BatchOrder::Blocks,
        ..config(OptimizerKind::RowwiseAdagrad)
    };
    assert_eq!(collabgpu::train::batches::block_ranges(60, 50, 5000), 2);
    let full = uninterrupted(&config, &data);
    let stop = AtomicBool::new(false);
    let mut backend = CpuBackend::new(2).unwrap();
    let state = train::initial_state(&config, data.users, data.items);
    let control = RunControl {
        stop: Some(&stop),
        batches_per_call: Some(5),
        ..RunControl::default()
    };
    let outcome = train::train_controlled(
        &mut backend,
        &config,
        &state,
        &data.train,
        &data.valid,
        control,
        &mut |progress| {
            if let Progress::Batches { epoch: 1, .. } = progress {
                stop.store(true, Ordering::SeqCst);
            }
        },
    )
    .unwrap();
    let position = outcome.stopped_at.expect("the run stopped early");
    assert_eq!((position.epoch, position.batch), (1, 5));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.ckpt");
    Checkpoint {
        config: config.clone(),
        state: outcome.report.state.clone(),
        position,
        data: fingerprint(&data, &config),
    }
    .save(&path)
    .unwrap();
    assert_bit_equal(&resume(&path, &config, &data), &full);
}

#[test]
fn a_checkpoint_file_round_trips_exactly_and_leaves_no_temporary_files() {
    let data = data();
    let config = config(OptimizerKind::AdamW);
    let mut state = train::initial_state(&config, data.users, data.items);
    state.moments.as_mut().unwrap().v.item_bias[3] = 0.125;
    let checkpoint = Checkpoint {
        config: config.clone(),
        state,
        position: Position {
            epoch: 2,
            batch: 17,
            loss_sum: 0.1 + 0.2,
        },
        data: fingerprint(&data, &config),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.ckpt");
    checkpoint.save(&path).unwrap();
    checkpoint.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap(), checkpoint);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a.ckpt")]);
}

#[test]
fn resume_refuses_another_configuration_or_other_data_and_says_what_differs() {
    let data = data();
    let config = config(OptimizerKind::AdamW);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.ckpt");
    checkpoint_at_epoch(&config, &data, &path, 1);
    let checkpoint = Checkpoint::load(&path).unwrap();
    let fp = fingerprint(&data, &config);

    let other = TrainConfig {
        lr: 1e-2,
        ..config.clone()
    };
    let message = checkpoint
        .check_resumable(&other, &fp, &path)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`lr` was 0.005") && message.contains("0.01"),
        "{message}"
    );
    assert!(message.contains("c.ckpt"), "{message}");

    // Same shapes, one rating changed: only the hash tells.
    let mut changed = data.train.clone();
    changed.ratings[7] += 1.0;
    let changed_fp = DataFingerprint::new(data.users, data.items, &changed, &data.valid, 42);
    let message = checkpoint
        .check_resumable(&config, &changed_fp, &path)
        .unwrap_err()
        .to_string();
    assert!(message.contains("data or split differs"), "{message}");

    let fewer = DataFingerprint {
        valid_ratings: fp.valid_ratings - 1,
        ..fp
    };
    let message = checkpoint
        .check_resumable(&config, &fewer, &path)
        .unwrap_err()
        .to_string();
    assert!(message.contains("N_valid"), "{message}");

    // What does not decide the model may change: the check passes with the same inputs.
    checkpoint.check_resumable(&config, &fp, &path).unwrap();
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.ckpt");
    std::fs::write(&path, b"not safetensors at all").unwrap();
    let error = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(error, CheckpointError::Format { .. }), "{error}");
    assert!(error.to_string().contains("junk.ckpt"), "{error}");
}

/// The CPU backend, except that the batch of global step `poison_step` reports a NaN loss.
struct Poisoned {
    inner: CpuBackend,
    poison_step: u64,
    /// The Adam step `t` of every submitted batch whose loss has not been returned yet.
    pending: std::collections::VecDeque<u64>,
}

impl Poisoned {
    fn poison(&mut self, mut losses: Vec<f32>) -> Vec<f32> {
        for loss in &mut losses {
            if self.pending.pop_front() == Some(self.poison_step + 1) {
                *loss = f32::NAN;
            }
        }
        losses
    }
}

impl Backend for Poisoned {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn start(&mut self, config: &TrainConfig, state: &TrainState) -> Result<(), TrainError> {
        self.inner.start(config, state)
    }
    fn set_train_set(&mut self, ratings: &Ratings) -> Result<(), TrainError> {
        self.inner.set_train_set(ratings)
    }
    fn submit(&mut self, batches: &Batches<'_>) -> Result<(), TrainError> {
        self.pending.extend(batches.steps.iter().map(|step| step.t));
        self.inner.submit(batches)
    }
    fn poll(&mut self) -> Result<Vec<f32>, TrainError> {
        let losses = self.inner.poll()?;
        Ok(self.poison(losses))
    }
    fn finish(&mut self) -> Result<Vec<f32>, TrainError> {
        let losses = self.inner.finish()?;
        Ok(self.poison(losses))
    }
    fn set_eval_set(&mut self, ratings: &Ratings) -> Result<(), TrainError> {
        self.inner.set_eval_set(ratings)
    }
    fn eval_sum_squared_error(&mut self) -> Result<f64, TrainError> {
        self.inner.eval_sum_squared_error()
    }
    fn state(&mut self) -> Result<TrainState, TrainError> {
        self.inner.state()
    }
}

#[test]
fn a_loss_that_turns_nan_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint() {
    let data = data();
    let config = config(OptimizerKind::AdamW);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.ckpt");
    let fp = fingerprint(&data, &config);
    let mut backend = Poisoned {
        inner: CpuBackend::new(2).unwrap(),
        poison_step: 50 + 20, // epoch 1, batch 20
        pending: Default::default(),
    };
    let mut saves = 0;
    let mut save = |snapshot: &Snapshot| -> Result<(), TrainError> {
        saves += 1;
        Checkpoint {
            config: config.clone(),
            state: snapshot.state.clone(),
            position: snapshot.position,
            data: fp,
        }
        .save(&path)
        .map_err(|e| TrainError::Checkpoint(Box::new(e)))
    };
    let control = RunControl {
        checkpoint_every: 1,
        on_checkpoint: Some(&mut save),
        ..RunControl::default()
    };
    let state = train::initial_state(&config, data.users, data.items);
    let error = train::train_controlled(
        &mut backend,
        &config,
        &state,
        &data.train,
        &data.valid,
        control,
        &mut |_| {},
    )
    .unwrap_err();
    match &error {
        TrainError::NonFinite { epoch, step, .. } => assert_eq!((*epoch, *step), (1, 70)),
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(error.to_string().contains("lower learning rate"), "{error}");
    assert_eq!(saves, 1, "only epoch 0 was checkpointed");
    let kept = Checkpoint::load(&path).unwrap();
    assert_eq!(kept.position.epoch, 1);
    assert!(kept.state.params.user_factors.iter().all(|x| x.is_finite()));
}
