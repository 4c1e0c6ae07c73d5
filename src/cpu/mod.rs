//! The CPU reference backend. Naive on purpose: one plain function per kernel, named as the WGSL
//! kernels in `shaders/` are, following SPEC.md literally.

pub mod kernels;
