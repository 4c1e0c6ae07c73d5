//! `collabgpu train --recipe`, the scale optimisers, `--l2`, `--early-stop` and the noise floor
//! through the binary.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/prerequisite.rs"]
mod prerequisite;

use cli::{bin, json_lines, run_ok, small_ml100k};
use collabgpu::data::synth::{Preset, generate};
use collabgpu::data::{LoadOptions, load_split, noise_floor, split::SplitKind};
use collabgpu::files::ModelFile;
use prerequisite::{REQUIRE_GPU, skip_or_fail};

#[test]
fn the_ml_25m_recipe_sets_every_flag_not_given_and_given_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 10);
    let out = dir.path().join("model.safetensors");
    // The recipe's K = 64 and B = 65536 are overridden (the file has 160 training ratings).
    let output = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args([
                "--recipe",
                "ml-25m",
                "--factors",
                "4",
                "--bs",
                "16",
                "--epochs",
                "3",
            ])
            .args(["--json", "--out"])
            .arg(&out),
    );
    let lines = json_lines(&output.stdout);
    let summary = lines.last().unwrap();
    let config = &summary["config"];
    assert_eq!(config["optimizer"], "rowwise-adagrad");
    assert_eq!(config["schedule"], "constant");
    assert_eq!(config["lr"], 0.15);
    assert_eq!(config["l2"], 0.1);
    assert_eq!(config["wd"], 0.0);
    assert_eq!(config["early_stop"], 1);
    assert_eq!(config["order"], "blocks");
    assert_eq!(
        (config["factors"].clone(), config["batch_size"].clone()),
        (4.into(), 16.into())
    );
    assert_eq!(config["epochs"], 3);
    // The model file records the same configuration.
    let model = ModelFile::load(&out).unwrap();
    assert_eq!(model.config.l2, 0.1);
    assert_eq!(model.config.optimizer.name(), "rowwise-adagrad");

    // An explicit --optimizer and --l2 win over the recipe's.
    let output = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args([
                "--recipe",
                "ml-25m",
                "--factors",
                "4",
                "--bs",
                "16",
                "--epochs",
                "1",
            ])
            .args([
                "--optimizer",
                "sparse-adam",
                "--l2",
                "0",
                "--lr",
                "0.01",
                "--json",
            ]),
    );
    let summary = json_lines(&output.stdout).pop().unwrap();
    assert_eq!(summary["config"]["optimizer"], "sparse-adam");
    assert_eq!(summary["config"]["l2"], 0.0);
    assert_eq!(summary["config"]["lr"], 0.01);

    // Without --recipe, the fastai recipe: adamw, one-cycle, no l2, no early stop.
    let output = run_ok(bin().args(["train", "--data"]).arg(&data).args([
        "--factors",
        "4",
        "--bs",
        "16",
        "--epochs",
        "1",
        "--json",
    ]));
    let summary = json_lines(&output.stdout).pop().unwrap();
    assert_eq!(summary["config"]["optimizer"], "adamw");
    assert_eq!(summary["config"]["schedule"], "one-cycle");
    assert_eq!(summary["config"]["l2"], 0.0);
    assert_eq!(summary["config"]["early_stop"], 0);
    assert!(summary["best_epoch"].is_null());
    assert!(
        summary["noise_floor"].is_null(),
        "a file has no planted model"
    );
}

#[test]
fn early_stop_reports_the_best_epoch_and_saves_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 10);
    let out = dir.path().join("model.safetensors");
    // sgd with a learning rate far too high: the validation loss rises after the first epochs.
    let output = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args([
                "--optimizer",
                "sgd",
                "--schedule",
                "constant",
                "--lr",
                "1",
                "--wd",
                "0",
            ])
            .args([
                "--factors",
                "4",
                "--bs",
                "8",
                "--epochs",
                "40",
                "--early-stop",
                "2",
            ])
            .args(["--json", "--out"])
            .arg(&out),
    );
    let lines = json_lines(&output.stdout);
    let (summary, epochs) = lines.split_last().unwrap();
    let losses: Vec<f64> = epochs
        .iter()
        .map(|l| l["valid_loss"].as_f64().unwrap())
        .collect();
    let best = summary["best_epoch"].as_u64().unwrap() as usize;
    assert_eq!(summary["stopped_early"], true, "losses {losses:?}");
    assert_eq!(epochs.len(), best + 3, "losses {losses:?}");
    assert_eq!(summary["valid_loss"].as_f64().unwrap(), losses[best]);
    assert_eq!(
        summary["last_valid_loss"].as_f64().unwrap(),
        *losses.last().unwrap()
    );
    assert!(losses.iter().all(|&l| l >= losses[best]));
    // The saved model is the best epoch's: eval on the held-out part gives its loss.
    let eval = run_ok(
        bin()
            .args(["eval", "--model"])
            .arg(&out)
            .arg("--data")
            .arg(&data)
            .arg("--json"),
    );
    let eval = json_lines(&eval.stdout).pop().unwrap();
    let mse = eval["mse"].as_f64().unwrap();
    assert!(
        (mse - losses[best]).abs() < 1e-9,
        "eval {mse} vs best {}",
        losses[best]
    );
}

#[test]
fn synthetic_data_reports_the_noise_floor_and_the_ratio_to_it() {
    let output = run_ok(bin().args([
        "train",
        "--data",
        "synthetic:ml-100k:3",
        "--epochs",
        "1",
        "--factors",
        "4",
        "--json",
    ]));
    let lines = json_lines(&output.stdout);
    let floor = lines[0]["noise_floor"].as_f64().unwrap();
    let valid = lines[0]["valid_loss"].as_f64().unwrap();
    assert!((lines[0]["noise_floor_ratio"].as_f64().unwrap() - valid / floor).abs() < 1e-12);
    let summary = lines.last().unwrap();
    assert_eq!(summary["noise_floor"].as_f64().unwrap(), floor);
    assert!(summary["noise_floor_ratio"].as_f64().unwrap() > 1.0);

    // The floor is the planted model's MSE on the validation ratings: over all ratings it is the
    // generator's own figure (so the planted model's indices are the data set's), and on the
    // validation part it is what train reports.
    let synthetic = generate(Preset::Ml100k, 3).unwrap();
    let all = noise_floor(&synthetic.truth, &synthetic.dataset.ratings).unwrap();
    assert!(
        (all - synthetic.truth.noise_floor_mse).abs() < 1e-9,
        "{all} vs {}",
        synthetic.truth.noise_floor_mse
    );
    let split = load_split(
        "synthetic:ml-100k:3",
        &LoadOptions::default(),
        SplitKind::Random,
        0.2,
        42,
    )
    .unwrap();
    assert_eq!(split.noise_floor, Some(floor));

    // The table has the ratio column.
    let table = run_ok(bin().args([
        "train",
        "--data",
        "synthetic:ml-100k:3",
        "--epochs",
        "1",
        "--factors",
        "4",
    ]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("noise floor"), "{text}");
    assert!(text.contains("x floor"), "{text}");
    assert!(text.contains("x the noise floor"), "{text}");
}

/// The GPU trains the scale optimisers and `--l2` as the CPU does (its kernels are checked one by
/// one in tests/gpu_kernels.rs and step by step in tests/gpu_trajectory.rs); here through the
/// binary, the final validation losses within 1e-3.
#[test]
fn the_gpu_trains_the_scale_optimizers_and_l2_as_the_cpu_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 10);
    for flags in [
        ["--optimizer", "rowwise-adagrad", "--l2", "0.1"],
        ["--optimizer", "sparse-adam", "--l2", "0.1"],
        ["--optimizer", "adamw", "--l2", "0.1"],
    ] {
        let train = |backend: &str| {
            bin()
                .args(["train", "--json", "--backend", backend, "--data"])
                .arg(&data)
                .args(["--epochs", "2", "--factors", "4", "--bs", "16"])
                .args(flags)
                .output()
                .unwrap()
        };
        let gpu = train("gpu");
        if !gpu.status.success() {
            let stderr = String::from_utf8_lossy(&gpu.stderr);
            if stderr.contains("no GPU adapter") {
                skip_or_fail(REQUIRE_GPU, &format!("no GPU adapter: {stderr}"));
                return;
            }
            panic!("{flags:?} on the GPU failed: {stderr}");
        }
        let cpu = train("cpu");
        assert!(
            cpu.status.success(),
            "{flags:?} on the CPU failed: {}",
            String::from_utf8_lossy(&cpu.stderr)
        );
        let loss = |output: &std::process::Output| {
            let lines = json_lines(&output.stdout);
            lines.last().unwrap()["valid_loss"].as_f64().unwrap()
        };
        let (g, c) = (loss(&gpu), loss(&cpu));
        assert!((g - c).abs() <= 1e-3, "{flags:?}: gpu {g} vs cpu {c}");
    }
}
