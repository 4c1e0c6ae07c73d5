//! The wgpu backend: adapter choice, one compute pipeline per WGSL kernel in `shaders/`, resident
//! parameter and optimiser buffers, and the orchestrator that streams batches.
//!
//! - [`device`]: choosing and opening an adapter ([`GpuOptions`], [`Device`]).
//! - [`shaders`]: the WGSL sources; [`kernels`]: their pipelines and the per-dispatch `Step` record.
//! - [`buffers`]: uploads, read-backs and the [`buffers::KernelHarness`] the kernel tests use.
//! - [`backend`]: [`GpuBackend`], the [`crate::train::Backend`] that trains on the GPU.

pub mod backend;
pub mod buffers;
pub mod device;
pub mod kernels;
pub mod layout;
pub mod shaders;

pub use backend::{GpuBackend, GpuMemoryReport, GpuTimings};
pub use device::{Device, GpuOptions};

/// Errors from the GPU backend. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found{detail}. Install a GPU driver; on a CPU-only Linux machine the \
         `mesa-vulkan-drivers` package gives a software Vulkan adapter (lavapipe). \
         Or train with `--backend cpu`."
    )]
    NoAdapter { detail: String },
    #[error(
        "the evaluation set needs {needed} chunks but the losses buffer holds {slots}; raise the chunk size"
    )]
    EvalChunks { needed: usize, slots: usize },
    #[error("{0}")]
    Other(String),
}

/// The backend-neutral layer carries a GPU failure boxed, without naming this backend.
impl From<GpuError> for crate::train::TrainError {
    fn from(error: GpuError) -> Self {
        crate::train::TrainError::Backend(Box::new(error))
    }
}
