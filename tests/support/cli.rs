//! Helpers shared by the CLI tests (`tests/cli_*.rs`): running the binary, reading what it prints,
//! and the small MovieLens-layout data sets the tests write for themselves.
//!
//! Included as `#[path = "support/cli.rs"] mod cli;` rather than through `support/mod.rs`, so that a
//! CLI test that needs no GPU helper does not compile them. Tests on the real ML-100K, or that
//! skip without an adapter, include `support/prerequisite.rs` the same way and take the folder
//! from its `ml100k_dir` (`None`, the reason printed, when this machine lacks it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `collabgpu` binary this test run built.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collabgpu"))
}

/// Runs the binary with `args` and no `RUST_BACKTRACE`, so that error output is what a user sees.
pub fn collabgpu(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the collabgpu binary runs")
}

/// Runs `command`, failing with its status, stdout and stderr unless it succeeded.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("running collabgpu");
    assert!(
        output.status.success(),
        "collabgpu failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The stdout of a run that must have succeeded (fails with its stderr otherwise).
pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "collabgpu failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The one JSON object a successful `collabgpu ARGS --json` prints.
pub fn json(args: &[&str]) -> Value {
    let text = stdout(&collabgpu(args));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One JSON value per line (`train --json`, `bench --json`, a `--log` file).
pub fn json_lines(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Checks one per-epoch line of `train --json` or `--log`: epoch `n`, the losses and seconds as
/// numbers, and an RMSE that is the square root of the validation MSE.
pub fn assert_epoch_line(line: &Value, n: usize) {
    assert_eq!(line["epoch"], n, "{line}");
    for key in ["train_loss", "valid_loss", "valid_rmse", "seconds"] {
        assert!(line[key].as_f64().is_some(), "{key} in {line}");
    }
    let (loss, rmse) = (
        line["valid_loss"].as_f64().unwrap(),
        line["valid_rmse"].as_f64().unwrap(),
    );
    assert!((rmse * rmse - loss).abs() < 1e-9, "{line}");
}

/// The stderr of a run that must have failed.
pub fn stderr_of_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure, got {:?}",
        output
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `p` as an argument (the temporary folders are UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Writes `dir/u.data` as GroupLens writes ML-100K: one `user TAB item TAB rating TAB timestamp`
/// line per `[user, item, rating, timestamp]`. Returns `dir`, creating it when needed.
pub fn write_u_data(dir: &Path, ratings: impl IntoIterator<Item = [u32; 4]>) -> PathBuf {
    let text: String = ratings
        .into_iter()
        .map(|[user, item, rating, timestamp]| format!("{user}\t{item}\t{rating}\t{timestamp}\n"))
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("u.data"), text).unwrap();
    dir.to_path_buf()
}

/// Writes `dir/u.item` as GroupLens writes ML-100K: `id|title|release|video release|url` and the
/// 19 genre flags (all 0 here), one line per `(item id, title)`.
pub fn write_u_item(dir: &Path, titles: impl IntoIterator<Item = (u32, String)>) {
    let text: String = titles
        .into_iter()
        .map(|(item, title)| format!("{item}|{title}|||{}\n", "|0".repeat(19)))
        .collect();
    std::fs::write(dir.join("u.item"), text).unwrap();
}

/// Users `1..=U` rating items `1..=I` where `rating(u, i)` says so; item `i`'s raw id is
/// `i * item_id_step` and its timestamp `880000000 + 100 u + i`.
fn planted(
    users: u32,
    items: u32,
    item_id_step: u32,
    rating: impl Fn(u32, u32) -> Option<u32>,
) -> impl Iterator<Item = [u32; 4]> {
    (1..=users)
        .flat_map(move |u| (1..=items).map(move |i| (u, i)))
        .filter_map(move |(u, i)| {
            rating(u, i).map(|r| [u, i * item_id_step, r, 880000000 + u * 100 + i])
        })
}

/// `dir/small/u.data`: 30 users x 20 items, `1 + (u + 2 i) mod 5` stars, with a quarter of the
/// pairs unrated. Item ids are `i * item_id_step`: a step of 10 makes ids (10 ... 200) whose string
/// order differs from their numeric order.
pub fn small_ml100k(dir: &Path, item_id_step: u32) -> PathBuf {
    let ratings = planted(30, 20, item_id_step, |u, i| {
        ((u * 7 + i * 3) % 4 != 0).then_some(1 + (u + 2 * i) % 5)
    });
    write_u_data(&dir.join("small"), ratings)
}

/// `dir/tiny/u.data`: 40 users x 25 items, `1 + (u + 2 i) mod 5` stars, a third of the pairs unrated.
pub fn tiny_ml100k(dir: &Path) -> PathBuf {
    let ratings = planted(40, 25, 1, |u, i| {
        ((u * 5 + i * 3) % 3 != 0).then_some(1 + (u + 2 * i) % 5)
    });
    write_u_data(&dir.join("tiny"), ratings)
}

/// `dir/small/u.data`: 40 users x 30 items from a planted rank-2 pattern
/// (`3 + a(u) b(i)` plus a parity bump, with `a, b` in {-1, 0, 1}), a third of the pairs unrated.
pub fn rank2_ml100k(dir: &Path) -> PathBuf {
    let ratings = planted(40, 30, 1, |u, i| {
        let (a, b) = ((u % 3) as i32 - 1, (i % 3) as i32 - 1);
        ((u * 7 + i * 3) % 3 != 0).then_some((3 + a * b + ((u + i) % 2) as i32).clamp(1, 5) as u32)
    });
    write_u_data(&dir.join("small"), ratings)
}
