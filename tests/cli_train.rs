//! `collabgpu train` through the binary on a small MovieLens-layout file the test writes itself:
//! the JSON lines, the table, the saved model, reproducibility across thread counts, bad flags.

#[path = "support/cli.rs"]
mod cli;

use std::path::Path;

use cli::{assert_epoch_line, bin, json_lines, run_ok, small_ml100k};
use collabgpu::files::ModelFile;

#[test]
fn json_lines_per_epoch_and_a_summary_and_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 10);
    let out = dir.path().join("model.safetensors");
    // The same small run on `threads` CPU threads, saved to `out`.
    let train = |threads: &str, out: &Path| {
        run_ok(
            bin()
                .args(["train", "--data"])
                .arg(&data)
                .args(["--epochs", "3", "--factors", "4", "--bs", "16"])
                .args(["--threads", threads, "--json", "--seed", "5", "--out"])
                .arg(out),
        )
    };
    let output = train("2", &out);
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 4, "three epochs and a summary");
    for (n, line) in lines[..3].iter().enumerate() {
        assert_epoch_line(line, n);
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
    train("1", &again);
    assert_eq!(ModelFile::load(&again).unwrap().params, model.params);
}

#[test]
fn table_output_has_a_row_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 10);
    let output = run_ok(
        bin()
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
            ]),
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
    let data = small_ml100k(dir.path(), 10);
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
