//! The wgpu backend: adapter choice, one compute pipeline per WGSL kernel in `shaders/`, resident
//! parameter and optimiser buffers, and the orchestrator that streams batches.

/// Errors from the GPU backend. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found{detail}. Install a GPU driver; on a CPU-only Linux machine the \
         `mesa-vulkan-drivers` package gives a software Vulkan adapter (lavapipe). \
         Or train with `--backend cpu`."
    )]
    NoAdapter { detail: String },
    #[error("{0}")]
    Other(String),
}
