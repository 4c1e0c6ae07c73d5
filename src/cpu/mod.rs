//! The CPU reference backend. Naive on purpose: one plain function per kernel ([`kernels`]), named
//! as the WGSL kernels in `shaders/` are, following SPEC.md literally; [`backend`] composes them
//! into a training step and spreads only the order-independent work over threads.

pub mod backend;
pub mod kernels;
mod param_buffer;
mod simd;
mod sparse_sgd;

pub use backend::CpuBackend;
