//! The CPU backend, built around a reference that is naive on purpose:
//!
//! - [`kernels`]: one plain function per operation, named as the WGSL kernels in `shaders/` are;
//! - [`reference`](mod@reference): the training step composed from them literally, as the math reads;
//! - [`backend`]: [`CpuBackend`], the fast paths beside the reference (flat buffers and threads
//!   for `adamw`; for `sgd`, `sparse_sgd` with `simd` and `param_buffer`), bit for bit equal to it
//!   on any thread count.

pub mod backend;
pub mod kernels;
mod param_buffer;
pub mod reference;
mod simd;
mod sparse_sgd;

pub use backend::CpuBackend;
