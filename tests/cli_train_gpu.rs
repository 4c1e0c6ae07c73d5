//! `collabgpu train --backend gpu` through the binary: the adapter is named in the summary and the
//! final validation loss agrees with the CPU backend's; a missing adapter is a clear error.
//! Without an adapter the comparison is skipped with the reason printed, unless
//! `COLLABGPU_REQUIRE_GPU=1` (CI), where it fails.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
#[path = "support/prerequisite.rs"]
mod prerequisite;

use cli::{bin, tiny_ml100k};
use prerequisite::{REQUIRE_GPU, skip_or_fail};

fn summary(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"))
}

fn train(data: &Path, backend: &str) -> std::process::Output {
    bin()
        .args([
            "train",
            "--json",
            "--epochs",
            "3",
            "--factors",
            "8",
            "--bs",
            "32",
        ])
        .args(["--backend", backend, "--data"])
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn gpu_and_cpu_final_valid_losses_agree_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    let gpu = train(&data, "gpu");
    if !gpu.status.success() {
        let stderr = String::from_utf8_lossy(&gpu.stderr);
        if stderr.contains("no GPU adapter") {
            skip_or_fail(REQUIRE_GPU, &format!("no GPU adapter: {stderr}"));
            return;
        }
        panic!("train --backend gpu failed: {stderr}");
    }
    let cpu = train(&data, "cpu");
    assert!(
        cpu.status.success(),
        "{}",
        String::from_utf8_lossy(&cpu.stderr)
    );
    let (gpu, cpu) = (summary(&gpu.stdout), summary(&cpu.stdout));
    assert_eq!(cpu["adapter"], "cpu");
    let adapter = gpu["adapter"].as_str().unwrap();
    assert!(!adapter.is_empty() && adapter != "cpu", "{gpu}");
    let (g, c) = (
        gpu["valid_loss"].as_f64().unwrap(),
        cpu["valid_loss"].as_f64().unwrap(),
    );
    eprintln!("final valid loss: gpu ({adapter}) {g}, cpu {c}");
    assert!((g - c).abs() < 1e-3, "gpu {g} vs cpu {c}");
}

#[test]
fn an_adapter_that_does_not_exist_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    let output = bin()
        .args(["train", "--epochs", "1", "--backend", "gpu"])
        .args(["--adapter", "no-such-adapter-xyz", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no GPU adapter found") && stderr.contains("--backend cpu"),
        "{stderr}"
    );
}

#[test]
fn adapter_flags_without_the_gpu_backend_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    let output = bin()
        .args([
            "train",
            "--epochs",
            "1",
            "--wgpu-backend",
            "vulkan",
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("add --backend gpu"), "{stderr}");
}

/// Without a desktop session the driver stack's Wayland probe printed "error: XDG_RUNTIME_DIR is
/// invalid" twice per GPU command; a software adapter (lavapipe) trained 50x slower than the CPU
/// without a word. Now the probe is quiet and a software adapter is named as such.
#[test]
fn gpu_commands_say_when_the_adapter_is_software_and_nothing_about_wayland() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_ml100k(dir.path());
    let output = bin()
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .args(["train", "--epochs", "1", "--backend", "gpu", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("no GPU adapter") {
        skip_or_fail(REQUIRE_GPU, &format!("no GPU adapter: {stderr}"));
        return;
    }
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    let info = bin()
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .args(["info", "--json"])
        .output()
        .unwrap();
    let info_err = String::from_utf8_lossy(&info.stderr);
    assert!(!info_err.contains("XDG_RUNTIME_DIR"), "{info_err}");
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let kinds: Vec<bool> = info["adapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["device_type"] == "Cpu")
        .collect();
    let noted = stderr.contains("is a software adapter that runs on the CPU");
    // Training picks a hardware adapter over a software one when there is both.
    if kinds.iter().all(|&software| software) {
        assert!(noted, "{stderr}");
    } else if kinds.iter().all(|&software| !software) {
        assert!(!noted, "{stderr}");
    }
}
