//! What a test, bench or example needs from the machine beyond the repository (a GPU adapter, the
//! real MovieLens 100K) and the one rule for when it is missing: print why and return, so that a
//! fresh offline clone passes `cargo test`, unless the matching `COLLABGPU_REQUIRE_*=1` is set
//! (CI), where the run fails instead.
//!
//! The single source for tests (through `tests/support/mod.rs`, or included by the tests that do
//! not compile that, the CLI tests among them, as `#[path = "support/prerequisite.rs"] mod
//! prerequisite;`) and benches (`benches/common/mod.rs` includes it by path the same way, as an
//! example that needs the real data would).
#![allow(dead_code)] // each includer uses part of it

use std::path::PathBuf;

use collabgpu::data::download;

/// Set to `1`, a missing GPU adapter fails the run instead of skipping.
pub const REQUIRE_GPU: &str = "COLLABGPU_REQUIRE_GPU";
/// Set to `1`, missing real data fails the run instead of skipping.
pub const REQUIRE_DATA: &str = "COLLABGPU_REQUIRE_DATA";

/// Whether `$require_var` is `1`.
pub fn required(require_var: &str) -> bool {
    std::env::var(require_var).is_ok_and(|v| v == "1")
}

/// Called where something a run needs is missing: panics with `reason` when `$require_var=1`,
/// else prints `skipping: {reason}` so that the caller can return.
pub fn skip_or_fail(require_var: &str, reason: &str) {
    if required(require_var) {
        panic!("{require_var}=1 but {reason}");
    }
    eprintln!("skipping: {reason}");
}

/// The data set the tests, benches and examples read for real.
const ML_100K: &str = "ml-100k";

/// The folders that may hold `ml-100k/`, in the order they are tried: `$COLLABGPU_DATA`,
/// `shared/data` beside the repository, then the download cache (`collabgpu download ml-100k`
/// puts the data set there; with `$COLLABGPU_DATA` unset that is the user cache). A cache the
/// platform cannot name stands in the list as the reason.
fn data_folders() -> Vec<Result<PathBuf, String>> {
    let mut folders = Vec::new();
    if let Some(data) = std::env::var_os(download::CACHE_VAR).filter(|v| !v.is_empty()) {
        folders.push(Ok(PathBuf::from(data)));
    }
    folders.push(Ok(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data"
    ))));
    match download::cache_dir() {
        Ok(cache) if folders.contains(&Ok(cache.clone())) => {}
        Ok(cache) => folders.push(Ok(cache)),
        Err(e) => folders.push(Err(format!("(no download cache: {e})"))),
    }
    folders
}

/// The real MovieLens 100K folder (holding `u.data`), or `None` with the reason printed, naming
/// every folder looked in. With `COLLABGPU_REQUIRE_DATA=1` a missing data set fails instead.
pub fn ml100k_dir() -> Option<PathBuf> {
    let folders = data_folders();
    if let Some(dir) = folders
        .iter()
        .flatten()
        .find_map(|folder| download::cached(ML_100K, folder))
    {
        return Some(dir);
    }
    let looked_in: Vec<String> = folders
        .iter()
        .map(|folder| match folder {
            Ok(folder) => format!("  {}", folder.join(ML_100K).display()),
            Err(reason) => format!("  {reason}"),
        })
        .collect();
    skip_or_fail(
        REQUIRE_DATA,
        &format!(
            "the real MovieLens 100K ({ML_100K}/u.data) is in none of:\n{}\n\
             `collabgpu download {ML_100K}` fetches it, or set {} to a folder holding {ML_100K}/",
            looked_in.join("\n"),
            download::CACHE_VAR
        ),
    );
    None
}
