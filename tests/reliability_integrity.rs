//! Issue 12 ("reliability"), integrity: integer ids are one id however they are spelled, loaded
//! models and checkpoints are checked (checksum and metadata), and the download is bounded in
//! size, time and expansion.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli;

use cli::{collabgpu, json, path, stderr_of_failure, stdout};
use collabgpu::data::{self, IdMap, LoadOptions};

/// `u.data` lines where user 42 is written three ways and item 7 two ways, plus enough other
/// ratings to train on.
fn write_spelled_ids(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("042\t7\t5\t1\n+42\t007\t3\t2\n42\t8\t4\t3\n");
    for user in 1..=12 {
        for item in 1..=9 {
            if (user + item) % 3 != 0 {
                text.push_str(&format!(
                    "{user}\t{item}\t{}\t{}\n",
                    1 + (user + item) % 5,
                    10
                ));
            }
        }
    }
    std::fs::write(dir.join("u.data"), text).unwrap();
    dir.join("u.data")
}

#[test]
fn spellings_of_one_integer_id_are_one_user_stored_as_its_canonical_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_spelled_ids(dir.path());
    let dataset = data::load(path(&file), &LoadOptions::default()).unwrap();
    let ids = dataset.users.raw_ids();
    assert_eq!(ids.iter().filter(|id| id.as_str() == "42").count(), 1);
    assert!(!ids.iter().any(|id| id == "042" || id == "+42"), "{ids:?}");
    let user = dataset.users.index_of("42").unwrap();
    let ratings = &dataset.ratings;
    let of_42 = (0..ratings.len())
        .filter(|&n| ratings.users[n] == user)
        .count();
    assert_eq!(of_42, 3, "the three spellings are one user's three ratings");
    // Item 007 is item 7; lookups take any spelling.
    assert_eq!(dataset.items.index_of("007"), dataset.items.index_of("7"));
    assert_eq!(dataset.users.index_of("+042"), Some(user));
    // Ids stay sorted numerically (SPEC), 42 after 12.
    assert_eq!(ids.last().map(String::as_str), Some("42"));
}

#[test]
fn non_integer_ids_stay_text_and_integers_among_them_are_still_one_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ratings.txt");
    std::fs::write(
        &file,
        "user,item,rating\n042,a,4\n42,b,3\nx42,a,2\n+42,c,5\n",
    )
    .unwrap();
    let options = LoadOptions {
        format: data::Format::Csv,
        ..LoadOptions::default()
    };
    let dataset = data::load(path(&file), &options).unwrap();
    assert_eq!(dataset.users.raw_ids(), ["42", "x42"]);
    assert_eq!(dataset.users.index_of("0042"), Some(0));
    assert_eq!(dataset.users.index_of("x42"), Some(1));
    assert_eq!(dataset.users.index_of("X42"), None);
}

#[test]
fn lookups_in_a_model_written_with_unpadded_ids_accept_any_spelling() {
    // A model file from before ids were canonical may hold "042" as text; `42` still finds it.
    let map = IdMap::from_sorted(vec!["7".into(), "042".into(), "100".into()]);
    assert_eq!(map.index_of("42"), Some(1));
    assert_eq!(map.index_of("+42"), Some(1));
    let mixed = IdMap::from_sorted(vec!["042".into(), "abc".into()]);
    assert_eq!(mixed.index_of("42"), Some(0));
    assert_eq!(mixed.index_of("abc"), Some(1));
}

#[test]
fn predict_answers_for_the_same_user_whichever_spelling_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_spelled_ids(dir.path());
    let model = dir.path().join("model.safetensors");
    stdout(&collabgpu(&[
        "train",
        "--data",
        path(&file),
        "--epochs",
        "1",
        "--factors",
        "2",
        "--bs",
        "8",
        "--quiet",
        "--out",
        path(&model),
    ]));
    let answers: Vec<serde_json::Value> = ["42", "042", "+42"]
        .iter()
        .map(|user| {
            json(&[
                "predict",
                "--model",
                path(&model),
                "--user",
                user,
                "--item",
                "007",
                "--json",
            ])
        })
        .collect();
    for answer in &answers {
        assert_eq!(answer["user"], "42", "{answer}");
        assert_eq!(answer["item"], "7", "{answer}");
        assert_eq!(answer["prediction"], answers[0]["prediction"], "{answer}");
    }
    let unknown = stderr_of_failure(&collabgpu(&[
        "predict",
        "--model",
        path(&model),
        "--user",
        "43",
        "--item",
        "7",
    ]));
    assert!(unknown.contains("43"), "{unknown}");
}
