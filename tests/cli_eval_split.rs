//! `eval` on the held-out ratings: the model file records its split, `eval` (default `--split
//! valid`) re-creates it and matches train's last `valid_loss` bit for bit on the CPU; `--split
//! train|all`; ranking metrics on the held-out ratings; the errors a user meets.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/hand_model.rs"]
mod hand;

use std::path::{Path, PathBuf};

use cli::{bin, collabgpu, json, json_lines, path, rank2_ml100k, run_ok, stderr_of_failure};
use collabgpu::data::{LoadOptions, load_split};
use collabgpu::files::ModelFile;
use collabgpu::inspect::{RankingOptions, evaluate_ranking};

/// Trains 3 epochs on `data` into `dir/model.safetensors`; returns the model and the summary line.
fn train(data: &Path, dir: &Path, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let model = dir.join("model.safetensors");
    let output = run_ok(
        bin()
            .args([
                "train",
                "--data",
                path(data),
                "--epochs",
                "3",
                "--factors",
                "4",
                "--bs",
                "32",
                "--json",
                "--out",
                path(&model),
            ])
            .args(extra),
    );
    let lines = json_lines(&output.stdout);
    let summary = lines.last().unwrap().clone();
    assert_eq!(summary["type"], "summary", "{summary}");
    (model, summary)
}

#[test]
fn eval_scores_the_held_out_ratings_and_matches_train_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = rank2_ml100k(dir.path());
    for extra in [
        &[][..],
        &["--split", "time", "--valid-pct", "0.3", "--seed", "7"][..],
    ] {
        let (model, summary) = train(&data, dir.path(), extra);
        let report = json(&[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&data),
            "--json",
        ]);
        assert_eq!(report["split"], "valid", "{report}");
        assert_eq!(report["ratings"], summary["valid_ratings"], "{report}");
        assert_eq!(report["evaluated"], summary["valid_ratings"], "{report}");
        let (eval, train) = (
            report["mse"].as_f64().unwrap(),
            summary["valid_loss"].as_f64().unwrap(),
        );
        assert_eq!(
            eval.to_bits(),
            train.to_bits(),
            "eval {eval} vs train {train} ({extra:?})"
        );

        let on_train = json(&[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&data),
            "--split",
            "train",
            "--json",
        ]);
        assert_eq!(on_train["ratings"], summary["train_ratings"], "{on_train}");
        let all = json(&[
            "eval",
            "--model",
            path(&model),
            "--data",
            path(&data),
            "--split",
            "all",
            "--json",
        ]);
        let total =
            summary["train_ratings"].as_u64().unwrap() + summary["valid_ratings"].as_u64().unwrap();
        assert_eq!(all["ratings"], total, "{all}");
        // The two halves partition the whole: its MSE is their count-weighted mean.
        let weighted = |r: &serde_json::Value| {
            r["mse"].as_f64().unwrap() * r["ratings"].as_u64().unwrap() as f64
        };
        let mixed = (weighted(&on_train) + weighted(&report)) / total as f64;
        let whole = all["mse"].as_f64().unwrap();
        assert!(
            (mixed - whole).abs() < 1e-9 * whole.max(1.0),
            "train {on_train} + valid {report} vs all {all}"
        );
    }
}

#[test]
fn ranking_metrics_rank_each_users_unrated_items_of_the_recorded_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = rank2_ml100k(dir.path());
    let (model, _) = train(&data, dir.path(), &["--valid-pct", "0.3"]);
    let report = json(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&data),
        "--json",
        "--metrics",
        "ndcg@5,recall@5,map@5,hr@5,ndcg@10",
        "--relevant",
        "4",
    ]);
    let metrics = &report["metrics"];
    for name in ["ndcg@5", "recall@5", "map@5", "hr@5", "ndcg@10"] {
        let value = metrics[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {report}"));
        assert!((0.0..=1.0).contains(&value), "{name} = {value}");
    }
    // The same numbers as the library on the split `train` made (seed 42, 30% random).
    let file = ModelFile::load(&model).unwrap();
    let split = load_split(
        path(&data),
        &LoadOptions::default(),
        Default::default(),
        0.3,
        42,
    )
    .unwrap();
    let expected = evaluate_ranking(
        &file,
        &split.dataset.users,
        &split.dataset.items,
        &split.train,
        &split.valid,
        RankingOptions {
            k: 5,
            relevant: 4.0,
        },
    );
    assert_eq!(metrics["ndcg@5"].as_f64(), expected.ndcg, "{report}");
    assert_eq!(metrics["hr@5"].as_f64(), expected.hit_rate, "{report}");
    assert_eq!(report["ranking"][0]["users"], expected.users, "{report}");
    assert!(expected.users > 0);

    let text = cli::stdout(&collabgpu(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&data),
        "--metrics",
        "recall@5",
    ]));
    assert!(
        text.contains("held-out 30%") && text.contains("recall@5"),
        "{text}"
    );

    for (flags, expected) in [
        (&["--metrics", "auc@5"][..], "unknown metric"),
        (&["--metrics", "ndcg@0"][..], "at least 1"),
        (
            &["--metrics", "ndcg@5", "--split", "all"][..],
            "needs --split valid",
        ),
    ] {
        let mut args = vec!["eval", "--model", path(&model), "--data", path(&data)];
        args.extend_from_slice(flags);
        let err = stderr_of_failure(&collabgpu(&args));
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
}

#[test]
fn other_data_or_a_model_without_a_split_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let data = rank2_ml100k(dir.path());
    let (model, _) = train(&data, dir.path(), &[]);
    let other = cli::tiny_ml100k(dir.path());
    let err = stderr_of_failure(&collabgpu(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&other),
    ]));
    assert!(
        err.contains("does not give the split") && err.contains("--split all"),
        "{err}"
    );
    // --split all scores it anyway.
    json(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&other),
        "--split",
        "all",
        "--json",
    ]);

    let hand_file = dir.path().join("hand.safetensors");
    hand::hand_model(None).save(&hand_file).unwrap();
    let text = cli::stdout(&collabgpu(&[
        "eval",
        "--model",
        path(&hand_file),
        "--data",
        path(&data),
    ]));
    assert!(text.contains("does not record its split"), "{text}");
    let err = stderr_of_failure(&collabgpu(&[
        "eval",
        "--model",
        path(&hand_file),
        "--data",
        path(&data),
        "--split",
        "valid",
    ]));
    assert!(
        err.contains("does not record how its training data was split"),
        "{err}"
    );
}

#[test]
fn a_user_error_is_a_message_not_a_stack_trace_even_with_rust_backtrace() {
    let output = bin()
        .args([
            "predict",
            "--model",
            "/no/such/model.safetensors",
            "--user",
            "1",
            "--item",
            "2",
        ])
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("backtrace") && !err.contains("at src/"),
        "{err}"
    );
    // The cause once, not again as its own line.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.lines().count() <= 4, "{err}");
}
