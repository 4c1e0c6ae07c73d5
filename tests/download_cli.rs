//! `collabgpu download` end to end, with `COLLABGPU_DATA` and `COLLABGPU_DOWNLOAD_URL` set on the
//! child process (the tests never touch their own environment), against a local server or none.

mod download_server;

use std::process::{Command, Output};

use download_server::{Reply, U_DATA, entries, serve, zip_of};

/// A base URL where nothing listens, so any download attempt fails at once.
fn dead_base_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn download(name: &str, cache: &std::path::Path, base_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collabgpu"))
        .args(["download", name])
        .env("COLLABGPU_DATA", cache)
        .env("COLLABGPU_DOWNLOAD_URL", base_url)
        .output()
        .unwrap()
}

#[test]
fn data_set_already_in_collabgpu_data_is_found_without_downloading() {
    // Placed by hand, as the offline message tells a user to: the marker file is what counts.
    let cache = tempfile::tempdir().unwrap();
    let placed = cache.path().join("ml-100k");
    std::fs::create_dir(&placed).unwrap();
    std::fs::write(placed.join("u.data"), U_DATA).unwrap();
    let output = download("ml-100k", cache.path(), &dead_base_url());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("already in the cache"), "{stderr}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(printed.trim(), placed.display().to_string());
    assert_eq!(
        entries(cache.path()),
        ["ml-100k"],
        "nothing else was written"
    );
}

#[test]
fn offline_download_fails_saying_where_to_place_the_files() {
    let cache = tempfile::tempdir().unwrap();
    let output = download("ml-1m", cache.path(), &dead_base_url());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("To place it by hand"), "{stderr}");
    let marker = cache.path().join("ml-1m").join("ratings.dat");
    assert!(stderr.contains(&marker.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn download_url_variable_is_honoured_and_a_wrong_zip_is_rejected() {
    let cache = tempfile::tempdir().unwrap();
    let server = serve(Reply::Body(zip_of(
        "ml-latest-small",
        &[(
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
        )],
    )));
    let output = download("ml-latest-small", cache.path(), &server.base_url);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert_eq!(server.requests(), ["/ml-latest-small.zip"]);
    assert!(stderr.contains("SHA-256"), "{stderr}");
    assert!(
        stderr.contains("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
        "the published checksum is named: {stderr}"
    );
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn unknown_name_is_refused_with_the_known_ones() {
    let cache = tempfile::tempdir().unwrap();
    let output = download("ml-3m", cache.path(), &dead_base_url());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ml-100k") && stderr.contains("ml-latest-small"),
        "{stderr}"
    );
}
