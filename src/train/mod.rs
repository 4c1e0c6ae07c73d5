//! Backend-neutral training: the validated configuration, the schedules, the seeded batch stream,
//! the epoch loop and the [`Backend`] seam that the CPU and GPU backends both implement.

pub mod backend;
pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod rng;
pub mod schedule;
pub mod shuffle;
pub mod trainer;

pub use backend::{AdamMoments, Backend, Batches, TrainState};
pub use checkpoint::{Checkpoint, CheckpointError, DataFingerprint};
pub use config::{OptimizerKind, ScheduleKind, TrainConfig};
pub use schedule::StepHyper;
pub use trainer::{
    EpochReport, Position, Progress, RunControl, Snapshot, TrainOutcome, TrainReport,
    initial_state, train, train_controlled,
};

/// Errors from training. Messages say what to change.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}: training diverged; try a lower learning rate (--lr)"
    )]
    NonFinite { epoch: usize, step: u64, value: f32 },
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{0}")]
    Other(String),
}
