//! collabgpu trains fastai's DotProductBias collaborative-filtering model — user and item
//! embeddings, their dot product, two biases, a sigmoid range and MSE with weight decay — with
//! hand-written WGSL compute shaders through wgpu, and checks every GPU result against a plain CPU
//! reference. The math is in `docs/MATH.md`.
//!
//! Where a rating goes, layer by layer (each module imports only the ones above it in this list;
//! `tests/architecture.rs` holds it to that):
//! - foundations: [`rng`] (one seed, independent streams), `prefetch`, [`atomic_file`] (whole
//!   writes) and [`shuffle`] (the seeded permutations, fast on large data);
//! - [`model`]: the parameters (`P`, `Q`, `bu`, `bi`), their seeded initialisation, the prediction;
//! - [`data`]: reading MovieLens (every published layout) or any delimited file into a
//!   struct-of-arrays [`data::Ratings`] store with dense id maps, the split, synthetic data with a
//!   planted model, the download cache;
//! - [`train`]: backend-neutral: the validated [`train::TrainConfig`], recipes, schedules, the
//!   seeded batch stream and the epoch loop, which drives any [`train::Backend`];
//! - [`cpu`]: the reference step ([`cpu::reference`]) and the fast CPU backend checked against it;
//!   [`gpu`]: the wgpu backend, one WGSL kernel per operation with the same names as [`cpu`];
//! - [`files`]: the model file, the checkpoint and the training log;
//! - [`inspect`]: questions about a trained model (metrics, rankings, pictures);
//! - [`backends`]: choosing the CPU or a GPU by name.
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
