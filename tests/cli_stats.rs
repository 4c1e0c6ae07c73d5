//! `collabgpu stats` through the binary: text, `--json`, flags, and bad input as a clean failure.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/prerequisite.rs"]
mod prerequisite;

use cli::{collabgpu, path, stdout};
use prerequisite::ml100k_dir;

#[test]
fn stats_json_on_ml_100k() {
    let Some(data) = ml100k_dir() else { return };
    let json: serde_json::Value = serde_json::from_str(&stdout(&collabgpu(&[
        "stats",
        "--data",
        path(&data),
        "--json",
    ])))
    .unwrap();
    assert_eq!(json["users"], 943);
    assert_eq!(json["items"], 1682);
    assert_eq!(json["ratings"], 100_000);
    let histogram = &json["rating_histogram"];
    let counts: Vec<u64> = ["1", "2", "3", "4", "5"]
        .iter()
        .map(|r| histogram[r].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![6110, 11370, 27145, 34174, 21201]);
    assert_eq!(json["ratings_per_user"]["min"], 20);
    assert_eq!(json["ratings_per_user"]["median"], 65.0);
    assert_eq!(json["ratings_per_item"]["max"], 583);
    assert_eq!(json["time_range"]["first"], 874_724_710);
}

#[test]
fn stats_text_on_a_written_csv_with_skipped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.csv");
    std::fs::write(&file, "user;item;rating\na;x;4\na;y;2\nb;x;4\nb;x;oops\n").unwrap();
    let text = stdout(&collabgpu(&[
        "stats",
        "--data",
        file.to_str().unwrap(),
        "--format",
        "csv",
        "--delimiter",
        ";",
        "--skip-bad-lines",
    ]));
    assert!(text.contains("users (U)         2"), "{text}");
    assert!(text.contains("items (I)         2"), "{text}");
    assert!(text.contains("ratings (N)       3"), "{text}");
    assert!(text.contains("density           75.0000%"), "{text}");
    assert!(text.contains("time range        none"), "{text}");
    assert!(text.contains("rating is not a number: 1"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&collabgpu(&[
        "stats",
        "--data",
        file.to_str().unwrap(),
        "--format",
        "csv",
        "--delimiter",
        ";",
        "--skip-bad-lines",
        "--json",
    ])))
    .unwrap();
    assert_eq!(json["rating_histogram"]["4"], 2);
    assert_eq!(json["skipped_total"], 1);
}

#[test]
fn stats_on_bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("u.data");
    std::fs::write(&file, "1\t2\t3\t4\n1\t2\n").unwrap();
    let output = collabgpu(&["stats", "--data", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("u.data, line 2") && stderr.contains("expected 4 tab-separated fields"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing printed on failure");

    let output = collabgpu(&[
        "stats",
        "--data",
        file.to_str().unwrap(),
        "--delimiter",
        ",",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("add --format csv"));
}
