//! The wgpu backend: adapter choice, one compute pipeline per WGSL kernel in `shaders/`, resident
//! parameter and optimiser buffers, and the orchestrator that streams batches.
//!
//! The modules in the order they build on each other (each uses only those above it):
//! - [`layout`]: the host side of `shaders/common.wgsl`: the [`layout::StepUniform`] and
//!   [`layout::Triple`] records, the binding table, buffer lengths, and the workgroup sizes that
//!   are the shaders' only source of them.
//! - [`shaders`]: the WGSL sources, and each kernel's full text (the workgroup constants,
//!   `common.wgsl`, the kernel).
//! - [`device`]: choosing and opening an adapter ([`GpuOptions`], [`Device`]).
//! - [`kernels`]: the pipelines, their shared bind-group layout, and each dispatch's workgroups.
//! - [`buffers`]: buffer creation, uploads, read-backs and the [`buffers::KernelHarness`] the
//!   kernel tests use.
//! - [`queue`]: the resident training set, `gather_triples` (its own pipeline), and the chunks in
//!   flight whose losses come back through `map_async`.
//! - [`backend`]: [`GpuBackend`], the [`crate::train::Backend`] that trains on the GPU: it holds the
//!   resident parameters, gradients, Adam moments and scratch, and streams chunks of batches.
//!
//! Failures are [`GpuError`]s; through [`crate::train::Backend`] they arrive boxed in
//! [`crate::train::TrainError::Backend`], so the backend-neutral layer never names this backend.

pub mod backend;
pub mod buffers;
pub mod device;
pub mod kernels;
pub mod layout;
pub mod queue;
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
    #[error("unknown --wgpu-backend {0:?}: use one of vulkan, metal, dx12, gl")]
    UnknownWgpuBackend(String),
    #[error(
        "the GPU adapter {adapter:?} binds {has} storage buffers per shader stage, and the kernels \
         bind {needs}. Choose another with --adapter (see `collabgpu info`), or --backend cpu"
    )]
    TooFewStorageBindings {
        adapter: String,
        has: u32,
        needs: u32,
    },
    #[error(
        "could not open the GPU adapter {adapter:?}: {source}. Try another with --adapter, or \
         --backend cpu"
    )]
    DeviceOpen {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// One buffer of a run would exceed `max_storage_buffer_binding_size` (or `max_buffer_size`).
    #[error(
        "{what} needs {bytes} bytes in one buffer, more than this adapter binds ({limit} bytes); \
         {hint}"
    )]
    BindingTooLarge {
        /// What the buffer holds, as the start of a sentence.
        what: String,
        bytes: u64,
        limit: u64,
        /// The flags that shrink it.
        hint: &'static str,
    },
    #[error(
        "the evaluation set needs {needed} chunks but the losses buffer holds {slots}; raise the chunk size"
    )]
    EvalChunks { needed: usize, slots: usize },
    #[error("waiting for the GPU failed: {0}. {LOST}")]
    Poll(#[source] wgpu::PollError),
    #[error("a GPU read-back ended without an answer (its callback was dropped). {LOST}")]
    ReadBackDropped,
    #[error("mapping a GPU buffer for reading failed: {0}. {LOST}")]
    ReadBackMap(#[source] wgpu::BufferAsyncError),
    #[error("reading a mapped GPU buffer failed: {0}. {LOST}")]
    ReadBackView(#[source] wgpu::MapRangeError),
}

/// What to do when the device stops answering mid-run.
const LOST: &str = "The GPU device may have been lost (a driver reset, or out of memory): rerun, \
                    and if it happens again try another adapter with --adapter, or --backend cpu";

/// The backend-neutral layer carries a GPU failure boxed, without naming this backend.
impl From<GpuError> for crate::train::TrainError {
    fn from(error: GpuError) -> Self {
        crate::train::TrainError::Backend(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_device_says_what_to_do_and_reaches_train_error_unchanged() {
        let error = GpuError::ReadBackDropped;
        let message = error.to_string();
        assert!(
            message.contains("rerun") && message.contains("--backend cpu"),
            "{message}"
        );
        let train: crate::train::TrainError = error.into();
        assert!(matches!(train, crate::train::TrainError::Backend(_)));
        assert_eq!(train.to_string(), message);
    }

    #[test]
    fn a_binding_too_large_names_its_bytes_the_limit_and_the_flags() {
        let message = GpuError::BindingTooLarge {
            what: "one batch of 64 ratings".into(),
            bytes: 768,
            limit: 512,
            hint: "lower --bs, or --backend cpu",
        }
        .to_string();
        assert_eq!(
            message,
            "one batch of 64 ratings needs 768 bytes in one buffer, more than this adapter binds \
             (512 bytes); lower --bs, or --backend cpu"
        );
    }
}
