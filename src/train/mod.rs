//! Backend-neutral training: the validated configuration, the schedules, the seeded batch stream,
//! the epoch loop and the [`Backend`] seam that the CPU and GPU backends both implement.

pub mod backend;
pub mod batches;
pub mod config;
pub mod memory;
pub mod recipe;
pub mod schedule;
pub mod trainer;

pub use backend::{AdamMoments, Backend, Batches, TrainState};
pub use config::{BatchOrder, OptimizerKind, ScheduleKind, TrainConfig, Y_RANGE_LIMIT};
pub use memory::{MemoryError, MemoryEstimate, Placement};
pub use recipe::Recipe;
pub use schedule::StepHyper;
pub use trainer::{
    BestEpoch, EpochReport, Position, Progress, RunControl, Snapshot, TrainOutcome, TrainReport,
    initial_state, train, train_controlled,
};

/// Errors from training. Messages say what to change. This layer names no backend: a backend's
/// own failure (a lost GPU device, say) arrives boxed in [`TrainError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training diverged; try a lower learning rate (--lr)"
    )]
    NonFinite { epoch: usize, step: u64, value: f32 },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A backend was driven out of order: a bug in the caller, not in the user's input.
    #[error("the {backend} backend was asked to {call} before `start`")]
    NotStarted {
        backend: &'static str,
        call: &'static str,
    },
    #[error(
        "batches of {got} ratings, but the {backend} backend was started for --bs {started_for}"
    )]
    BatchSize {
        backend: &'static str,
        got: usize,
        started_for: usize,
    },
    #[error("a batch holds a user index >= {users} or an item index >= {items}")]
    IndexOutOfRange { users: usize, items: usize },
    #[error("a batch names training rating {index}, but the training set holds {len}")]
    OrderOutOfRange { index: u32, len: usize },
    #[error("backend {backend} returned {got} losses for {expected} batches")]
    LossCount {
        backend: String,
        got: usize,
        expected: usize,
    },
    #[error("could not start {threads} CPU threads: {source}")]
    Threads {
        threads: usize,
        source: rayon::ThreadPoolBuildError,
    },
    #[error("cannot write the checkpoint: {0}")]
    Checkpoint(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}
