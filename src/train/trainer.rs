//! The backend-neutral epoch loop (SPEC "Batches", "Schedules", "Metrics").
//!
//! The loop owns everything random and every schedule: per epoch it draws the permutation, computes
//! each step's [`StepHyper`] on the host and hands runs of batches to the [`Backend`] as indices
//! into the training set it was given once. The same loop drives the CPU and the GPU backend, so
//! both see the very same batches and scalars.
//!
//! A backend may return a run's losses later than the call that submitted it (the GPU keeps
//! several runs in flight): the loop counts batches submitted and batches received apart, reports
//! progress and checks the non-finite guard as losses arrive, and waits for the rest once per
//! epoch ([`Backend::finish`]), or when a stop is asked for, so that a stopped run's position
//! counts exactly the batches trained.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::TrainState;
use super::batches::{batches_per_epoch, block_epoch, epoch_order, sorted_by_block};
use super::schedule::step_hyper;
use super::{AdamMoments, Backend, BatchOrder, Batches, StepHyper, TrainConfig, TrainError};
use crate::data::Ratings;
use crate::model::Params;

/// At most this many ratings go to the backend per `submit` call, so that a progress callback
/// fires a few times per epoch on large data without costing anything on small data.
pub const RATINGS_PER_CALL: usize = 256 * 1024;

/// The loop sizes each `submit` call to about this many seconds of work (measured between arrivals
/// of losses), so that a stop request (Ctrl-C) is honoured within about half a second on every
/// backend, however slow a batch is there (on a backend with a queue, plus the few calls in
/// flight).
pub const SECONDS_PER_CALL: f64 = 0.25;

/// Batches in the first call of a run, before any timing is known.
const FIRST_CALL_BATCHES: usize = 16;

/// Where a run starts (or where a stopped run stopped): the next batch to train.
///
/// The random-number "position" needs no field of its own: every epoch's permutation is derived
/// from `(seed, epoch)` alone, and every step's schedule and Adam step count `t` from the global
/// step `epoch * batches_per_epoch + batch`, so `(epoch, batch)` and the configuration fix
/// everything that follows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Position {
    /// The epoch the next batch belongs to, from 0.
    pub epoch: usize,
    /// The next batch inside that epoch, from 0.
    pub batch: usize,
    /// The sum (in f64, in batch order) of the losses of the epoch's batches before `batch`, so
    /// that a resumed epoch reports the very same training loss.
    pub loss_sum: f64,
}

/// How a run is driven beyond its configuration: where it starts, when it may be stopped and when
/// it checkpoints. [`RunControl::default`] is a plain run from the start.
#[derive(Default)]
pub struct RunControl<'a> {
    /// Where to start (a checkpoint's position); the `state` passed in must be the state there.
    pub start: Position,
    /// Checked before each run of batches is submitted: once it is `true` the loop submits no
    /// more, waits for the runs in flight and returns with [`TrainOutcome::stopped_at`] set.
    pub stop: Option<&'a AtomicBool>,
    /// Call `on_checkpoint` after every this many epochs (0: never).
    pub checkpoint_every: usize,
    /// A fixed number of batches per backend call instead of calls sized to
    /// [`SECONDS_PER_CALL`]: for tests that must stop at a known place inside an epoch. The
    /// batches, and so the results, do not depend on it.
    pub batches_per_call: Option<usize>,
    /// Receives a [`Snapshot`] at each checkpoint; an error stops training.
    pub on_checkpoint: Option<&'a mut CheckpointSink<'a>>,
}

/// What receives checkpoints: it writes the [`Snapshot`] somewhere (a file, for the CLI).
pub type CheckpointSink<'a> = dyn FnMut(&Snapshot) -> Result<(), TrainError> + 'a;

/// Everything needed to resume exactly: the backend's state at a position.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: TrainState,
    pub position: Position,
}

/// The result of [`train_controlled`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The epochs trained in this run; `report.state` is the state where the run ended.
    pub report: TrainReport,
    /// `Some(position)` when the stop flag ended the run early: resume from there with
    /// `report.state`.
    pub stopped_at: Option<Position>,
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// Counted from 0, as fastai prints it.
    pub epoch: usize,
    /// The mean of the epoch's batch losses.
    pub train_loss: f64,
    /// `sum (pred - r)^2 / N_valid` after the epoch; `None` without validation ratings.
    pub valid_loss: Option<f64>,
    /// Wall-clock seconds of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
    /// Wall-clock seconds of the validation pass.
    pub eval_seconds: f64,
    /// Training ratings per second of the epoch's training steps.
    pub ratings_per_second: f64,
}

impl EpochReport {
    /// The square root of the validation loss.
    pub fn valid_rmse(&self) -> Option<f64> {
        self.valid_loss.map(f64::sqrt)
    }
}

/// What the training loop reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A run of batches finished: `done` of `total` batches of epoch `epoch`.
    Batches {
        epoch: usize,
        done: usize,
        total: usize,
        /// The mean loss of the epoch's batches so far.
        running_loss: f64,
        /// Training ratings per second of the epoch so far (this run's part of it).
        ratings_per_second: f64,
    },
    /// An epoch finished and was evaluated.
    Epoch(&'a EpochReport),
}

/// The epoch with the lowest validation loss of a run with `--early-stop`, and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct BestEpoch {
    /// Counted from 0, as [`EpochReport::epoch`].
    pub epoch: usize,
    pub valid_loss: f64,
    pub params: Params,
}

/// The result of a whole run.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub epochs: Vec<EpochReport>,
    /// The final parameters and optimiser state (where the run stopped, which with early stopping
    /// is not the best epoch: a checkpoint resumes from here).
    pub state: TrainState,
    /// With `early_stop > 0` and validation ratings: the best epoch among those this run trained,
    /// whose parameters are the model to keep. `None` otherwise.
    pub best: Option<BestEpoch>,
    /// Whether early stopping ended the run before `config.epochs`.
    pub stopped_early: bool,
    /// [`Backend::name`].
    pub backend: String,
    /// Training ratings consumed, over all epochs.
    pub ratings_trained: u64,
    /// Seconds spent in training steps over all epochs (evaluation excluded).
    pub train_seconds: f64,
}

impl TrainReport {
    /// Training ratings per second over the whole run.
    pub fn ratings_per_second(&self) -> f64 {
        self.ratings_trained as f64 / self.train_seconds.max(f64::MIN_POSITIVE)
    }

    /// The validation loss after the last epoch.
    pub fn final_valid_loss(&self) -> Option<f64> {
        self.epochs.last().and_then(|e| e.valid_loss)
    }

    /// The parameters to keep: the best epoch's with early stopping, else the last.
    pub fn kept_params(&self) -> &Params {
        self.best.as_ref().map_or(&self.state.params, |b| &b.params)
    }

    /// The validation loss of [`TrainReport::kept_params`].
    pub fn kept_valid_loss(&self) -> Option<f64> {
        match &self.best {
            Some(best) => Some(best.valid_loss),
            None => self.final_valid_loss(),
        }
    }
}

/// SPEC's starting state: the seeded initial parameters, zero moments for `adamw` and
/// `sparse-adam`, zero accumulators for `rowwise-adagrad`.
pub fn initial_state(config: &TrainConfig, users: usize, items: usize) -> TrainState {
    let params = Params::init(users, items, config.factors, config.init_std, config.seed);
    let moments = config.optimizer.has_moments().then(|| AdamMoments {
        m: Params::zeros(users, items, config.factors),
        v: Params::zeros(users, items, config.factors),
    });
    let row_sums = config
        .optimizer
        .has_row_sums()
        .then(|| Params::zeros(users, items, 1));
    TrainState {
        params,
        moments,
        row_sums,
    }
}

/// Trains `config.epochs` epochs on `train`, evaluating on `valid` after each, starting from
/// `state` (from [`initial_state`] or a checkpoint). `observer` sees every run of batches and every
/// epoch. Stops with [`TrainError::NonFinite`] at the first batch whose loss is NaN or infinite.
pub fn train(
    backend: &mut dyn Backend,
    config: &TrainConfig,
    state: &TrainState,
    train: &Ratings,
    valid: &Ratings,
    observer: &mut dyn FnMut(Progress<'_>),
) -> Result<TrainReport, TrainError> {
    let outcome = train_controlled(
        backend,
        config,
        state,
        train,
        valid,
        RunControl::default(),
        observer,
    )?;
    Ok(outcome.report)
}

/// [`train`] with a starting position (resume), a stop flag (Ctrl-C) and periodic checkpoints.
/// Batches are the same whatever the start and however the epochs are cut into calls, so a run
/// stopped and resumed trains the very same model on the CPU as one that never stopped.
pub fn train_controlled(
    backend: &mut dyn Backend,
    config: &TrainConfig,
    state: &TrainState,
    train: &Ratings,
    valid: &Ratings,
    mut control: RunControl<'_>,
    observer: &mut dyn FnMut(Progress<'_>),
) -> Result<TrainOutcome, TrainError> {
    config.validate()?;
    check_shapes(config, state, train, valid)?;
    let n_train = train.len();
    let batch_size = config.batch_size;
    let shape = (state.params.users(), state.params.items(), config.factors);
    // Block order trains on the ratings sorted by block (the same batches; see `sorted_by_block`).
    let block_sorted;
    let train = match config.order {
        BatchOrder::Random => train,
        BatchOrder::Blocks => {
            block_sorted = sorted_by_block(train, shape);
            &block_sorted
        }
    };
    // The epoch's order and, with `--order blocks`, where each batch starts.
    let plan = |epoch: usize| -> (Vec<u32>, Option<Vec<usize>>) {
        match config.order {
            BatchOrder::Random => (epoch_order(n_train, config.seed, epoch), None),
            BatchOrder::Blocks => {
                let plan = block_epoch(
                    &train.users,
                    &train.items,
                    shape,
                    batch_size,
                    config.seed,
                    epoch,
                );
                (plan.order, Some(plan.starts))
            }
        }
    };
    // Block order: the first epoch's plan tells how many batches every epoch has.
    let mut first_plan = match config.order {
        BatchOrder::Blocks => Some(plan(
            control.start.epoch.min(config.epochs.saturating_sub(1)),
        )),
        BatchOrder::Random => None,
    };
    let per_epoch = match &first_plan {
        Some((_, Some(starts))) => starts.len() - 1,
        _ => batches_per_epoch(n_train, batch_size, config.drop_last),
    };
    if per_epoch == 0 {
        return Err(TrainError::Config(format!(
            "{n_train} training ratings make no batch of --bs {batch_size}; use a smaller --bs or more data"
        )));
    }
    let total_steps = (config.epochs as u64).saturating_mul(per_epoch as u64);
    let max_per_call = RATINGS_PER_CALL.div_ceil(batch_size).max(1);
    let start = control.start;
    let inside = start.epoch < config.epochs && start.batch < per_epoch;
    let at_end = start.epoch == config.epochs && start.batch == 0;
    if !(inside || at_end) {
        return Err(TrainError::Config(format!(
            "cannot start at epoch {}, batch {}: the run has {} epochs of {per_epoch} batches",
            start.epoch, start.batch, config.epochs
        )));
    }
    let fixed_per_call = control.batches_per_call.map(|n| n.max(1));
    let mut batches_per_call = fixed_per_call.unwrap_or(FIRST_CALL_BATCHES.min(max_per_call));

    backend.start(config, state)?;
    backend.set_train_set(train)?;
    backend.set_eval_set(valid)?;

    // How many of an epoch's order the batches use: random order drops the short last batch.
    let used = match config.order {
        BatchOrder::Random => (per_epoch * batch_size).min(n_train),
        BatchOrder::Blocks => n_train,
    };
    let mut steps: Vec<StepHyper> = Vec::with_capacity(per_epoch);
    let mut last_call = batches_per_call;

    // Grown as epochs finish: a reservation for every epoch asked for could be huge.
    let mut reports = Vec::new();
    let mut train_seconds = 0.0;
    let mut ratings_trained = 0u64;
    let mut stopped_at = None;
    let mut best: Option<BestEpoch> = None;
    let mut stopped_early = false;
    let stop_flag = control.stop;
    let stop_requested = || stop_flag.is_some_and(|flag| flag.load(Ordering::SeqCst));
    'epochs: for epoch in start.epoch..config.epochs {
        let resume_here = epoch == start.epoch;
        let (order, starts) = match first_plan.take() {
            Some(first) if epoch == start.epoch => first,
            _ => plan(epoch),
        };
        // Where batch `s` of the epoch starts in the order.
        let offset = |s: usize| match &starts {
            Some(starts) => starts[s],
            None => (s * batch_size).min(used),
        };
        let first_step = (epoch * per_epoch) as u64;
        steps.clear();
        steps
            .extend((0..per_epoch as u64).map(|s| step_hyper(config, first_step + s, total_steps)));

        let started = Instant::now();
        let (mut loss_sum, first_batch) = match resume_here {
            true => (start.loss_sum, start.batch),
            false => (0.0f64, 0),
        };
        // Batches handed to the backend, and batches whose losses came back: apart while a
        // backend with a queue has some in flight.
        let (mut submitted, mut received) = (first_batch, first_batch);
        let mut last_arrival = started;
        let mut stopping = false;
        while received < per_epoch {
            if submitted < per_epoch {
                stopping = stop_requested();
            }
            if !stopping && submitted < per_epoch {
                let count = batches_per_call.min(per_epoch - submitted);
                let (start, end) = (offset(submitted), offset(submitted + count));
                backend.submit(&Batches {
                    order: &order[start..end],
                    batch_size,
                    steps: &steps[submitted..submitted + count],
                    starts: starts
                        .as_ref()
                        .map(|starts| &starts[submitted..=submitted + count]),
                })?;
                submitted += count;
                last_call = count;
            }
            // The one wait of an epoch: once everything is submitted (or a stop was asked for),
            // collect what is still in flight.
            let draining = stopping || submitted == per_epoch;
            let losses = match draining {
                true => backend.finish()?,
                false => backend.poll()?,
            };
            let arrived = received + losses.len();
            if arrived > submitted || (draining && arrived != submitted) {
                return Err(TrainError::LossCount {
                    backend: backend.name(),
                    got: arrived - first_batch,
                    expected: submitted - first_batch,
                });
            }
            for (s, &loss) in losses.iter().enumerate() {
                if !loss.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        step: first_step + (received + s) as u64,
                        value: loss,
                    });
                }
                loss_sum += loss as f64;
            }
            if !losses.is_empty() {
                received = arrived;
                // Size the next call to about SECONDS_PER_CALL of work, from the time per batch
                // since the previous arrival, growing at most fourfold per call so that one fast
                // measurement cannot make a call that ignores Ctrl-C for long.
                let per_batch = last_arrival.elapsed().as_secs_f64() / losses.len() as f64;
                last_arrival = Instant::now();
                let fit = (SECONDS_PER_CALL / per_batch.max(1e-9)) as usize;
                batches_per_call =
                    fixed_per_call.unwrap_or(fit.clamp(1, (last_call * 4).min(max_per_call)));
                observer(Progress::Batches {
                    epoch,
                    done: received,
                    total: per_epoch,
                    running_loss: loss_sum / received as f64,
                    ratings_per_second: (offset(received) - offset(first_batch)) as f64
                        / started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE),
                });
            }
            if stopping {
                train_seconds += started.elapsed().as_secs_f64();
                ratings_trained += (offset(received) - offset(first_batch)) as u64;
                stopped_at = Some(Position {
                    epoch,
                    batch: received,
                    loss_sum,
                });
                break 'epochs;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        let trained_ratings = offset(per_epoch) - offset(first_batch);
        ratings_trained += trained_ratings as u64;

        let eval_started = Instant::now();
        let valid_loss = if valid.is_empty() {
            None
        } else {
            Some(backend.eval_sum_squared_error()? / valid.len() as f64)
        };
        let report = EpochReport {
            epoch,
            train_loss: loss_sum / per_epoch as f64,
            valid_loss,
            seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            ratings_per_second: trained_ratings as f64 / seconds.max(f64::MIN_POSITIVE),
        };
        observer(Progress::Epoch(&report));
        reports.push(report);
        // Early stopping: keep the best epoch's parameters, stop after `early_stop` epochs
        // without a strictly lower validation loss.
        if config.early_stop > 0
            && let Some(loss) = valid_loss
        {
            if best.as_ref().is_none_or(|b| loss < b.valid_loss) {
                best = Some(BestEpoch {
                    epoch,
                    valid_loss: loss,
                    params: backend.state()?.params,
                });
            }
            let best_epoch = best.as_ref().map_or(epoch, |b| b.epoch);
            if epoch - best_epoch >= config.early_stop && epoch + 1 < config.epochs {
                stopped_early = true;
            }
        }
        let every = control.checkpoint_every;
        if every > 0
            && (epoch + 1) % every == 0
            && let Some(save) = control.on_checkpoint.as_mut()
        {
            save(&Snapshot {
                state: backend.state()?,
                position: Position {
                    epoch: epoch + 1,
                    batch: 0,
                    loss_sum: 0.0,
                },
            })?;
        }
        if stopped_early {
            break;
        }
    }

    Ok(TrainOutcome {
        report: TrainReport {
            epochs: reports,
            state: backend.state()?,
            backend: backend.name(),
            ratings_trained,
            train_seconds,
            best,
            stopped_early,
        },
        stopped_at,
    })
}

/// Every index must be inside the parameter tables, and the state must match the configuration,
/// before a backend indexes anything with them.
fn check_shapes(
    config: &TrainConfig,
    state: &TrainState,
    train: &Ratings,
    valid: &Ratings,
) -> Result<(), TrainError> {
    let params = &state.params;
    let (users, items) = (params.users(), params.items());
    if params.factors != config.factors
        || params.user_factors.len() != users * config.factors
        || params.item_factors.len() != items * config.factors
    {
        return Err(TrainError::Config(format!(
            "the starting parameters have K = {} ({} user and {} item factor values for {users} users \
             and {items} items) but the configuration asks for --factors {}",
            params.factors,
            params.user_factors.len(),
            params.item_factors.len(),
            config.factors
        )));
    }
    let wants_moments = config.optimizer.has_moments();
    match &state.moments {
        Some(moments) if wants_moments => {
            for (name, tensor, m, v) in itertools_zip(params, moments) {
                if tensor != m || tensor != v {
                    return Err(TrainError::Config(format!(
                        "Adam moments for {name} have the wrong length ({m} and {v}, expected {tensor})"
                    )));
                }
            }
        }
        None if !wants_moments => {}
        _ => {
            return Err(TrainError::Config(format!(
                "the starting state {} Adam moments but --optimizer is {}",
                if state.moments.is_some() {
                    "has"
                } else {
                    "lacks"
                },
                config.optimizer.name()
            )));
        }
    }
    match &state.row_sums {
        Some(sums) if config.optimizer.has_row_sums() => {
            let shapes = [users, items, users, items];
            if sums.factors != 1 || sums.tensors().iter().zip(shapes).any(|(t, n)| t.len() != n) {
                return Err(TrainError::Config(
                    "the row-wise Adagrad accumulators do not have one entry per row".into(),
                ));
            }
        }
        None if !config.optimizer.has_row_sums() => {}
        _ => {
            return Err(TrainError::Config(format!(
                "the starting state {} row-wise Adagrad accumulators but --optimizer is {}",
                if state.row_sums.is_some() {
                    "has"
                } else {
                    "lacks"
                },
                config.optimizer.name()
            )));
        }
    }
    for (set, ratings) in [("training", train), ("validation", valid)] {
        if ratings.users.len() != ratings.len() || ratings.items.len() != ratings.len() {
            return Err(TrainError::Config(format!(
                "the {set} ratings have columns of different lengths"
            )));
        }
        if let Some(&u) = ratings.users.iter().find(|&&u| u as usize >= users) {
            return Err(TrainError::Config(format!(
                "a {set} rating has user index {u} but the model has only {users} users"
            )));
        }
        if let Some(&i) = ratings.items.iter().find(|&&i| i as usize >= items) {
            return Err(TrainError::Config(format!(
                "a {set} rating has item index {i} but the model has only {items} items"
            )));
        }
    }
    Ok(())
}

/// `(name, len(param), len(m), len(v))` per tensor.
fn itertools_zip<'a>(
    params: &'a Params,
    moments: &'a AdamMoments,
) -> impl Iterator<Item = (&'static str, usize, usize, usize)> + 'a {
    let (p, m, v) = (params.tensors(), moments.m.tensors(), moments.v.tensors());
    (0..4).map(move |t| (Params::TENSOR_NAMES[t], p[t].len(), m[t].len(), v[t].len()))
}
