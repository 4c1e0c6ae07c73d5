//! The backend-neutral epoch loop (SPEC "Batches", "Schedules", "Metrics").
//!
//! The loop owns everything random and every schedule: per epoch it draws the permutation, gathers
//! the shuffled `(user, item, rating)` triples, computes each step's [`StepHyper`] on the host and
//! hands runs of batches to the [`Backend`]. The same loop drives the CPU and the GPU backend, so
//! both see the very same batches and scalars.

use std::time::Instant;

use super::TrainState;
use super::batches::{batches_per_epoch, epoch_order};
use super::schedule::step_hyper;
use super::{AdamMoments, Backend, Batches, OptimizerKind, StepHyper, TrainConfig, TrainError};
use crate::data::Ratings;
use crate::model::Params;

/// About this many ratings go to the backend per `train_batches` call, so that a progress callback
/// fires a few times per epoch on large data without costing anything on small data.
pub const RATINGS_PER_CALL: usize = 256 * 1024;

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
    },
    /// An epoch finished and was evaluated.
    Epoch(&'a EpochReport),
}

/// The result of a whole run.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub epochs: Vec<EpochReport>,
    /// The final parameters and optimiser state.
    pub state: TrainState,
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
}

/// SPEC's starting state: the seeded initial parameters, and zero moments for `adamw`.
pub fn initial_state(config: &TrainConfig, users: usize, items: usize) -> TrainState {
    let params = Params::init(users, items, config.factors, config.init_std, config.seed);
    let moments = match config.optimizer {
        OptimizerKind::AdamW => Some(AdamMoments {
            m: Params::zeros(users, items, config.factors),
            v: Params::zeros(users, items, config.factors),
        }),
        OptimizerKind::Sgd => None,
    };
    TrainState { params, moments }
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
    config.validate()?;
    check_shapes(config, state, train, valid)?;
    let n_train = train.len();
    let batch_size = config.batch_size;
    let per_epoch = batches_per_epoch(n_train, batch_size, config.drop_last);
    if per_epoch == 0 {
        return Err(TrainError::Config(format!(
            "{n_train} training ratings make no batch of --bs {batch_size}; use a smaller --bs or more data"
        )));
    }
    let total_steps = (config.epochs * per_epoch) as u64;
    let batches_per_call = RATINGS_PER_CALL.div_ceil(batch_size).max(1);

    backend.start(config, state)?;
    backend.set_eval_set(valid)?;

    // Reused across epochs: the shuffled columns and the step scalars.
    let used = (per_epoch * batch_size).min(n_train);
    let mut users = vec![0u32; used];
    let mut items = vec![0u32; used];
    let mut ratings = vec![0f32; used];
    let mut steps: Vec<StepHyper> = Vec::with_capacity(per_epoch);

    let mut reports = Vec::with_capacity(config.epochs);
    let mut train_seconds = 0.0;
    for epoch in 0..config.epochs {
        let order = epoch_order(n_train, config.seed, epoch);
        for (n, &source) in order[..used].iter().enumerate() {
            users[n] = train.users[source as usize];
            items[n] = train.items[source as usize];
            ratings[n] = train.ratings[source as usize];
        }
        let first_step = (epoch * per_epoch) as u64;
        steps.clear();
        steps
            .extend((0..per_epoch as u64).map(|s| step_hyper(config, first_step + s, total_steps)));

        let started = Instant::now();
        let mut loss_sum = 0.0f64;
        let mut done = 0;
        while done < per_epoch {
            let count = batches_per_call.min(per_epoch - done);
            let start = done * batch_size;
            let end = ((done + count) * batch_size).min(used);
            let run = Batches {
                users: &users[start..end],
                items: &items[start..end],
                ratings: &ratings[start..end],
                batch_size,
                steps: &steps[done..done + count],
            };
            let losses = backend.train_batches(&run)?;
            if losses.len() != count {
                return Err(TrainError::Other(format!(
                    "backend {} returned {} losses for {count} batches",
                    backend.name(),
                    losses.len()
                )));
            }
            for (s, &loss) in losses.iter().enumerate() {
                if !loss.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        step: first_step + (done + s) as u64,
                        value: loss,
                    });
                }
                loss_sum += loss as f64;
            }
            done += count;
            observer(Progress::Batches {
                epoch,
                done,
                total: per_epoch,
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;

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
            ratings_per_second: used as f64 / seconds.max(f64::MIN_POSITIVE),
        };
        observer(Progress::Epoch(&report));
        reports.push(report);
    }

    Ok(TrainReport {
        epochs: reports,
        state: backend.state()?,
        backend: backend.name(),
        ratings_trained: (used * config.epochs) as u64,
        train_seconds,
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
    let wants_moments = config.optimizer == OptimizerKind::AdamW;
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
                "the starting state {} Adam moments but --optimizer is {:?}",
                if state.moments.is_some() {
                    "has"
                } else {
                    "lacks"
                },
                config.optimizer
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
