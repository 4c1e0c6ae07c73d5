//! Issue 13, k-fold cross-validation: `train --folds K` trains one model per fold and reports the
//! mean and spread; `eval --folds K` scores each fold's model on the ratings it held out, to the
//! bit of its training run's validation loss; fold 1 of 5 is the default split.

#[path = "support/cli.rs"]
mod cli;

use cli::{bin, collabgpu, json, json_lines, path, run_ok, small_ml100k, stderr_of_failure};
use collabgpu::files::ModelFile;
use serde_json::Value;

const FLAGS: [&str; 6] = ["--epochs", "2", "--factors", "4", "--bs", "16"];

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[test]
fn five_folds_train_score_and_agree_with_the_default_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 1);
    let out = dir.path().join("cv.safetensors");
    let output = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args(FLAGS)
            .args(["--folds", "5", "--json", "--out"])
            .arg(&out),
    );
    let lines = json_lines(&output.stdout);
    let summaries: Vec<&Value> = lines.iter().filter(|l| l["type"] == "summary").collect();
    assert_eq!(summaries.len(), 5);
    let cv = lines.last().unwrap();
    assert_eq!(cv["type"], "cross_validation", "{cv}");
    let losses: Vec<f64> = summaries
        .iter()
        .map(|s| s["valid_loss"].as_f64().unwrap())
        .collect();
    let (mean, std) = mean_std(&losses);
    assert_eq!(
        cv["metrics"]["valid_loss"]["mean"].as_f64(),
        Some(mean),
        "{cv}"
    );
    assert!((cv["metrics"]["valid_loss"]["std"].as_f64().unwrap() - std).abs() < 1e-12);
    // The folds partition the ratings: every rating is held out once.
    let held: u64 = summaries
        .iter()
        .map(|s| s["valid_ratings"].as_u64().unwrap())
        .sum();
    let total = summaries[0]["train_ratings"].as_u64().unwrap()
        + summaries[0]["valid_ratings"].as_u64().unwrap();
    assert_eq!(held, total);
    for (n, summary) in summaries.iter().enumerate() {
        assert_eq!(summary["fold"]["number"], n + 1, "{summary}");
        let model =
            ModelFile::load(&dir.path().join(format!("cv.fold{}.safetensors", n + 1))).unwrap();
        let fold = model.split.unwrap().fold.unwrap();
        assert_eq!((fold.index, fold.count), (n, 5));
    }

    // Fold 1 of 5 is the default 20% random split: the same model as a plain run.
    let plain = run_ok(
        bin()
            .args(["train", "--data"])
            .arg(&data)
            .args(FLAGS)
            .arg("--json"),
    );
    let plain = json_lines(&plain.stdout).pop().unwrap();
    assert_eq!(plain["valid_loss"], summaries[0]["valid_loss"]);

    // eval --folds scores each model on its own fold, to the bit of train's valid_loss.
    let report = json(&[
        "eval",
        "--model",
        path(&out),
        "--data",
        path(&data),
        "--folds",
        "5",
        "--metrics",
        "ndcg@5",
        "--json",
    ]);
    let folds: Vec<f64> = report["metrics"]["mse"]["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (got, want) in folds.iter().zip(&losses) {
        assert_eq!(got.to_bits(), want.to_bits(), "eval {got} vs train {want}");
    }
    assert_eq!(report["metrics"]["mse"]["mean"].as_f64(), Some(mean));
    assert_eq!(
        report["metrics"]["ndcg@5"]["folds"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let text = cli::stdout(&collabgpu(&[
        "eval",
        "--model",
        path(&out),
        "--data",
        path(&data),
        "--folds",
        "5",
    ]));
    assert!(
        text.contains("fold 5") && text.contains("mean") && text.contains("std"),
        "{text}"
    );
}

#[test]
fn fold_mistakes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 1);
    let err = stderr_of_failure(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--folds",
        "1",
    ]));
    assert!(err.contains("--folds must be 2 to 100"), "{err}");
    let err = stderr_of_failure(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--folds",
        "3",
        "--valid-pct",
        "0.1",
    ]));
    assert!(err.contains("cannot be used with"), "{err}");

    let out = dir.path().join("cv.safetensors");
    let mut args = vec![
        "train",
        "--data",
        path(&data),
        "--folds",
        "3",
        "--quiet",
        "--out",
        path(&out),
    ];
    args.extend(FLAGS);
    cli::stdout(&collabgpu(&args));
    // Asking for more folds than were trained names the missing model and how it is made.
    let err = stderr_of_failure(&collabgpu(&[
        "eval",
        "--model",
        path(&out),
        "--data",
        path(&data),
        "--folds",
        "4",
    ]));
    assert!(
        err.contains("records fold 1 of 3, not fold 1 of 4"),
        "{err}"
    );
    let plain = dir.path().join("plain.safetensors");
    let mut args = vec![
        "train",
        "--data",
        path(&data),
        "--quiet",
        "--out",
        path(&plain),
    ];
    args.extend(FLAGS);
    cli::stdout(&collabgpu(&args));
    let err = stderr_of_failure(&collabgpu(&[
        "eval",
        "--model",
        path(&plain),
        "--data",
        path(&data),
        "--folds",
        "3",
    ]));
    assert!(err.contains("train --folds 3"), "{err}");
}
