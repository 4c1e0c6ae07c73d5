//! Setup the benches share: quick mode, criterion's settings, the GPU device and the training
//! ratings of ML-100K. Each bench includes it with `mod common;`.
//!
//! A missing adapter or data set is what the tests do with it (`tests/support/prerequisite.rs`):
//! the cases that need it print why and measure nothing, unless `COLLABGPU_REQUIRE_GPU=1` or
//! `COLLABGPU_REQUIRE_DATA=1` makes that a failure.
#![allow(dead_code)] // each bench uses part of it

#[path = "../../tests/support/prerequisite.rs"]
mod prerequisite;

use std::sync::Arc;
use std::time::Duration;

use collabgpu::data::{IdMap, Ratings};
use collabgpu::gpu::{Device, GpuOptions};
use criterion::Criterion;

/// `COLLABGPU_BENCH_QUICK` is set: CI's smoke run, small sizes and short measurements.
pub fn quick() -> bool {
    std::env::var_os("COLLABGPU_BENCH_QUICK").is_some()
}

/// Criterion's settings for every bench: ten samples (criterion's minimum; an epoch is long), and
/// no plots: criterion draws them with the system's fonts and panics where there are none (this
/// project's CI and GPU machines have none), and BENCHMARKS.md records the printed figures.
///
/// In quick mode a case only has to run and print a plausible figure, so the warm-up and the
/// measurement are cut from criterion's 3 s and 5 s to 0.2 s and 1 s (criterion still takes its
/// ten samples, one iteration each, when an iteration is longer).
/// `-- --quick` on the command line then stops each case after at most about a second.
pub fn criterion() -> Criterion {
    let criterion = Criterion::default().sample_size(10).without_plots();
    if quick() {
        criterion
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1))
            .nresamples(10_000)
    } else {
        criterion
    }
}

/// The default adapter for `bench` (its name in the reason), or `None` with the reason printed.
pub fn gpu_device(bench: &str) -> Option<Arc<Device>> {
    match Device::new(&GpuOptions::default()) {
        Ok(device) => Some(Arc::new(device)),
        Err(e) => {
            prerequisite::skip_or_fail(
                prerequisite::REQUIRE_GPU,
                &format!("{bench}: no GPU adapter: {e}"),
            );
            None
        }
    }
}

/// ML-100K's `u.data` read directly (the benches must not depend on the loader's options), indices
/// as SPEC assigns them: the first 80,000 ratings, or 8,000 in quick mode, and `U`, `I`. `None`,
/// with the reason printed, when the real data is not on this machine.
pub fn ml_100k_train() -> Option<(Ratings, usize, usize)> {
    let path = prerequisite::ml100k_dir()?.join("u.data");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows: Vec<(String, String, f32)> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].parse().unwrap())
        })
        .collect();
    let users = IdMap::from_raw_ids(rows.iter().map(|r| r.0.clone()).collect());
    let items = IdMap::from_raw_ids(rows.iter().map(|r| r.1.clone()).collect());
    let mut ratings = Ratings::default();
    for (u, i, r) in &rows {
        ratings.users.push(users.index_of(u).unwrap());
        ratings.items.push(items.index_of(i).unwrap());
        ratings.ratings.push(*r);
    }
    let n_train = if quick() { 8_000 } else { 80_000 };
    let keep: Vec<u32> = (0..n_train as u32).collect();
    Some((ratings.select(&keep), users.len(), items.len()))
}
