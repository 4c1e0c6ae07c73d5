//! `collabgpu train` through the binary on a small MovieLens-layout file the test writes itself,
//! and once on the real ML-100K with --json.

use std::path::{Path, PathBuf};
use std::process::Command;

use collabgpu::model::ModelFile;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collabgpu"))
}

/// A `u.data` of 30 users x 20 items with a planted pattern, in a fresh directory.
fn small_ml100k(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for u in 1..=30u32 {
        for i in 1..=20u32 {
            if (u * 7 + i * 3) % 4 != 0 {
                let rating = 1 + (u + 2 * i) % 5;
                text.push_str(&format!(
                    "{u}\t{}\t{rating}\t{}\n",
                    i * 10,
                    880000000 + u * 100 + i
                ));
            }
        }
    }
    let data = dir.join("small");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("u.data"), text).unwrap();
    data
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn json_lines_per_epoch_and_a_summary_and_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path());
    let out = dir.path().join("model.safetensors");
    let output = bin()
        .args(["train", "--data"])
        .arg(&data)
        .args([
            "--epochs",
            "3",
            "--factors",
            "4",
            "--bs",
            "16",
            "--threads",
            "2",
            "--json",
        ])
        .args(["--seed", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 4, "three epochs and a summary");
    for (n, line) in lines[..3].iter().enumerate() {
        assert_eq!(line["epoch"], n);
        for key in ["train_loss", "valid_loss", "valid_rmse", "seconds"] {
            assert!(line[key].as_f64().is_some(), "{key} in {line}");
        }
        let (loss, rmse) = (
            line["valid_loss"].as_f64().unwrap(),
            line["valid_rmse"].as_f64().unwrap(),
        );
        assert!((rmse * rmse - loss).abs() < 1e-9);
    }
    let summary = &lines[3];
    assert_eq!(summary["backend"], "cpu (2 threads)");
    assert_eq!(summary["valid_loss"], lines[2]["valid_loss"]);
    assert!(summary["ratings_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["users"], 30);
    assert_eq!(summary["items"], 20);

    let model = ModelFile::load(&out).unwrap();
    assert_eq!(model.params.factors, 4);
    assert_eq!(model.users.raw(0), "1");
    assert_eq!(model.items.raw(19), "200");
    assert_eq!(model.config.seed, 5);
    assert_eq!(model.config.y_range, Some((0.0, 5.5)));

    // Same flags, same model: the run is reproducible through the binary too, on any thread count.
    let again = dir.path().join("again.safetensors");
    let status = bin()
        .args(["train", "--data"])
        .arg(&data)
        .args([
            "--epochs",
            "3",
            "--factors",
            "4",
            "--bs",
            "16",
            "--threads",
            "1",
            "--json",
        ])
        .args(["--seed", "5", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(ModelFile::load(&again).unwrap().params, model.params);
}

#[test]
fn table_output_has_a_row_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path());
    let output = bin()
        .args(["train", "--data"])
        .arg(&data)
        .args([
            "--epochs",
            "2",
            "--factors",
            "4",
            "--bs",
            "16",
            "--optimizer",
            "sgd",
        ])
        .args([
            "--schedule",
            "constant",
            "--lr",
            "0.05",
            "--no-y-range",
            "--split",
            "time",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("epoch  train_loss  valid_loss  valid_rmse"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(stdout.contains("final valid_loss"), "{stdout}");
}

#[test]
fn bad_flags_say_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path());
    let run = |extra: &[&str]| {
        let output = bin()
            .args(["train", "--data"])
            .arg(&data)
            .args(extra)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    assert!(run(&["--y-range", "5"]).contains("LO,HI"));
    assert!(run(&["--lr=-1"]).contains("--lr"));
    assert!(run(&["--y-range", "5,1"]).contains("--y-range"));
    assert!(
        run(&["--backend", "gpu", "--adapter", "no-such-adapter-xyz"]).contains("--backend cpu")
    );
    assert!(run(&["--bs", "100000"]).contains("--bs"));
}
