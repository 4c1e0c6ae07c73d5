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

/// A run of consecutive batches. Batch `s` is entries `s*B .. min((s+1)*B, len)` of the three
/// columns (or, with `starts`, `starts[s] - starts[0] .. starts[s + 1] - starts[0]`), and
/// `steps[s]` is its optimiser step. Every batch is exactly `B` long except perhaps the last one of
/// the run (when the epoch keeps its short last batch); with `starts` (`--order blocks`) any batch
/// may be shorter than `B`, never empty.
#[derive(Debug, Clone, Copy)]
pub struct Batches<'a> {
    pub users: &'a [u32],
    pub items: &'a [u32],
    pub ratings: &'a [f32],
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

    /// The entry range of batch `s`.
    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        if let Some(starts) = self.starts {
            return starts[s] - starts[0]..starts[s + 1] - starts[0];
        }
        let start = s * self.batch_size;
        start..(start + self.batch_size).min(self.ratings.len())
    }
}

/// A training backend. The epoch loop calls `start` once, then `train_batches` for runs of batches
/// and `eval_sum_squared_error` after each epoch, and finally `state`.
pub trait Backend {
    /// Who does the work, for reports (e.g. `cpu (2 threads)`, or the GPU adapter's name).
    fn name(&self) -> String;

    /// Takes the configuration and the starting state (initial parameters, or a checkpoint).
    fn start(&mut self, config: &TrainConfig, state: &TrainState) -> Result<(), TrainError>;

    /// Runs the batches in order, one optimiser step each, and returns each batch's loss (the mean
    /// squared error of the batch, at the parameters before its step).
    fn train_batches(&mut self, batches: &Batches<'_>) -> Result<Vec<f32>, TrainError>;

    /// Makes `ratings` the set that [`Backend::eval_sum_squared_error`] evaluates (the validation
    /// set); a GPU backend uploads it once here.
    fn set_eval_set(&mut self, ratings: &Ratings) -> Result<(), TrainError>;

    /// `sum (pred - r)^2` over the evaluation set at the current parameters.
    fn eval_sum_squared_error(&mut self) -> Result<f64, TrainError>;

    /// The current parameters and optimiser state.
    fn state(&mut self) -> Result<TrainState, TrainError>;
}
