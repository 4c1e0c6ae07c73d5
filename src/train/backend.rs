//! The seam between the backend-neutral epoch loop and a backend (CPU or GPU).
//!
//! The loop owns everything random and every schedule: it hands a backend ratings already in batch
//! order together with each step's hyperparameters. A backend owns the parameters and optimiser
//! state while it trains, and hands them back on request.

use super::{StepHyper, TrainConfig, TrainError};
use crate::data::Ratings;
use crate::model::Params;

/// Adam's first and second moments, one tensor per parameter tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamMoments {
    pub m: Params,
    pub v: Params,
}

/// Everything a backend holds while training: enough to checkpoint and resume exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    pub params: Params,
    /// `Some` for `adamw` and `sparse-adam`, `None` otherwise.
    pub moments: Option<AdamMoments>,
    /// `rowwise-adagrad`'s accumulators `s_r`, one per row (SPEC "Scale"), held as a [`Params`]
    /// with `K = 1`: its `user_factors` has one entry per row of `P`, `item_factors` one per row
    /// of `Q`, and its biases one per bias entry. `None` for the other optimisers.
    pub row_sums: Option<Params>,
}

/// A run of consecutive batches, as indices into the training set ([`Backend::set_train_set`]).
/// Batch `s` is the training ratings `order[s*B .. min((s+1)*B, len)]` (or, with `starts`,
/// `order[starts[s] - starts[0] .. starts[s + 1] - starts[0]]`), and `steps[s]` is its optimiser
/// step. Every batch is exactly `B` long except perhaps the last one of the run (when the epoch
/// keeps its short last batch); with `starts` (`--order blocks`) any batch may be shorter than
/// `B`, never empty. Indices rather than the ratings themselves, so that a GPU backend, which holds
/// the training set, receives 4 bytes per rating instead of 12.
#[derive(Debug, Clone, Copy)]
pub struct Batches<'a> {
    /// Training-set indices in batch order.
    pub order: &'a [u32],
    /// `B`.
    pub batch_size: usize,
    pub steps: &'a [StepHyper],
    /// `None`: batches of `B`. `Some`: where each batch starts (one more entry than batches),
    /// counted in the epoch, so relative to `starts[0]` here.
    pub starts: Option<&'a [usize]>,
}

impl Batches<'_> {
    /// The number of batches in the run.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The entry range of batch `s` in `order`.
    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        if let Some(starts) = self.starts {
            return starts[s] - starts[0]..starts[s + 1] - starts[0];
        }
        let start = s * self.batch_size;
        start..(start + self.batch_size).min(self.order.len())
    }
}

/// A training backend. The epoch loop calls `start`, `set_train_set` and `set_eval_set` once, then
/// per epoch `submit` for runs of batches (polling for their losses in between) and `finish`
/// at the end, `eval_sum_squared_error` after each epoch, and finally `state`.
///
/// Submitting and receiving losses are apart so that a backend with a queue (the GPU) can keep
/// several runs of batches in flight: the loop reports progress and checks its stop flag from the
/// losses that have arrived, and waits only once per epoch, in `finish`. A synchronous backend
/// (the CPU) trains in `submit` and has every loss ready at the next `poll`.
pub trait Backend {
    /// Who does the work, for reports (e.g. `cpu (2 threads)`, or the GPU adapter's name).
    fn name(&self) -> String;

    /// Takes the configuration and the starting state (initial parameters, or a checkpoint).
    fn start(&mut self, config: &TrainConfig, state: &TrainState) -> Result<(), TrainError>;

    /// Makes `ratings` the set that [`Batches::order`] indexes (the training set); a GPU backend
    /// uploads it once here. Call after `start`.
    fn set_train_set(&mut self, ratings: &Ratings) -> Result<(), TrainError>;

    /// Queues the batches, to run in order after every batch submitted before, one optimiser step
    /// each. Their losses (the mean squared error of each batch, at the parameters before its
    /// step) arrive later, in submission order, from [`Backend::poll`] and [`Backend::finish`].
    /// May wait for earlier batches when the backend's queue is full.
    fn submit(&mut self, batches: &Batches<'_>) -> Result<(), TrainError>;

    /// The losses of submitted batches that are done and were not returned yet, oldest first,
    /// without waiting (empty when none has arrived).
    fn poll(&mut self) -> Result<Vec<f32>, TrainError>;

    /// Waits until every submitted batch is done and returns the losses not returned yet.
    fn finish(&mut self) -> Result<Vec<f32>, TrainError>;

    /// Runs the batches and returns their losses: [`Backend::submit`] then [`Backend::finish`],
    /// for callers that want the losses at once (the GPU tests). With other batches still
    /// unreturned, their losses come first.
    fn train_batches(&mut self, batches: &Batches<'_>) -> Result<Vec<f32>, TrainError> {
        self.submit(batches)?;
        self.finish()
    }

    /// Makes `ratings` the set that [`Backend::eval_sum_squared_error`] evaluates (the validation
    /// set); a GPU backend uploads it once here.
    fn set_eval_set(&mut self, ratings: &Ratings) -> Result<(), TrainError>;

    /// `sum (pred - r)^2` over the evaluation set at the current parameters.
    fn eval_sum_squared_error(&mut self) -> Result<f64, TrainError>;

    /// The current parameters and optimiser state.
    fn state(&mut self) -> Result<TrainState, TrainError>;
}
