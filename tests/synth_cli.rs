//! `collabgpu synth` end to end: the binary writes a preset's files, and refuses unknown presets.

use std::process::Command;

fn collabgpu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collabgpu"))
}

#[test]
fn synth_writes_the_ml_100k_layout_and_reports_the_noise_floor() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fresh/ml-100k");
    let output = collabgpu()
        .args(["synth", "--preset", "ml-100k", "--seed", "3", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("noise floor MSE"), "{stderr}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["truth.json", "u.data", "u.item"]);
    let lines = std::fs::read_to_string(out.join("u.data"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, 100_000);
}

#[test]
fn synth_refuses_an_unknown_preset_and_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let output = collabgpu()
        .args(["synth", "--preset", "ml-2m", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ml-100k") && stderr.contains("ml-25m"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
