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

#[path = "support/hand_model.rs"]
mod hand;

use collabgpu::files::{Checkpoint, ModelFile};

/// The byte range of a safetensors file's tensor data: after the 8-byte length and the header.
fn data_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    8 + header..bytes.len()
}

/// A copy of `file` with the byte at `at` flipped.
fn flipped(file: &Path, at: usize, dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at] ^= 0x10;
    let out = dir.join(format!("flipped-{at}.safetensors"));
    std::fs::write(&out, bytes).unwrap();
    out
}

#[test]
fn a_flipped_data_byte_in_a_model_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hand.safetensors");
    hand::hand_model(Some((0.0, 5.5))).save(&model).unwrap();
    ModelFile::load(&model).expect("the file as written loads");
    let bytes = std::fs::read(&model).unwrap();
    let data = data_range(&bytes);
    // Six places spread over the four tensors, as in the issue's six flips.
    for step in 0..6 {
        let at = data.start + step * (data.len() - 1) / 5;
        let bad = flipped(&model, at, dir.path());
        let err = ModelFile::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("damaged") && err.contains("checksum"),
            "byte {at}: {err}"
        );
        let cli = stderr_of_failure(&collabgpu(&[
            "predict",
            "--model",
            path(&bad),
            "--user",
            "1",
            "--item",
            "5",
        ]));
        assert!(
            cli.contains("damaged") && !cli.contains("panicked"),
            "{cli}"
        );
    }
    // A digit of an id in the header's metadata: the JSON still parses, the checksum does not.
    let header = std::str::from_utf8(&bytes[8..data.start]).unwrap();
    let at = 8
        + header
            .find(r#"[\"1\",\"2\",\"10\"]"#)
            .expect("user ids in the header")
        + 3;
    let err = ModelFile::load(&flipped(&model, at, dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn a_flipped_byte_in_a_checkpoint_stops_resume_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = cli::tiny_ml100k(dir.path());
    let checkpoint = dir.path().join("run.ckpt");
    stdout(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--epochs",
        "2",
        "--factors",
        "3",
        "--bs",
        "8",
        "--quiet",
        "--checkpoint",
        path(&checkpoint),
        "--checkpoint-every",
        "1",
    ]));
    Checkpoint::load(&checkpoint).expect("the checkpoint as written loads");
    let bytes = std::fs::read(&checkpoint).unwrap();
    let at = data_range(&bytes).start + 5;
    let bad = flipped(&checkpoint, at, dir.path());
    let err = stderr_of_failure(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--epochs",
        "3",
        "--factors",
        "3",
        "--bs",
        "8",
        "--quiet",
        "--resume",
        path(&bad),
    ]));
    assert!(err.contains("damaged") && err.contains("checksum"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Saves `model` (whose checksum is then right) and returns the error loading it gives.
fn load_error(model: &ModelFile, dir: &Path, name: &str) -> String {
    let file = dir.join(name);
    model.save(&file).unwrap();
    ModelFile::load(&file).unwrap_err().to_string()
}

#[test]
fn models_with_impossible_contents_are_refused_even_with_a_right_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reversed = hand::hand_model(Some((5.5, 0.0)));
    assert!(load_error(&reversed, d, "rev.st").contains("LO < HI"));
    let huge = hand::hand_model(Some((0.0, 1e30)));
    assert!(load_error(&huge, d, "huge.st").contains("y_range"));
    let infinite = hand::hand_model(Some((f32::NEG_INFINITY, 5.0)));
    // JSON has no infinity: the range is written as null, which no loader takes for a number.
    let err = load_error(&infinite, d, "inf.st");
    assert!(err.contains("damaged") && err.contains("null"), "{err}");

    let mut nan = hand::hand_model(None);
    nan.params.item_factors[3] = f32::NAN;
    let err = load_error(&nan, d, "nan.st");
    assert!(
        err.contains("item_factors") && err.contains("index 3"),
        "{err}"
    );
    let mut inf_bias = hand::hand_model(None);
    inf_bias.params.user_bias[2] = f32::INFINITY;
    assert!(load_error(&inf_bias, d, "inf-bias.st").contains("user_bias"));

    let mut unsorted = hand::hand_model(None);
    unsorted.users = IdMap::from_sorted(vec!["2".into(), "1".into(), "10".into()]);
    let err = load_error(&unsorted, d, "unsorted.st");
    assert!(
        err.contains("user_ids") && err.contains("ascending"),
        "{err}"
    );
    let mut repeated = hand::hand_model(None);
    repeated.items = IdMap::from_sorted(vec!["5".into(), "7".into(), "7".into(), "11".into()]);
    let err = load_error(&repeated, d, "repeated.st");
    assert!(err.contains("item_ids") && err.contains("unique"), "{err}");

    // Every one of them through a command: a message, not NaN predictions or a panic.
    let file = d.join("rev.st");
    let err = stderr_of_failure(&collabgpu(&[
        "predict",
        "--model",
        path(&file),
        "--user",
        "1",
        "--item",
        "5",
    ]));
    assert!(
        err.contains("LO < HI") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn a_file_written_before_checksums_still_loads() {
    // Strip the checksum from the header, as files of earlier versions were written.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hand.safetensors");
    hand::hand_model(Some((0.0, 5.5))).save(&model).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    let data = data_range(&bytes);
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..data.start]).unwrap();
    let metadata = header["__metadata__"].as_object_mut().unwrap();
    assert!(metadata.remove("checksum").is_some(), "{metadata:?}");
    let mut text = serde_json::to_string(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut old = (text.len() as u64).to_le_bytes().to_vec();
    old.extend_from_slice(text.as_bytes());
    old.extend_from_slice(&bytes[data]);
    let file = dir.path().join("old.safetensors");
    std::fs::write(&file, old).unwrap();
    let loaded = ModelFile::load(&file).unwrap();
    assert_eq!(loaded.params, hand::hand_model(Some((0.0, 5.5))).params);
}

#[test]
fn a_header_naming_a_column_past_the_line_is_an_error_not_a_panic() {
    // Found by tests/reliability_fuzz.rs: the header's `timestamp` at field 5 of 4-field lines.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ml-25m");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join("movies.csv"),
        "movieId,title,genres\n1,Heat (1995),Action\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("ratings.csv"),
        "userId,movieId,rating,x,timestamp\n1,1,4.0,1147200\n",
    )
    .unwrap();
    let err = stderr_of_failure(&collabgpu(&["stats", "--data", path(&folder)]));
    assert!(err.contains("header") && err.contains("field 5"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
