//! Choosing a backend by name: the one place above both [`crate::cpu`] and [`crate::gpu`], so
//! that the backend-neutral [`crate::train`] never names either.

use crate::cpu::CpuBackend;
use crate::gpu::{GpuBackend, GpuOptions};
use crate::train::{Backend, TrainError};

/// Which backend trains, with its settings.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    /// The CPU on `threads` threads (0: one per core).
    Cpu { threads: usize },
    /// A GPU adapter through wgpu.
    Gpu(GpuOptions),
}

/// An opened backend and, for reports, the adapter's name (`cpu` on the CPU).
pub struct OpenedBackend {
    pub backend: Box<dyn Backend>,
    pub adapter: String,
}

impl BackendChoice {
    /// Opens the backend: starts the CPU threads, or chooses and opens the GPU adapter.
    pub fn open(&self) -> Result<OpenedBackend, TrainError> {
        match self {
            BackendChoice::Cpu { threads } => Ok(OpenedBackend {
                backend: Box::new(CpuBackend::new(*threads)?),
                adapter: "cpu".to_string(),
            }),
            BackendChoice::Gpu(options) => {
                let backend = GpuBackend::new(options)?;
                let adapter = backend.adapter_name().to_string();
                Ok(OpenedBackend {
                    backend: Box::new(backend),
                    adapter,
                })
            }
        }
    }
}
