//! Malformed input: every case names the file, the line and the offending text and says what was
//! expected; `--skip-bad-lines` skips such lines and counts them by reason.

use std::path::Path;

use collabgpu::data::{DataError, Format, ItemKey, LoadOptions, load};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// Loads `bytes` as an ML-100K `u.data` and returns the error's text, checking it is a `BadLine`
/// at `line`.
fn u_data_error(bytes: &[u8], line: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "u.data", bytes);
    match load(&file, &LoadOptions::default()) {
        Err(err @ DataError::BadLine { line: got, .. }) => {
            assert_eq!(got, line, "{err}");
            let text = err.to_string();
            assert!(text.contains("u.data"), "names the file: {text}");
            assert!(
                text.contains(&format!("line {line}")),
                "names the line: {text}"
            );
            text
        }
        other => panic!("expected a bad line at {line}, got {other:?}"),
    }
}

#[test]
fn wrong_field_count_names_file_line_and_text() {
    let text = u_data_error(b"1\t2\t3\t100\n1\t2\t3\n", 2);
    assert!(text.contains("expected 4 tab-separated fields"), "{text}");
    assert!(text.contains(r#""1\t2\t3""#), "shows the line: {text}");
    assert!(text.contains("--skip-bad-lines"), "{text}");
}

#[test]
fn non_numeric_rating_is_refused() {
    let text = u_data_error(b"1\t2\t3\t100\n\n1\t2\tfive\t100\n", 3);
    assert!(text.contains(r#"rating "five" is not a number"#), "{text}");
    assert!(
        text.contains("1-5 star scale"),
        "says what was expected: {text}"
    );
}

#[test]
fn rating_outside_the_scale_is_refused() {
    let text = u_data_error(b"1\t2\t7\t100\n", 1);
    assert!(
        text.contains("rating 7 is outside ML-100K's 1-5 star scale (1 to 5)"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "r.csv", b"u,i,r\n1,2,11\n");
    let err = load(
        &file,
        &LoadOptions {
            format: Format::Csv,
            ..LoadOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("outside the generic-file scale (0 to 10)"),
        "{err}"
    );
}

#[test]
fn non_integer_timestamp_is_refused() {
    let text = u_data_error(b"1\t2\t3\t2001-01-01\n", 1);
    assert!(
        text.contains(r#"timestamp "2001-01-01" is not an integer; expected Unix seconds"#),
        "{text}"
    );
}

#[test]
fn single_colons_in_ratings_dat_are_a_field_count_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ratings.dat", b"1::2::3::4\n1:2::3::4\n");
    let err = load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("line 2") && text.contains("UserID::MovieID::Rating::Timestamp"),
        "{text}"
    );
}

#[test]
fn empty_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "u.data", b"");
    let err = load(&file, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("u.data: the file is empty; expected ratings as 4 tab-separated"),
        "{err}"
    );

    let csv = write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n",
    );
    let err = load(&csv, &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("has a header but no ratings"), "{err}");
}

#[test]
fn directory_without_a_known_layout_says_what_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"hello\n");
    let err = load(dir.path().to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no MovieLens ratings file here"), "{err}");
    assert!(
        err.contains("u.data") && err.contains("ratings.dat") && err.contains("ratings.csv"),
        "{err}"
    );
}

#[test]
fn missing_title_file_is_an_error_only_when_titles_are_needed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "u.data", b"1\t2\t3\t100\n");
    let path = dir.path().to_str().unwrap();
    let by_id = load(path, &LoadOptions::default()).unwrap();
    assert!(by_id.titles.is_none());
    let options = LoadOptions {
        item_key: ItemKey::Title,
        ..LoadOptions::default()
    };
    let err = load(path, &options).unwrap_err().to_string();
    assert!(
        err.contains("needs the title file") && err.contains("u.item"),
        "{err}"
    );

    // A title file that lacks a rated item cannot key it by title either.
    write(
        dir.path(),
        "u.item",
        format!("9|Other (1990)|||{}\n", "|0".repeat(19)).as_bytes(),
    );
    let err = load(path, &options).unwrap_err().to_string();
    assert!(
        err.contains("item 2 is rated but has no line here"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,1,4.0,5\n",
    );
    write(
        dir.path(),
        "movies.csv",
        b"movieId,title,genres\n2,Fine (1990),Drama\n1,Caf\xe9 (1990),Drama\n",
    );
    let err = load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::BadLine { line: 3, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("movies.csv") && text.contains("not valid UTF-8") && text.contains("Caf"),
        "{text}"
    );

    // ML-10M (tags.dat beside) is UTF-8: latin-1 bytes are an error there, not a fallback.
    let ten = tempfile::tempdir().unwrap();
    write(ten.path(), "ratings.dat", b"1::1::4.5::5\n");
    write(ten.path(), "movies.dat", b"1::Caf\xe9 (1990)::Drama\n");
    write(ten.path(), "tags.dat", b"");
    let err = load(ten.path().to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("movies.dat, line 1") && err.contains("UTF-8"),
        "{err}"
    );

    // Text ids in a ratings file must be UTF-8 too.
    let file = write(dir.path(), "r.csv", b"a,b,4\n\xff\xfe,b,3\n");
    let options = LoadOptions {
        format: Format::Csv,
        ..LoadOptions::default()
    };
    let err = load(&file, &options).unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("user id") && err.contains("not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn skip_bad_lines_counts_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "u.data",
        b"1\t2\t3\t100\n1\t2\n1\t3\tx\t100\n2\t3\t9\t100\n2\t3\t0\t100\n3\t4\t5\tnow\n2\t4\t4\t101\n",
    );
    let options = LoadOptions {
        skip_bad_lines: true,
        ..LoadOptions::default()
    };
    let data = load(&file, &options).unwrap();
    assert_eq!(data.ratings.ratings, vec![3.0, 4.0]);
    // User 3 appears only on a skipped line, so it is not a user.
    assert_eq!(data.users.raw_ids(), ["1", "2"]);
    let mut skipped = data.skipped.clone();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![
            ("rating is not a number".to_string(), 1),
            ("rating outside the scale".to_string(), 2),
            ("timestamp is not an integer".to_string(), 1),
            ("wrong number of fields".to_string(), 1),
        ]
    );

    let all_bad = write(dir.path(), "bad.data", b"x\n");
    let options = LoadOptions {
        skip_bad_lines: true,
        format: Format::Csv,
        delimiter: Some(b'\t'),
        ..options
    };
    let err = load(&all_bad, &options).unwrap_err().to_string();
    assert!(
        err.contains("expected at least user, item, rating"),
        "{err}"
    );
}

#[test]
fn line_numbers_count_blank_lines_and_crlf_endings() {
    u_data_error(b"\n\n1\t2\t3\t100\r\n\r\n1\t2\t3\r\n", 5);
    u_data_error(b"1\t2\t3\t100\r\n1\t2\t3\t100\r\n1\t2\t6\t100\r\n", 3);
}

#[test]
fn malformed_title_files_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "u.data", b"1\t2\t3\t100\n");
    write(
        dir.path(),
        "u.item",
        format!("2|Fine (1990)|||{}\n3|Broken\n", "|0".repeat(19)).as_bytes(),
    );
    let err = load(dir.path().to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("u.item, line 2")
            && err.contains("24 |-separated fields")
            && err.contains("3|Broken"),
        "{err}"
    );

    let dat = tempfile::tempdir().unwrap();
    write(dat.path(), "ratings.dat", b"1::2::3::4\n");
    write(
        dat.path(),
        "movies.dat",
        b"2::Fine (1990)::Drama\n\n3 Broken\n",
    );
    let err = load(dat.path().to_str().unwrap(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("movies.dat, line 3") && err.contains("MovieID::Title::Genres"),
        "{err}"
    );
}

#[test]
fn format_csv_needs_a_file_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "u.data", b"1\t2\t3\t100\n");
    let options = LoadOptions {
        format: Format::Csv,
        ..LoadOptions::default()
    };
    let err = load(dir.path().to_str().unwrap(), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pass the ratings file itself"), "{err}");
}
