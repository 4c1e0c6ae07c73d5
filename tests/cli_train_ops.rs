//! `collabgpu train` run for hours, through the binary: Ctrl-C (SIGINT to the child) writes a
//! checkpoint and names the resume command, and resuming gives the very model of a run that never
//! stopped; `--log` writes what `plot --log` reads; a diverging run keeps the last good
//! checkpoint; `--resume` refuses other flags.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/prerequisite.rs"]
mod prerequisite;

use cli::{assert_epoch_line, bin, json_lines, run_ok, small_ml100k};
use collabgpu::files::ModelFile;
use prerequisite::ml100k_dir;

fn assert_same_model(a: &Path, b: &Path) {
    let (a, b) = (ModelFile::load(a).unwrap(), ModelFile::load(b).unwrap());
    for (name, (x, y)) in ["user_factors", "item_factors", "user_bias", "item_bias"]
        .iter()
        .zip(a.params.tensors().iter().zip(b.params.tensors()))
    {
        assert!(
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p.to_bits() == q.to_bits()),
            "{name} differs between the resumed and the uninterrupted run"
        );
    }
}

/// About a second per epoch on ML-100K in the test profile (opt-level 2): long enough to be
/// interrupted inside epoch 1.
const RECIPE: [&str; 10] = [
    "--epochs",
    "3",
    "--factors",
    "64",
    "--bs",
    "8",
    "--threads",
    "1",
    "--seed",
    "9",
];

#[test]
fn ctrl_c_checkpoints_and_the_resumed_run_equals_an_uninterrupted_one() {
    let Some(data) = ml100k_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let interrupted_out = dir.path().join("resumed.safetensors");
    let mut child = bin()
        .current_dir(dir.path())
        .args(["train", "--json", "--data"])
        .arg(&data)
        .args(RECIPE)
        .arg("--out")
        .arg(&interrupted_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt as soon as epoch 0 is reported: epoch 1 is then under way.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no epoch line");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        lines.push(value.clone());
        if value["epoch"] == 0 {
            break;
        }
    }
    // A moment into epoch 1, so that its first backend call is under way; the loop stops after
    // that call (about 0.25 s of work), well inside the epoch (0.9 s on a quiet 2-core machine,
    // longer under load; at --bs 16 it was 0.4 s, and a 300 ms wait let it finish first).
    std::thread::sleep(std::time::Duration::from_millis(100));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = std::time::Instant::now();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    let reaction = signalled.elapsed().as_secs_f64();
    // Calls are sized to about 0.25 s, so the stop comes well before the ~2 s left of the run.
    assert!(reaction < 1.5, "took {reaction:.2} s to stop after SIGINT");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let last = json_lines(&rest).pop().expect("an `interrupted` line");
    assert_eq!(last["type"], "interrupted", "{last}");
    assert_eq!(last["epoch"], 1, "{last}");
    eprintln!("stopped at {last} {reaction:.3} s after SIGINT");
    assert!(
        last["batch"].as_u64().unwrap() > 0,
        "stopped inside epoch 1: {last}"
    );
    let checkpoint = dir.path().join("resumed.safetensors.ckpt");
    assert_eq!(last["checkpoint"], checkpoint.display().to_string());
    assert!(checkpoint.exists(), "the checkpoint beside --out");
    assert!(!interrupted_out.exists(), "no model from a stopped run");
    assert!(
        stderr.contains("saved a checkpoint to") && stderr.contains("resume with:"),
        "{stderr}"
    );
    let command = last["resume_command"].as_str().unwrap();
    assert!(
        command.ends_with(&format!("--resume {}", checkpoint.display())),
        "{command}"
    );

    let resumed = run_ok(
        bin()
            .current_dir(dir.path())
            .args(["train", "--json", "--data"])
            .arg(&data)
            .args(RECIPE)
            .arg("--out")
            .arg(&interrupted_out)
            .arg("--resume")
            .arg(&checkpoint),
    );
    let resumed_summary = json_lines(&resumed.stdout).pop().unwrap();

    let full_out = dir.path().join("full.safetensors");
    let full = run_ok(
        bin()
            .args(["train", "--json", "--data"])
            .arg(&data)
            .args(RECIPE)
            .arg("--out")
            .arg(&full_out),
    );
    let full_summary = json_lines(&full.stdout).pop().unwrap();
    assert_eq!(
        resumed_summary["valid_loss"].as_f64().unwrap().to_bits(),
        full_summary["valid_loss"].as_f64().unwrap().to_bits(),
        "final valid loss: resumed {resumed_summary} vs uninterrupted {full_summary}"
    );
    assert_same_model(&interrupted_out, &full_out);
}

#[test]
fn log_writes_one_json_line_per_epoch_that_plot_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 1);
    let log = dir.path().join("train.jsonl");
    let output = run_ok(
        bin()
            .args([
                "train",
                "--quiet",
                "--epochs",
                "3",
                "--factors",
                "4",
                "--bs",
                "16",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--log")
            .arg(&log),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "--quiet prints the final line only: {stdout}"
    );
    let lines = json_lines(&std::fs::read(&log).unwrap());
    assert_eq!(lines.len(), 3);
    for (n, line) in lines.iter().enumerate() {
        assert_epoch_line(line, n);
    }
    let svg = dir.path().join("loss.svg");
    run_ok(
        bin()
            .args(["plot", "--log"])
            .arg(&log)
            .arg("--out")
            .arg(&svg),
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn a_diverging_run_names_epoch_and_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 1);
    let checkpoint = dir.path().join("run.ckpt");
    run_ok(
        bin()
            .args(["train", "--epochs", "1", "--factors", "4", "--bs", "16"])
            .arg("--data")
            .arg(&data)
            .arg("--checkpoint")
            .arg(&checkpoint),
    );
    let before = std::fs::read(&checkpoint).unwrap();

    let bad = bin()
        .args(["train", "--epochs", "3", "--factors", "4", "--bs", "16"])
        .args([
            "--optimizer",
            "sgd",
            "--schedule",
            "constant",
            "--no-y-range",
        ])
        .args(["--lr", "1e30"])
        .arg("--data")
        .arg(&data)
        .arg("--checkpoint")
        .arg(&checkpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains("at epoch 0, step") && stderr.contains("lower learning rate"),
        "{stderr}"
    );
    assert!(stderr.contains("run.ckpt is unchanged"), "{stderr}");
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the good checkpoint stays"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn resume_with_other_flags_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 1);
    let checkpoint = dir.path().join("run.ckpt");
    let args = ["train", "--epochs", "2", "--bs", "16"];
    run_ok(
        bin()
            .args(args)
            .args(["--factors", "4", "--checkpoint-every", "1"])
            .arg("--data")
            .arg(&data)
            .arg("--checkpoint")
            .arg(&checkpoint),
    );
    let other = bin()
        .args(args)
        .args(["--factors", "5"])
        .arg("--data")
        .arg(&data)
        .arg("--resume")
        .arg(&checkpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success());
    assert!(
        stderr.contains("cannot resume") && stderr.contains("`factors` was 4"),
        "{stderr}"
    );
    // Resuming the finished run with the same flags trains nothing more and succeeds.
    let same = run_ok(
        bin()
            .args(args)
            .args(["--factors", "4", "--json"])
            .arg("--data")
            .arg(&data)
            .arg("--resume")
            .arg(&checkpoint),
    );
    let summary = json_lines(&same.stdout).pop().unwrap();
    assert_eq!(summary["finished"], true, "{summary}");
    assert_eq!(summary["epochs"], 2, "{summary}");
}

/// Resuming a checkpoint that has trained every epoch said "no validation ratings" and "0
/// ratings/s". Now it says the run is finished, with the validation loss of the run, and `--out`
/// saves the very model the run would have saved.
#[test]
fn resuming_a_finished_checkpoint_says_so_and_saves_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 1);
    let (checkpoint, model) = (dir.path().join("run.ckpt"), dir.path().join("m.st"));
    let flags = ["--epochs", "2", "--factors", "4", "--bs", "16", "--json"];
    let first = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args(flags)
            .arg("--checkpoint")
            .arg(&checkpoint)
            .arg("--out")
            .arg(&model),
    );
    let summary = json_lines(&first.stdout).pop().unwrap();
    let again = dir.path().join("again.st");
    let resumed = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args(flags)
            .arg("--resume")
            .arg(&checkpoint)
            .arg("--out")
            .arg(&again),
    );
    let line = json_lines(&resumed.stdout).pop().unwrap();
    assert_eq!(line["finished"], true, "{line}");
    assert_eq!(line["epochs"], 2, "{line}");
    assert_eq!(
        line["valid_loss"], summary["valid_loss"],
        "{line} vs {summary}"
    );
    assert_same_model(&model, &again);
    let text = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args(&flags[..6])
            .arg("--resume")
            .arg(&checkpoint),
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("has finished all 2 epochs"), "{text}");
    assert!(!text.contains("0 ratings/s"), "{text}");
}
