//! Issue 13: a model file records who rated what in training, so `recommend` leaves out what a
//! user rated and `similar`, `biases` and `plot` know each item's rating count without `--data`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/hand_model.rs"]
mod hand;

use cli::{collabgpu, json, path, stderr_of_failure, stdout, write_u_data};
use collabgpu::data::{IdMap, RatingIndex, Ratings};
use collabgpu::files::ModelFile;

/// Users 1..=30 rate items 1..=10 where `(u + i) % 4 != 0`; items 11 and 12 are rated by users 1,
/// 2 and 3 only (three ratings each: rare).
fn ratings() -> Vec<[u32; 4]> {
    let mut out = Vec::new();
    for u in 1..=30u32 {
        for i in 1..=10u32 {
            if (u + i) % 4 != 0 {
                out.push([u, i, 1 + (u * 3 + i) % 5, u * 100 + i]);
            }
        }
    }
    for u in 1..=3 {
        for i in [11, 12] {
            out.push([u, i, 5, u * 100 + i]);
        }
    }
    out
}

/// Trains on all of the data (`--valid-pct 0`, so the training ratings are the file).
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let data = write_u_data(&dir.join("data"), ratings());
    let model = dir.join("m.safetensors");
    stdout(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--valid-pct",
        "0",
        "--epochs",
        "2",
        "--factors",
        "4",
        "--bs",
        "16",
        "--quiet",
        "--out",
        path(&model),
    ]));
    (data, model)
}

fn ids(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_model_file_holds_the_training_counts_and_rated_items() {
    let dir = tempfile::tempdir().unwrap();
    let (_, model) = trained(dir.path());
    let file = ModelFile::load(&model).unwrap();
    let index = file.training.as_ref().expect("train records its ratings");
    let all = ratings();
    assert_eq!(
        index.user_counts.iter().map(|&c| c as usize).sum::<usize>(),
        all.len()
    );
    let item_11 = file.items.index_of("11").unwrap() as usize;
    assert_eq!(index.item_counts[item_11], 3);
    assert_eq!(index.item_sums[item_11], 15.0);
    let user_1 = file.users.index_of("1").unwrap();
    let rated: Vec<&str> = index
        .rated(user_1)
        .iter()
        .map(|&i| file.items.raw(i))
        .collect();
    // (1 + i) % 4 != 0 leaves out item 3 and item 7.
    assert_eq!(rated, ["1", "2", "4", "5", "6", "8", "9", "10", "11", "12"]);
}

#[test]
fn recommend_leaves_out_what_the_user_rated_in_training_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (_, model) = trained(dir.path());
    let model = path(&model);
    let top = json(&[
        "recommend",
        "--model",
        model,
        "--user",
        "1",
        "--n",
        "20",
        "--json",
    ]);
    assert_eq!(top["excluded"], 10, "{top}");
    let mut listed = ids(&top["recommendations"]);
    listed.sort();
    assert_eq!(listed, ["3", "7"], "{top}");
    let text = stdout(&collabgpu(&["recommend", "--model", model, "--user", "1"]));
    assert!(
        text.contains("leaving out the 10 items they rated in training"),
        "{text}"
    );

    let all = json(&[
        "recommend",
        "--model",
        model,
        "--user",
        "1",
        "--n",
        "20",
        "--include-rated",
        "--json",
    ]);
    assert_eq!(all["excluded"], 0, "{all}");
    assert_eq!(ids(&all["recommendations"]).len(), 12, "{all}");

    // User 4 rated neither rare item: --min-ratings 5 takes them out of their list too.
    let user_4 = json(&[
        "recommend",
        "--model",
        model,
        "--user",
        "4",
        "--n",
        "20",
        "--json",
    ]);
    let listed: HashSet<String> = ids(&user_4["recommendations"]).into_iter().collect();
    assert!(listed.contains("11") && listed.contains("12"), "{user_4}");
    let common = json(&[
        "recommend",
        "--model",
        model,
        "--user",
        "4",
        "--n",
        "20",
        "--min-ratings",
        "5",
        "--json",
    ]);
    let listed: HashSet<String> = ids(&common["recommendations"]).into_iter().collect();
    assert!(!listed.contains("11") && !listed.contains("12"), "{common}");
    assert_eq!(
        listed.len(),
        user_4["recommendations"].as_array().unwrap().len() - 2
    );
}

#[test]
fn similar_and_biases_count_ratings_from_the_model_as_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained(dir.path());
    let (model, data) = (path(&model), path(&data));
    // With every rating in training, the model's counts are the data's.
    let from_model = json(&["biases", "--model", model, "--n", "12", "--json"]);
    let from_data = json(&[
        "biases", "--model", model, "--n", "12", "--data", data, "--json",
    ]);
    assert_eq!(from_model, from_data);
    let rows = from_model["highest"].as_array().unwrap();
    let rare = rows.iter().find(|row| row["id"] == "12").unwrap();
    assert_eq!(
        (rare["ratings"].as_u64(), rare["mean_rating"].as_f64()),
        (Some(3), Some(5.0))
    );
    let common = json(&[
        "biases",
        "--model",
        model,
        "--n",
        "12",
        "--min-ratings",
        "4",
        "--json",
    ]);
    assert_eq!(common["highest"].as_array().unwrap().len(), 10, "{common}");

    // Items 11 and 12 have 3 ratings, under similar's default of 20.
    let near = json(&[
        "similar", "--model", model, "--item", "1", "--n", "20", "--json",
    ]);
    assert_eq!(near["min_ratings"], 20);
    let listed = ids(&near["similar"]);
    assert_eq!(listed.len(), 9, "{near}");
    assert!(!listed.contains(&"11".to_string()), "{near}");
    let every = json(&[
        "similar",
        "--model",
        model,
        "--item",
        "1",
        "--n",
        "20",
        "--min-ratings",
        "0",
        "--json",
    ]);
    assert_eq!(ids(&every["similar"]).len(), 11, "{every}");

    // The factor map labels the most rated items, counted from the model.
    let picture = dir.path().join("map.svg");
    let plot = json(&["plot", "--model", model, "--out", path(&picture), "--json"]);
    assert_eq!(plot["labels_by"], "most rated", "{plot}");
}

#[test]
fn models_without_the_record_say_so_and_inconsistent_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.safetensors");
    hand::hand_model(None).save(&old).unwrap();
    let text = stdout(&collabgpu(&[
        "recommend",
        "--model",
        path(&old),
        "--user",
        "1",
    ]));
    assert!(
        text.contains("the model records no training ratings"),
        "{text}"
    );
    let err = stderr_of_failure(&collabgpu(&[
        "recommend",
        "--model",
        path(&old),
        "--user",
        "1",
        "--min-ratings",
        "2",
    ]));
    assert!(err.contains("does not record"), "{err}");

    // A record that disagrees with itself is refused on load, even with a right checksum.
    let mut model = hand::hand_model(None);
    let ratings = Ratings {
        users: vec![0, 1, 2],
        items: vec![0, 1, 3],
        ratings: vec![4.0, 3.0, 5.0],
        timestamps: None,
    };
    let mut index = RatingIndex::of(&ratings, 3, 4);
    index.items[2] = 0; // user 2 now claims item 0 while item 0's count says one rating
    index.item_counts[3] = 0;
    model.training = Some(index);
    let file = dir.path().join("bad.safetensors");
    model.save(&file).unwrap();
    let err = ModelFile::load(&file).unwrap_err().to_string();
    assert!(err.contains("training rating tensors disagree"), "{err}");

    // And a good one round-trips.
    let mut good = hand::hand_model(None);
    good.training = Some(RatingIndex::of(&ratings, 3, 4));
    good.items = IdMap::from_raw_ids(vec!["5".into(), "7".into(), "9".into(), "11".into()]);
    let file = dir.path().join("good.safetensors");
    good.save(&file).unwrap();
    assert_eq!(ModelFile::load(&file).unwrap(), good);
}
