//! `collabgpu bench` through the binary on a small MovieLens-layout data set the test writes
//! itself: the JSON fields, both backends' validation losses agreeing, the table, saved models, and
//! the messages for bad flags. The GPU half skips with the reason when the machine has no adapter
//! (fails instead under `COLLABGPU_REQUIRE_GPU=1`).

#[path = "support/cli.rs"]
mod cli;
mod support;

use cli::{bin, json_lines, rank2_ml100k, run_ok};
use collabgpu::files::ModelFile;

/// The flags every run here shares: a small model, a few epochs, two CPU threads.
const SMALL: [&str; 10] = [
    "--epochs",
    "3",
    "--factors",
    "4",
    "--bs",
    "16",
    "--threads",
    "2",
    "--warmup-batches",
    "2",
];

#[test]
fn json_has_one_line_per_backend_and_the_backends_agree_on_the_valid_loss() {
    let gpu = support::gpu_device().is_some();
    let backends = if gpu { "cpu,gpu" } else { "cpu" };
    let dir = tempfile::tempdir().unwrap();
    let data = rank2_ml100k(dir.path());
    let models = dir.path().join("models");
    let output = run_ok(
        bin()
            .args(["bench", "--data"])
            .arg(&data)
            .args(SMALL)
            .args(["--backends", backends, "--json", "--out"])
            .arg(&models),
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(
        lines.len(),
        if gpu { 2 } else { 1 },
        "one JSON line per backend (and one GPU adapter at most on this machine): {lines:?}"
    );
    let ratings = std::fs::read_to_string(data.join("u.data"))
        .unwrap()
        .lines()
        .count();
    let n_valid = (0.2 * ratings as f64).round() as usize;
    let per_epoch = (ratings - n_valid) / 16 * 16;
    for line in &lines {
        for field in [
            "backend",
            "adapter",
            "ratings_per_second",
            "epoch_seconds",
            "valid_loss",
        ] {
            assert!(!line[field].is_null(), "{field} missing in {line}");
        }
        assert!(line["ratings_per_second"].as_f64().unwrap() > 0.0, "{line}");
        assert!(line["epoch_seconds"].as_f64().unwrap() > 0.0, "{line}");
        assert_eq!(line["epochs"], 3, "{line}");
        assert_eq!(line["ratings_trained"], 3 * per_epoch as u64, "{line}");
        let loss = line["valid_loss"].as_f64().unwrap();
        assert!(loss.is_finite() && loss > 0.0 && loss < 5.0, "{line}");
    }
    assert_eq!(lines[0]["backend"], "cpu");
    assert_eq!(lines[0]["threads"], 2);
    assert_eq!(lines[0]["adapter"], "cpu (2 threads)");
    assert_eq!(lines[0]["speedup_over_cpu"], 1.0);
    let cpu_model = ModelFile::load(&models.join("cpu-0.safetensors")).expect("the CPU model");
    assert_eq!(cpu_model.params.factors, 4);
    if gpu {
        assert_eq!(lines[1]["backend"], "gpu");
        let (cpu, gpu) = (
            lines[0]["valid_loss"].as_f64().unwrap(),
            lines[1]["valid_loss"].as_f64().unwrap(),
        );
        assert!(
            (cpu - gpu).abs() <= 1e-4 + 1e-4 * cpu.abs(),
            "the backends trained different models: valid MSE {cpu} on the CPU, {gpu} on the GPU"
        );
        // Counted figures (issue 15): the fused adamw path is forward_backward and adamw per
        // step; the host waits for the GPU once at the end of each epoch and once per
        // evaluation, however many chunks an epoch has in flight.
        let gpu_line = &lines[1];
        assert_eq!(gpu_line["dispatches_per_step"], 2.0, "{gpu_line}");
        assert_eq!(gpu_line["host_waits_per_epoch"], 2.0, "{gpu_line}");
        assert_eq!(
            gpu_line["gpu_seconds"]["host_waits"], 6,
            "three epochs: {gpu_line}"
        );
        assert!(
            gpu_line["queue_full_waits_per_epoch"].as_f64().is_some(),
            "{gpu_line}"
        );
        assert!(
            gpu_line["bytes_per_rating"].as_f64().unwrap() > 0.0,
            "{gpu_line}"
        );
        assert!(
            lines[0]["dispatches_per_step"].is_null(),
            "the CPU has no dispatches"
        );
        // The subgroup kernel or the fallback: the same dispatches either way.
        assert!(
            ["subgroup", "thread-per-rating"]
                .contains(&gpu_line["forward_backward"].as_str().unwrap()),
            "{gpu_line}"
        );
        assert!(
            lines[0]["forward_backward"].is_null(),
            "the CPU has no kernels"
        );
        let gpu_model = ModelFile::load(&models.join("gpu-0.safetensors")).expect("the GPU model");
        support::assert_close(
            "user factors (GPU model vs CPU model)",
            &gpu_model.params.user_factors,
            &cpu_model.params.user_factors,
            1e-4,
            1e-3,
        );
    }
}

/// The sparse path's counted figures (issue 15): `forward_backward` and `sgd_apply` per step, one
/// wait at the end of each epoch and one per evaluation, as for adamw above.
#[test]
fn sgd_on_the_gpu_is_two_dispatches_a_step_and_two_waits_an_epoch() {
    if support::gpu_device().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = rank2_ml100k(dir.path());
    let output = run_ok(
        bin()
            .args(["bench", "--data"])
            .arg(&data)
            .args(SMALL)
            .args(["--optimizer", "sgd", "--backends", "gpu", "--json"]),
    );
    let lines = json_lines(&output.stdout);
    let line = &lines[0];
    assert_eq!(line["optimizer"], "sgd", "{line}");
    assert_eq!(line["dispatches_per_step"], 2.0, "{line}");
    assert_eq!(line["host_waits_per_epoch"], 2.0, "{line}");
}

#[test]
fn the_table_has_a_header_and_a_cpu_row_with_its_speedup() {
    let dir = tempfile::tempdir().unwrap();
    let data = rank2_ml100k(dir.path());
    let output = run_ok(
        bin()
            .args(["bench", "--data"])
            .arg(&data)
            .args(SMALL)
            .args(["--backends", "cpu"]),
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "title, header and one row:\n{stdout}");
    assert!(lines[0].contains("K = 4, B = 16, 3 epoch(s)"), "{stdout}");
    for column in [
        "backend",
        "adapter",
        "ratings/s",
        "s/epoch",
        "valid MSE",
        "speed-up",
    ] {
        assert!(lines[1].contains(column), "no {column} column:\n{stdout}");
    }
    assert!(lines[2].starts_with("cpu "), "{stdout}");
    assert!(lines[2].ends_with("1.00x"), "{stdout}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("warm-up on 32 ratings"), "{stderr}");
}

#[test]
fn bad_flags_say_what_to_do() {
    let output = bin()
        .args(["bench", "--data", "/no/such/place", "--backends", "cpu"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/no/such/place"), "{stderr}");

    let output = bin()
        .args(["bench", "--backends", "cpu", "--valid-pct", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--valid-pct must lie in (0, 1)"),
        "{stderr}"
    );

    let output = bin().args(["bench", "--backends", "tpu"]).output().unwrap();
    assert!(!output.status.success());
}

/// Without --data, `bench` measures what `train` trains on: the real ML-100K (it used synthetic
/// data, whose valid MSE of 0.99 read as a bad model), found as `train` finds it.
#[test]
fn without_data_bench_uses_the_real_ml_100k_as_train_does() {
    let Some(dir) = support::ml100k_dir() else {
        return;
    };
    let cache = dir.parent().unwrap();
    let output = run_ok(
        bin()
            .env(collabgpu::data::download::CACHE_VAR, cache)
            .args(["bench", "--backends", "cpu", "--epochs", "1", "--json"]),
    );
    let rows = json_lines(&output.stdout);
    let data = rows[0]["data"].as_str().unwrap();
    assert!(
        data.ends_with("u.data") && data.contains("ml-100k"),
        "{data}"
    );
    assert_eq!(rows[0]["ratings_trained"], 80_000);
}
