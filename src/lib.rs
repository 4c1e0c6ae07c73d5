//! collabgpu trains fastai's DotProductBias collaborative-filtering model — user and item
//! embeddings, their dot product, two biases, a sigmoid range and MSE with weight decay — with
//! hand-written WGSL compute shaders through wgpu, and checks every GPU result against a plain CPU
//! reference that follows `SPEC.md` literally.
//!
//! Where a rating goes, in order:
//! - [`data`] reads MovieLens (every published layout) or any delimited file into a struct-of-arrays
//!   [`data::Ratings`] store with dense id maps, splits it, or synthesises data with a planted model.
//! - [`model`] holds the parameters (`P`, `Q`, `bu`, `bi`), their seeded initialisation, the
//!   prediction and the safetensors model file.
//! - [`train`] is backend-neutral: the validated [`train::TrainConfig`], the schedules, the seeded
//!   batch stream and the epoch loop, which drives any [`train::Backend`].
//! - [`cpu`] is the reference backend: one plain function per kernel.
//! - [`gpu`] is the wgpu backend: one WGSL kernel per operation, with the same names as [`cpu`].
//!
//! Glossary used everywhere: `B` batch size, `K` latent factors, `U` users, `I` items, `N` ratings.

pub mod atomic_file;
pub mod backends;
pub mod cpu;
pub mod data;
pub mod files;
pub mod gpu;
pub mod inspect;
pub mod model;
mod prefetch;
pub mod rng;
pub mod shuffle;
pub mod train;
