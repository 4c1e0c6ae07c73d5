//! Helpers shared by the GPU tests: one way to get a device (skip or fail), one comparison with
//! absolute plus relative tolerance, seeded random inputs, and where the real data lives.
#![allow(dead_code)]

mod prerequisite;

use std::sync::{Arc, OnceLock};

use collabgpu::gpu::{Device, GpuOptions};
#[allow(unused_imports)] // each test uses part of it
pub use prerequisite::{REQUIRE_DATA, REQUIRE_GPU, ml100k_dir, required, skip_or_fail};

/// The shared GPU device, or `None` (with the reason printed) when this machine has no adapter.
/// With `COLLABGPU_REQUIRE_GPU=1` (CI) a missing adapter fails the test instead.
pub fn gpu_device() -> Option<Arc<Device>> {
    static DEVICE: OnceLock<Result<Arc<Device>, String>> = OnceLock::new();
    let device = DEVICE.get_or_init(|| {
        Device::new(&GpuOptions::default())
            .map(Arc::new)
            .map_err(|e| e.to_string())
    });
    match device {
        Ok(device) => Some(device.clone()),
        Err(reason) => {
            skip_or_fail(REQUIRE_GPU, &format!("no GPU adapter: {reason}"));
            None
        }
    }
}

/// Asserts `|got - want| <= atol + rtol * |want|` entry by entry. On failure names the tensor,
/// prints the first mismatches and the largest difference.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: length {} on the GPU, {} on the CPU",
        got.len(),
        want.len()
    );
    let mut mismatches = Vec::new();
    let mut largest = (0usize, 0.0f32);
    for (n, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = (g - w).abs();
        if diff > largest.1 || diff.is_nan() {
            largest = (n, diff);
        }
        if diff.is_nan() || diff > atol + rtol * w.abs() {
            mismatches.push(n);
        }
    }
    if !mismatches.is_empty() {
        let first: Vec<String> = mismatches
            .iter()
            .take(8)
            .map(|&n| {
                format!(
                    "  [{n}] gpu {} cpu {} (diff {:e})",
                    got[n],
                    want[n],
                    (got[n] - want[n]).abs()
                )
            })
            .collect();
        panic!(
            "{name}: {} of {} entries differ beyond atol {atol:e} + rtol {rtol:e}; first:\n{}\nlargest difference {:e} at [{}]",
            mismatches.len(),
            got.len(),
            first.join("\n"),
            largest.1,
            largest.0
        );
    }
}

/// Seeded uniform floats in `[lo, hi)`.
pub fn random_f32(len: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

/// Seeded indices below `bound`, with index 0 repeated in the first `min(len, 64)` entries, so
/// that one row occurs 64 times in a batch.
pub fn random_indices_with_repeats(len: usize, bound: u32, seed: u64) -> Vec<u32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|b| {
            if b < 64 {
                0
            } else {
                rng.random_range(0..bound)
            }
        })
        .collect()
}

use collabgpu::data::Ratings;
use collabgpu::train::{Backend, TrainConfig, TrainReport};

/// MovieLens 100K through the project's loader, split as `collabgpu train` splits it (random,
/// 20 %, `seed`): `(U, I, train, valid)`, or `None` (with the reason printed) when the data is not
/// on this machine.
pub fn ml100k_split(seed: u64) -> Option<(usize, usize, Ratings, Ratings)> {
    let dir = ml100k_dir()?;
    let dataset = collabgpu::data::load(&dir.to_string_lossy(), &Default::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    let (train, valid) = collabgpu::data::split::split(
        &dataset.ratings,
        collabgpu::data::split::SplitKind::Random,
        0.2,
        seed,
    )
    .expect("a 20 % random split");
    Some((dataset.users.len(), dataset.items.len(), train, valid))
}

/// A seeded random split for synthetic data: the first `round(valid_pct * N)` of a permutation.
pub fn random_split(ratings: &Ratings, valid_pct: f64, seed: u64) -> (Ratings, Ratings) {
    collabgpu::data::split::split(
        ratings,
        collabgpu::data::split::SplitKind::Random,
        valid_pct,
        seed,
    )
    .expect("a random split")
}

/// Trains with the project's epoch loop on `backend` from SPEC's initial state.
pub fn train_run(
    backend: &mut dyn Backend,
    config: &TrainConfig,
    users: usize,
    items: usize,
    train: &Ratings,
    valid: &Ratings,
) -> TrainReport {
    let state = collabgpu::train::initial_state(config, users, items);
    collabgpu::train::train(backend, config, &state, train, valid, &mut |_| {})
        .unwrap_or_else(|e| panic!("training on {} failed: {e}", backend.name()))
}

/// Ratings from a planted low-rank model plus noise, clipped to `[1, 5]`: something a
/// DotProductBias can actually learn.
pub fn planted_ratings(users: usize, items: usize, n: usize, seed: u64) -> Ratings {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let k = 4;
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    let p: Vec<f32> = (0..users * k)
        .map(|_| normal.sample(&mut rng) * 0.6)
        .collect();
    let q: Vec<f32> = (0..items * k)
        .map(|_| normal.sample(&mut rng) * 0.6)
        .collect();
    let mut out = Ratings::default();
    for _ in 0..n {
        let u = rng.random_range(0..users);
        let i = rng.random_range(0..items);
        let dot: f32 = (0..k).map(|j| p[u * k + j] * q[i * k + j]).sum();
        let r = (3.2 + dot + normal.sample(&mut rng) * 0.3)
            .round()
            .clamp(1.0, 5.0);
        out.users.push(u as u32);
        out.items.push(i as u32);
        out.ratings.push(r);
    }
    out
}

/// `sum (pred - r)^2` over `ratings`, computed on the host one rating at a time in f64: the
/// independent answer a GPU evaluation is checked against.
pub fn host_sum_squared_error(
    params: &collabgpu::model::Params,
    ratings: &Ratings,
    y_range: Option<(f32, f32)>,
) -> f64 {
    (0..ratings.len())
        .map(|n| {
            let err =
                params.predict(ratings.users[n], ratings.items[n], y_range) - ratings.ratings[n];
            (err * err) as f64
        })
        .sum()
}
