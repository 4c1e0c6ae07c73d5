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
    /// A GPU adapter that runs on the CPU (lavapipe): worth a word to the user about speed.
    pub software: bool,
}

impl OpenedBackend {
    /// The note to show when the adapter is a software one, `None` otherwise.
    pub fn software_note(&self) -> Option<String> {
        self.software.then(|| {
            format!(
                "note: the GPU adapter {:?} is a software adapter that runs on the CPU (as Mesa's \
                 lavapipe does): right for checking the GPU path, but many times slower than \
                 --backend cpu; install the GPU's driver to train on the GPU",
                self.adapter
            )
        })
    }
}

impl BackendChoice {
    /// Opens the backend: starts the CPU threads, or chooses and opens the GPU adapter.
    pub fn open(&self) -> Result<OpenedBackend, TrainError> {
        match self {
            BackendChoice::Cpu { threads } => Ok(OpenedBackend {
                backend: Box::new(CpuBackend::new(*threads)?),
                adapter: "cpu".to_string(),
                software: false,
            }),
            BackendChoice::Gpu(options) => {
                let backend = GpuBackend::new(options)?;
                let adapter = backend.adapter_name().to_string();
                let software = backend.is_software();
                Ok(OpenedBackend {
                    backend: Box::new(backend),
                    adapter,
                    software,
                })
            }
        }
    }
}
