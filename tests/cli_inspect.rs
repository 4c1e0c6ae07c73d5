//! The inspection commands through the binary: eval, predict, recommend, similar, biases and plot,
//! on a model built by hand (known answers) and on one the binary trains from files the test
//! writes, plus clean failures for unknown and ambiguous names.

use std::path::{Path, PathBuf};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/hand_model.rs"]
mod hand;
#[path = "support/prerequisite.rs"]
mod prerequisite;

use cli::{
    collabgpu, json, path, small_ml100k, stderr_of_failure, stdout, write_u_data, write_u_item,
};
use prerequisite::ml100k_dir;
use serde_json::Value;

/// The hand-built model of `tests/support/hand_model.rs`, with the fastai y-range (0, 5.5).
/// Raw scores of user "1": 2.6, 0.9, 0.35, -1.9.
fn write_hand_model(dir: &Path) -> PathBuf {
    let model = hand::hand_model(Some((0.0, 5.5)));
    let file = dir.join("hand.safetensors");
    model.save(&file).unwrap();
    file
}

/// `u.data` (user, item, rating, time; tabs) with users 1, 2, 99 and items 5, 9, 42.
fn write_ratings(dir: &Path) -> PathBuf {
    let ratings = [
        [1, 5, 3, 1],
        [2, 9, 1, 2],
        [99, 5, 4, 3],
        [1, 42, 2, 4],
        [99, 42, 5, 5],
        [2, 5, 5, 6],
    ];
    write_u_data(dir, ratings).join("u.data")
}

fn y(x: f64) -> f64 {
    5.5 / (1.0 + (-x).exp())
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

#[test]
fn predict_gives_the_sigmoid_of_the_raw_score() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let got = json(&[
        "predict",
        "--model",
        path(&model),
        "--user",
        "1",
        "--item",
        "5",
        "--json",
    ]);
    assert_eq!(got["user"], "1");
    assert_eq!(got["title"], "Silence of the Lambs, The (1991)");
    assert!((number(&got["raw_score"]) - 2.6).abs() < 1e-6, "{got}");
    assert!((number(&got["prediction"]) - y(2.6)).abs() < 1e-5, "{got}");
    let text = stdout(&collabgpu(&[
        "predict",
        "--model",
        path(&model),
        "--user",
        "2",
        "--item",
        "9",
    ]));
    // Raw score 2 - 0.2 + 0.25 = 2.05.
    let want = format!(
        "user 2, item 9 (Star Wars (1977)): predicted rating {:.4}",
        y(2.05)
    );
    assert!(text.contains(&want), "{text}");
}

#[test]
fn unknown_user_and_item_fail_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let err = stderr_of_failure(&collabgpu(&[
        "predict",
        "--model",
        path(&model),
        "--user",
        "404",
        "--item",
        "5",
    ]));
    assert!(err.contains("user \"404\" is not in the model"), "{err}");
    let err = stderr_of_failure(&collabgpu(&[
        "predict",
        "--model",
        path(&model),
        "--user",
        "1",
        "--item",
        "Casablanca",
    ]));
    assert!(err.contains("no item matches \"Casablanca\""), "{err}");
    let err = stderr_of_failure(&collabgpu(&[
        "similar",
        "--model",
        path(&model),
        "--item",
        "lambs",
    ]));
    assert!(err.contains("\"lambs\" matches 2 items"), "{err}");
    assert!(
        err.contains("Lambs of God (1994)") && err.contains("id 5"),
        "{err}"
    );
    let missing = dir.path().join("missing.safetensors");
    let err = stderr_of_failure(&collabgpu(&["biases", "--model", path(&missing)]));
    assert!(
        err.contains("cannot read --model") && err.contains("missing.safetensors"),
        "{err}"
    );
}

#[test]
fn eval_counts_ratings_of_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let data = write_ratings(dir.path());
    let got = json(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&data),
        "--json",
    ]);
    assert_eq!(got["ratings"], 6);
    assert_eq!(got["evaluated"], 3);
    assert_eq!(got["skipped"], 3);
    assert_eq!(got["unknown_user_ratings"], 2);
    assert_eq!(got["unknown_item_ratings"], 2);
    // Known: (1, 5, 3): raw 2.6; (2, 9, 1): raw 2.05; (2, 5, 5): raw -0.2 + 0.5 = 0.3.
    let errors = [y(2.6) - 3.0, y(2.05) - 1.0, y(0.3) - 5.0];
    let mse = errors.iter().map(|e| e * e).sum::<f64>() / 3.0;
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / 3.0;
    assert!((number(&got["mse"]) - mse).abs() < 1e-5, "{got} vs {mse}");
    assert!((number(&got["rmse"]) - mse.sqrt()).abs() < 1e-5, "{got}");
    assert!((number(&got["mae"]) - mae).abs() < 1e-5, "{got} vs {mae}");
    let text = stdout(&collabgpu(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&data),
    ]));
    assert!(
        text.contains("skipped           3 (unknown user: 2 ratings of 1 users; unknown item: 2 ratings of 1 items)"),
        "{text}"
    );
    let shown = format!("MSE               {:.6}", number(&got["mse"]));
    assert!(text.contains(&shown), "{text}");
}

#[test]
fn recommend_leaves_out_rated_items() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let data = write_ratings(dir.path());
    let got = json(&[
        "recommend",
        "--model",
        path(&model),
        "--user",
        "1",
        "--n",
        "2",
        "--exclude-rated",
        path(&data),
        "--json",
    ]);
    // User 1 rated items 5 and 42 (42 is unknown to the model): 7 (raw 0.9) and 9 (0.35) lead.
    assert_eq!(got["excluded"], 1);
    let ids: Vec<&str> = got["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["7", "9"]);
    assert!((number(&got["recommendations"][0]["score"]) - y(0.9)).abs() < 1e-5);
    let text = stdout(&collabgpu(&[
        "recommend",
        "--model",
        path(&model),
        "--user",
        "1",
        "--n",
        "1",
    ]));
    assert!(text.contains("items they rated are included"), "{text}");
    assert!(text.contains("Silence of the Lambs, The (1991)"), "{text}");
}

#[test]
fn similar_lists_neighbours_by_cosine() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let got = json(&[
        "similar",
        "--model",
        path(&model),
        "--item",
        "silence of the lambs",
        "--json",
    ]);
    assert_eq!(got["item"], "5");
    let ids: Vec<&str> = got["similar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["7", "9", "11"]);
    // Among items with at least one rating in the written data only item 9 is left.
    let data = write_ratings(dir.path());
    let got = json(&[
        "similar",
        "--model",
        path(&model),
        "--item",
        "5",
        "--data",
        path(&data),
        "--min-ratings",
        "1",
        "--json",
    ]);
    assert_eq!(got["min_ratings"], 1);
    let ids: Vec<&str> = got["similar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["9"]);
    let text = stdout(&collabgpu(&[
        "similar",
        "--model",
        path(&model),
        "--item",
        "star wars",
        "--n",
        "1",
    ]));
    // "star wars" names item 9 exactly; (0, 1) is closest to (-1, 0.2): cosine 0.2 / sqrt(1.04).
    assert!(
        text.contains("similar to Star Wars (1977) (id 9)"),
        "{text}"
    );
    assert!(
        text.contains("0.1961  11  Star Wars Holiday Special (1978)"),
        "{text}"
    );
}

#[test]
fn biases_show_lowest_and_highest_with_mean_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let data = write_ratings(dir.path());
    let got = json(&[
        "biases",
        "--model",
        path(&model),
        "--n",
        "1",
        "--data",
        path(&data),
        "--json",
    ]);
    assert_eq!(got["highest"][0]["id"], "5");
    // Item 5 is rated 3, 4 and 5 (once by user 99, whom the model does not know: the item's count
    // is about the item).
    assert_eq!(got["highest"][0]["ratings"], 3);
    assert_eq!(got["highest"][0]["mean_rating"], 4.0);
    assert_eq!(got["lowest"][0]["id"], "7");
    assert_eq!(got["lowest"][0]["ratings"], 0);
    let text = stdout(&collabgpu(&["biases", "--model", path(&model), "--n", "2"]));
    assert!(
        text.contains("biases only: the model records no rating counts"),
        "{text}"
    );
    assert!(
        text.contains("-1.0000       -        -  7   Lambs of God (1994)"),
        "{text}"
    );
    let text = stdout(&collabgpu(&[
        "biases",
        "--model",
        path(&model),
        "--users",
        "--n",
        "1",
    ]));
    assert!(
        text.contains("Highest user biases:") && text.contains("0.1000"),
        "{text}"
    );
}

#[test]
fn plot_writes_factor_maps_and_loss_curves() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_hand_model(dir.path());
    let data = write_ratings(dir.path());
    let svg = dir.path().join("factors.svg");
    let got = json(&[
        "plot",
        "--model",
        path(&model),
        "--data",
        path(&data),
        "--label",
        "1",
        "--out",
        path(&svg),
        "--json",
    ]);
    // Only items 5 and 9 have ratings; 5 is the most rated.
    assert_eq!(got["fitted_items"], 2);
    assert_eq!(got["labelled"], 1);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("Silence of the Lambs, The (1991)") && !text.contains("Lambs of God"));

    let log = dir.path().join("train.jsonl");
    std::fs::write(
        &log,
        "{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":1.2,\"valid_loss\":1.1}\n\
         {\"type\":\"epoch\",\"epoch\":2,\"train_loss\":0.8,\"valid_loss\":0.9}\n\
         {\"type\":\"summary\"}\n",
    )
    .unwrap();
    let png = dir.path().join("loss.png");
    let text = stdout(&collabgpu(&[
        "plot",
        "--log",
        path(&log),
        "--out",
        path(&png),
    ]));
    assert!(text.contains("2 epochs"), "{text}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");

    let err = stderr_of_failure(&collabgpu(&["plot", "--log", path(&log), "--out", "x.gif"]));
    assert!(err.contains(".svg or .png"), "{err}");
    let err = stderr_of_failure(&collabgpu(&["plot", "--out", "x.svg"]));
    assert!(err.contains("--model") && err.contains("--log"), "{err}");
}

#[test]
fn a_model_the_binary_trains_can_be_inspected() {
    let dir = tempfile::tempdir().unwrap();
    // 12 users x 6 items, every pair rated, so a short training sees every id.
    let ratings = (1..=12u32)
        .flat_map(|user| (1..=6u32).map(move |item| (user, item)))
        .map(|(user, item)| [user, item * 10, 1 + (user * item) % 5, user * 100 + item]);
    write_u_data(dir.path(), ratings);
    write_u_item(
        dir.path(),
        (1..=6).map(|item| (item * 10, format!("Film {item} (199{item})"))),
    );
    let model = dir.path().join("m.safetensors");
    let data = path(dir.path());
    stdout(&collabgpu(&[
        "train",
        "--data",
        data,
        "--epochs",
        "2",
        "--factors",
        "3",
        "--bs",
        "8",
        "--out",
        path(&model),
    ]));
    // The model records its split, so eval scores the held-out 20% by default.
    let held_out = json(&["eval", "--model", path(&model), "--data", data, "--json"]);
    assert_eq!(held_out["split"], "valid", "{held_out}");
    assert_eq!(held_out["evaluated"], 14, "{held_out}");
    let eval = json(&[
        "eval",
        "--model",
        path(&model),
        "--data",
        data,
        "--split",
        "all",
        "--json",
    ]);
    assert_eq!(eval["evaluated"], 72);
    assert_eq!(eval["skipped"], 0);
    assert!(
        number(&eval["rmse"]) > 0.0 && number(&eval["rmse"]) < 5.5,
        "{eval}"
    );
    let top = json(&[
        "recommend",
        "--model",
        path(&model),
        "--user",
        "3",
        "--exclude-rated",
        data,
        "--json",
    ]);
    assert_eq!(top["excluded"], 6);
    assert_eq!(top["recommendations"].as_array().unwrap().len(), 0);
    let near = json(&[
        "similar",
        "--model",
        path(&model),
        "--item",
        "film 2",
        "--n",
        "5",
        "--min-ratings",
        "0",
        "--json",
    ]);
    assert_eq!(near["item"], "20");
    assert_eq!(near["similar"].as_array().unwrap().len(), 5);
    let predict = json(&[
        "predict",
        "--model",
        path(&model),
        "--user",
        "12",
        "--item",
        "60",
        "--json",
    ]);
    let prediction = number(&predict["prediction"]);
    assert!((0.0..=5.5).contains(&prediction), "{predict}");
}

/// The acceptance check of issue 5 on the real ML-100K with the default recipe: the highest item
/// biases hold well-loved classics of the kind fastai lists.
#[test]
fn ml_100k_biases_put_classics_on_top() {
    let Some(data) = ml100k_dir() else { return };
    let data = path(&data).to_string();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    stdout(&collabgpu(&[
        "train",
        "--data",
        &data,
        "--out",
        path(&model),
    ]));
    let got = json(&[
        "biases",
        "--model",
        path(&model),
        "--n",
        "15",
        "--data",
        &data,
        "--json",
    ]);
    let titles: Vec<&str> = got["highest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    let classics = [
        "Titanic",
        "Schindler's List",
        "L.A. Confidential",
        "Shawshank Redemption",
        "Star Wars",
        "Silence of the Lambs",
        "Good Will Hunting",
        "Rear Window",
        "Casablanca",
        "Usual Suspects",
        "As Good As It Gets",
        "Godfather",
    ];
    let found = classics
        .iter()
        .filter(|c| titles.iter().any(|t| t.contains(*c)))
        .count();
    assert!(
        found >= 4,
        "only {found} classics among the highest biases: {titles:?}"
    );
    // The most-liked items are well rated on average: every top-15 item has a mean rating above 3.5.
    for row in got["highest"].as_array().unwrap() {
        assert!(number(&row["mean_rating"]) > 3.5, "{row}");
    }
}

/// A model keyed by title (the book's `--item-key title`) has its titles as ids: tables write
/// each title once, under one heading.
#[test]
fn title_keyed_models_print_each_title_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_ml100k(dir.path(), 10);
    write_u_item(
        &data,
        (1..=20).map(|item| (item * 10, format!("Film number {item} (1990)"))),
    );
    let model = dir.path().join("m.safetensors");
    stdout(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--item-key",
        "title",
        "--epochs",
        "1",
        "--factors",
        "3",
        "--bs",
        "16",
        "--quiet",
        "--out",
        path(&model),
    ]));
    for args in [
        &[
            "recommend",
            "--model",
            path(&model),
            "--user",
            "1",
            "--n",
            "3",
        ][..],
        &[
            "similar",
            "--model",
            path(&model),
            "--item",
            "film number 2",
            "--min-ratings",
            "0",
        ][..],
        &["biases", "--model", path(&model), "--n", "3"][..],
    ] {
        let text = stdout(&collabgpu(args));
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("Film number")).collect();
        assert!(!rows.is_empty(), "{text}");
        for row in rows {
            assert_eq!(row.matches("Film number").count(), 1, "{args:?}: {text}");
        }
        assert!(!text.contains("  id  "), "{args:?}: {text}");
    }
}
