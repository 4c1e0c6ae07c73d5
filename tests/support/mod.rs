//! Helpers shared by the GPU tests: one way to get a device (skip or fail), one comparison with
//! absolute plus relative tolerance, seeded random inputs, and where the real data lives.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use collabgpu::gpu::{Device, GpuOptions};

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
            if std::env::var("COLLABGPU_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("COLLABGPU_REQUIRE_GPU=1 but no GPU adapter: {reason}");
            }
            eprintln!("skipping GPU test: {reason}");
            None
        }
    }
}

/// Asserts `|got - want| <= atol + rtol * |want|` entry by entry. On failure names the tensor,
/// prints the first mismatches and the largest difference.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length {} on the GPU, {} on the CPU", got.len(), want.len());
    let mut mismatches = Vec::new();
    let mut largest = (0usize, 0.0f32);
    for (n, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = (g - w).abs();
        if diff > largest.1 || diff.is_nan() {
            largest = (n, diff);
        }
        if !(diff <= atol + rtol * w.abs()) {
            mismatches.push(n);
        }
    }
    if !mismatches.is_empty() {
        let first: Vec<String> = mismatches
            .iter()
            .take(8)
            .map(|&n| format!("  [{n}] gpu {} cpu {} (diff {:e})", got[n], want[n], (got[n] - want[n]).abs()))
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
        .map(|b| if b < 64 { 0 } else { rng.random_range(0..bound) })
        .collect()
}

/// MovieLens 100K beside the repository (`../shared/data/ml-100k`); panics saying where it is
/// expected when it is missing.
pub fn ml100k_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/ml-100k"));
    assert!(
        dir.join("u.data").exists(),
        "MovieLens 100K is expected at {} (a `shared/` folder beside the repository)",
        dir.display()
    );
    dir
}
