//! Issue 12's bounds through the binary: runs that cannot fit in memory are refused before they
//! allocate, flags have bounds with clear messages, no command panics on a closed stdout, a
//! device or an endless file is never read until memory runs out, and `plot` stays quick and
//! small on models of large or zero `K`. Every case runs in seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/hand_model.rs"]
mod hand;

use cli::{bin, collabgpu, path, stderr_of_failure, stdout, tiny_ml100k};
use collabgpu::data::IdMap;
use collabgpu::files::ModelFile;
use collabgpu::model::Params;
use collabgpu::train::TrainConfig;
use collabgpu::train::memory::AVAILABLE_MEMORY_VAR;

/// A failure that is a message, not a panic (rc 1, not 101, and no "panicked").
fn clean_failure(output: &std::process::Output) -> String {
    let err = stderr_of_failure(output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A model of `users` x `items` with `k` factors, saved under `dir`.
fn write_model(dir: &Path, name: &str, users: usize, items: usize, k: usize) -> PathBuf {
    let ids = |n: usize| IdMap::from_raw_ids((1..=n).map(|i| i.to_string()).collect());
    let model = ModelFile {
        params: Params::init(users, items, k, 0.5, 7),
        users: ids(users),
        items: ids(items),
        titles: None,
        config: TrainConfig {
            factors: k,
            ..TrainConfig::default()
        },
        split: None,
        training: None,
    };
    let file = dir.join(name);
    model.save(&file).unwrap();
    file
}

fn train_args<'a>(data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--data", data, "--quiet", "--epochs", "1"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn train_refuses_a_run_larger_than_the_available_memory_before_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    // The override stands for a small machine: 65 rows of K = 4096 need some 14 MB.
    let output = bin()
        .args(train_args(path(&data), &["--factors", "4096"]))
        .env(AVAILABLE_MEMORY_VAR, "1000000")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = clean_failure(&output);
    assert!(
        err.contains("train needs about") && err.contains("976.6 KiB is available"),
        "{err}"
    );
    assert!(err.contains("--factors") && err.contains("Adam"), "{err}");

    // The real figure (MemAvailable): B K alone is terabytes here, on any machine.
    let output = bin()
        .args(train_args(
            path(&data),
            &["--factors", "65536", "--bs", "16777216"],
        ))
        .env_remove(AVAILABLE_MEMORY_VAR)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = clean_failure(&output);
    assert!(
        err.contains("TiB of host memory") && err.contains("MemAvailable"),
        "{err}"
    );

    // And a run that fits still trains under the override.
    let output = bin()
        .args(train_args(path(&data), &["--factors", "4"]))
        .env(AVAILABLE_MEMORY_VAR, "100000000")
        .output()
        .unwrap();
    stdout(&output);
}

#[test]
fn flags_out_of_range_are_refused_with_their_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    let data = path(&data);
    let max = "18446744073709551615";
    for (flag, value, expected) in [
        ("--factors", max, "--factors must lie in 1..=65536"),
        ("--factors", "0", "--factors must lie in 1..=65536"),
        ("--epochs", max, "--epochs must lie in 1..=1000000"),
        (
            "--epochs",
            "1000000000000",
            "--epochs must lie in 1..=1000000",
        ),
        ("--bs", max, "--bs must lie in 1..=16777216"),
        ("--threads", "100000", "--threads must be at most"),
        ("--threads", max, "--threads must be at most"),
    ] {
        let mut args = vec!["train", "--data", data, "--quiet"];
        args.extend([flag, value]);
        let err = clean_failure(&collabgpu(&args));
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
    let err = clean_failure(&collabgpu(&["bench", "--data", data, "--factors", max]));
    assert!(err.contains("--factors must lie in"), "{err}");
    let err = clean_failure(&collabgpu(&[
        "bench",
        "--data",
        data,
        "--backends",
        "cpu",
        "--threads",
        "100000",
    ]));
    assert!(err.contains("--threads must be at most"), "{err}");
}

#[test]
fn negative_numbers_read_as_values_of_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    for (flag, value, expected) in [
        ("--lr", "-1", "--lr must be a positive number, got -1"),
        ("--wd", "-0.5", "--wd must be zero or positive, got -0.5"),
        ("--init-std", "-1", "--init-std must be zero or positive"),
        ("--valid-pct", "-0.1", "--valid-pct must lie in [0, 1)"),
        ("--y-range", "-1,-2", "--y-range needs LO < HI, got -1,-2"),
    ] {
        let err = clean_failure(&collabgpu(&train_args(path(&data), &[flag, value])));
        assert!(err.contains(expected), "{flag} {value}: {err}");
        assert!(!err.contains("unexpected argument"), "{err}");
    }
    // A negative lower bound is a y-range like any other.
    let output = collabgpu(&train_args(path(&data), &["--y-range", "-1,5.5"]));
    stdout(&output);
}

/// Runs `args` with stdout a pipe whose reader is already gone, as `| head -1` leaves it.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collabgpu"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    let data = path(&data);
    let model = dir.path().join("hand.safetensors");
    hand::hand_model(Some((0.0, 5.5))).save(&model).unwrap();
    let model = path(&model);
    let log = dir.path().join("train.jsonl");
    std::fs::write(
        &log,
        "{\"epoch\":0,\"train_loss\":1.0}\n{\"epoch\":1,\"train_loss\":0.8}\n",
    )
    .unwrap();
    let picture = dir.path().join("loss.svg");
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats", "--data", data],
        vec!["stats", "--data", data, "--json"],
        vec!["eval", "--model", model, "--data", data],
        vec!["predict", "--model", model, "--user", "1", "--item", "5"],
        vec![
            "predict", "--model", model, "--user", "1", "--item", "5", "--json",
        ],
        vec!["recommend", "--model", model, "--user", "1"],
        vec!["similar", "--model", model, "--item", "5"],
        vec!["biases", "--model", model],
        vec!["biases", "--model", model, "--json"],
        vec!["info"],
        vec!["plot", "--log", path(&log), "--out", path(&picture)],
    ];
    for args in commands {
        let output = with_closed_stdout(&args);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !err.contains("panicked") && err.is_empty(),
            "{args:?}: {} {err}",
            output.status
        );
    }
}

#[test]
fn devices_and_endless_files_are_refused_not_read_until_memory_runs_out() {
    let zero = "/dev/zero";
    if !Path::new(zero).exists() {
        eprintln!("skipped: no {zero}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let err = clean_failure(&collabgpu(&[
        "predict", "--model", zero, "--user", "1", "--item", "5",
    ]));
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let data = tiny_ml100k(dir.path());
    let err = clean_failure(&collabgpu(&train_args(path(&data), &["--resume", zero])));
    assert!(err.contains("not a regular file"), "{err}");
    let out = dir.path().join("loss.svg");
    let err = clean_failure(&collabgpu(&["plot", "--log", zero, "--out", path(&out)]));
    assert!(err.contains("larger than 64 MiB"), "{err}");
    let err = clean_failure(&collabgpu(&[
        "plot",
        "--log",
        path(dir.path()),
        "--out",
        path(&out),
    ]));
    assert!(err.contains("a directory"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_model_larger_than_the_available_memory_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hand.safetensors");
    hand::hand_model(None).save(&model).unwrap();
    let output = bin()
        .args(["biases", "--model", path(&model)])
        .env(AVAILABLE_MEMORY_VAR, "100")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = clean_failure(&output);
    assert!(
        err.contains("reading this file needs about") && err.contains("100 B is available"),
        "{err}"
    );
}

#[test]
fn plot_is_quick_and_small_on_wide_models() {
    let dir = tempfile::tempdir().unwrap();
    // The 240 KB model claiming K = 30000 asked for a 7.2 GB covariance; K = 1500 for
    // minutes of Jacobi sweeps. Both now take the subspace iteration's few passes over the rows.
    for (users, items, k) in [(1, 1, 30_000), (2, 2, 30_000), (3, 150, 1500)] {
        let model = write_model(
            dir.path(),
            &format!("wide-{items}.safetensors"),
            users,
            items,
            k,
        );
        let out = dir.path().join(format!("wide-{items}.svg"));
        let text = stdout(&collabgpu(&[
            "plot",
            "--model",
            path(&model),
            "--out",
            path(&out),
            "--json",
        ]));
        let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(summary["fitted_items"], items, "{summary}");
        let shares = summary["variance_share"].as_array().unwrap();
        assert!(
            shares
                .iter()
                .all(|s| s.as_f64().is_some_and(f64::is_finite)),
            "{summary}"
        );
        assert!(out.exists());
    }
}

#[test]
fn plot_refuses_a_model_without_factors() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_model(dir.path(), "k0.safetensors", 3, 4, 0);
    let out = dir.path().join("k0.svg");
    let err = clean_failure(&collabgpu(&[
        "plot",
        "--model",
        path(&model),
        "--out",
        path(&out),
    ]));
    // Loading refuses the file (K = 0 is no model); the factor map refuses it too when given
    // one built in memory.
    assert!(
        err.contains("K (`factors`") && err.contains("is 0"),
        "{err}"
    );
    assert!(!out.exists());
    let model = ModelFile {
        params: Params::init(3, 4, 0, 0.5, 7),
        ..ModelFile::load(&write_model(dir.path(), "k1.safetensors", 3, 4, 1)).unwrap()
    };
    let err = collabgpu::inspect::plot::factor_map(&model, None, 5).unwrap_err();
    assert!(err.to_string().contains("K = 0"), "{err}");
}
