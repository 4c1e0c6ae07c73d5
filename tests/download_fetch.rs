//! The download cache against a local HTTP server: a good zip lands and is found; a corrupted, a
//! truncated or a missing one fails with an error that says what to do and leaves nothing behind.

mod download_server;

use collabgpu::data::download::{self, Checksum, DownloadError};
use download_server::{Reply, U_DATA, U_ITEM, entries, serve, sha256_hex, zip_of};
use md5::{Digest, Md5};

fn good_ml_100k_zip() -> Vec<u8> {
    zip_of("ml-100k", &[("u.data", U_DATA), ("u.item", U_ITEM)])
}

#[test]
fn good_zip_lands_in_the_cache_and_resolve_finds_it() {
    let cache = tempfile::tempdir().unwrap();
    let zip = good_ml_100k_zip();
    let server = serve(Reply::Body(zip.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    let dir = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&zip)),
        cache.path(),
        false,
    )
    .unwrap();
    assert_eq!(dir, cache.path().join("ml-100k"));
    // The zip's top folder is stripped: the files lie directly in CACHE/NAME.
    assert_eq!(std::fs::read(dir.join("u.data")).unwrap(), U_DATA);
    assert_eq!(std::fs::read(dir.join("u.item")).unwrap(), U_ITEM);
    assert_eq!(entries(cache.path()), ["ml-100k"], "temporary files left");
    assert_eq!(server.requests(), ["/ml-100k.zip"]);

    // Now cached: resolved without asking the server again.
    let found = download::resolve_in("ml-100k", cache.path(), &server.base_url, false).unwrap();
    assert_eq!(found, Some(dir));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn ml_10m_zip_is_checked_by_md5_and_its_odd_top_folder_renamed() {
    let cache = tempfile::tempdir().unwrap();
    let zip = zip_of(
        "ml-10M100K",
        &[
            ("ratings.dat", b"1::122::5::838985046\n"),
            ("movies.dat", b"122::Boomerang (1992)::Comedy|Romance\n"),
        ],
    );
    let md5: String = Md5::digest(&zip)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = serve(Reply::Body(zip));
    let url = format!("{}/ml-10m.zip", server.base_url);
    let dir =
        download::fetch_into(&url, "ml-10m", &Checksum::Md5(md5), cache.path(), false).unwrap();
    assert_eq!(dir, cache.path().join("ml-10m"));
    assert!(dir.join("ratings.dat").is_file() && dir.join("movies.dat").is_file());
    assert_eq!(entries(cache.path()), ["ml-10m"]);
}

#[test]
fn corrupted_zip_fails_the_checksum_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let zip = good_ml_100k_zip();
    let mut corrupted = zip.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xFF;
    let server = serve(Reply::Body(corrupted.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    let expected = sha256_hex(&zip);
    let error = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(expected.clone()),
        cache.path(),
        false,
    )
    .unwrap_err();
    match &error {
        DownloadError::ChecksumMismatch {
            algorithm,
            expected: wanted,
            actual,
            ..
        } => {
            assert_eq!(*algorithm, "SHA-256");
            assert_eq!(wanted, &expected);
            assert_eq!(actual, &sha256_hex(&corrupted));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("nothing was kept"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn truncated_body_fails_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let zip = good_ml_100k_zip();
    let send = zip.len() / 2;
    let server = serve(Reply::Truncated {
        body: zip.clone(),
        send,
    });
    let url = format!("{}/ml-100k.zip", server.base_url);
    let started = std::time::Instant::now();
    let error = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&zip)),
        cache.path(),
        false,
    )
    .unwrap_err();
    assert!(
        started.elapsed().as_secs() < 20,
        "a cut-off body must fail fast"
    );
    let message = error.to_string();
    match &error {
        DownloadError::Truncated {
            received, expected, ..
        } => {
            assert_eq!(*received, send as u64);
            assert_eq!(*expected, Some(zip.len() as u64));
        }
        other => panic!("expected a truncated download, got {other:?}"),
    }
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("To place it by hand"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn http_error_says_how_to_place_the_files_by_hand() {
    let cache = tempfile::tempdir().unwrap();
    let server = serve(Reply::Status(404));
    let url = format!("{}/ml-1m.zip", server.base_url);
    let error = download::fetch_into(
        &url,
        "ml-1m",
        &Checksum::Sha256("00".repeat(32)),
        cache.path(),
        false,
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, DownloadError::Fetch { .. }), "{error:?}");
    assert!(message.contains("404"), "{message}");
    let target = cache.path().join("ml-1m").join("ratings.dat");
    assert!(message.contains(&target.display().to_string()), "{message}");
    assert!(message.contains("COLLABGPU_DATA"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn unreachable_server_says_how_to_place_the_files_by_hand() {
    let cache = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let error = download::resolve_in("ml-100k", cache.path(), &base, false).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!("{base}/ml-100k.zip")),
        "{message}"
    );
    assert!(message.contains("To place it by hand"), "{message}");
    assert!(message.contains("u.data"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn resolve_fetches_base_url_slash_name_zip_and_checks_the_published_checksum() {
    let cache = tempfile::tempdir().unwrap();
    // A well-formed zip that is not GroupLens's: the published SHA-256 must reject it.
    let server = serve(Reply::Body(good_ml_100k_zip()));
    let error = download::resolve_in(
        "ml-100k",
        cache.path(),
        &format!("{}/", server.base_url),
        false,
    )
    .unwrap_err();
    match error {
        DownloadError::ChecksumMismatch { expected, .. } => assert_eq!(
            expected,
            "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
        ),
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert_eq!(server.requests(), ["/ml-100k.zip"]);
    assert!(entries(cache.path()).is_empty());
}

#[test]
fn zip_without_the_ratings_file_is_refused_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let zip = zip_of("ml-100k", &[("README", b"no ratings here")]);
    let server = serve(Reply::Body(zip.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    let error = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&zip)),
        cache.path(),
        false,
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, DownloadError::BadZip { .. }), "{error:?}");
    assert!(message.contains("u.data"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn body_that_is_not_a_zip_is_refused_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let page = b"<html>captive portal</html>".to_vec();
    let server = serve(Reply::Body(page.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    let error = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&page)),
        cache.path(),
        false,
    )
    .unwrap_err();
    assert!(matches!(error, DownloadError::BadZip { .. }), "{error:?}");
    assert!(
        entries(cache.path()).is_empty(),
        "left: {:?}",
        entries(cache.path())
    );
}

#[test]
fn incomplete_folder_placed_by_hand_is_replaced_by_a_good_download() {
    let cache = tempfile::tempdir().unwrap();
    let by_hand = cache.path().join("ml-100k");
    std::fs::create_dir(&by_hand).unwrap();
    std::fs::write(by_hand.join("u.item"), b"half placed").unwrap();
    assert_eq!(download::cached("ml-100k", cache.path()), None);
    let zip = good_ml_100k_zip();
    let server = serve(Reply::Body(zip.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&zip)),
        cache.path(),
        false,
    )
    .unwrap();
    assert_eq!(std::fs::read(by_hand.join("u.item")).unwrap(), U_ITEM);
    assert_eq!(entries(cache.path()), ["ml-100k"]);
}

#[test]
fn unknown_names_are_not_resolved() {
    let cache = tempfile::tempdir().unwrap();
    let resolved = download::resolve_in("ml-2m", cache.path(), "http://127.0.0.1:9", false);
    assert_eq!(resolved.unwrap(), None);
    assert!(download::known("ml-2m").is_none());
    assert!(entries(cache.path()).is_empty());
}

#[test]
fn every_known_data_set_has_its_published_checksum() {
    let names: Vec<&str> = download::KNOWN.iter().map(|k| k.name).collect();
    assert_eq!(
        names,
        [
            "ml-100k",
            "ml-1m",
            "ml-10m",
            "ml-20m",
            "ml-25m",
            "ml-latest-small"
        ]
    );
    for dataset in download::KNOWN {
        let (length, kind) = match dataset.checksum() {
            Checksum::Sha256(hex) => (hex.len(), 64),
            Checksum::Md5(hex) => (hex.len(), 32),
        };
        assert_eq!(length, kind, "{}", dataset.name);
    }
    assert!(matches!(
        download::known("ml-10m").unwrap().checksum(),
        Checksum::Md5(_)
    ));
}

#[test]
fn zip_entry_pointing_outside_its_folder_is_refused_and_writes_nothing_outside() {
    let cache = tempfile::tempdir().unwrap();
    let zip = zip_of("", &[("u.data", U_DATA), ("../escaped.txt", b"zip slip")]);
    let server = serve(Reply::Body(zip.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    let error = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&zip)),
        &cache.path().join("cache"),
        false,
    )
    .unwrap_err();
    assert!(matches!(error, DownloadError::BadZip { .. }), "{error:?}");
    assert!(error.to_string().contains("escaped.txt"), "{error}");
    assert_eq!(entries(cache.path()), ["cache"]);
    assert!(entries(&cache.path().join("cache")).is_empty());
}

#[test]
fn zip_without_a_top_folder_is_unpacked_as_it_is() {
    let cache = tempfile::tempdir().unwrap();
    let zip = zip_of("", &[("u.data", U_DATA), ("u.item", U_ITEM)]);
    let server = serve(Reply::Body(zip.clone()));
    let url = format!("{}/ml-100k.zip", server.base_url);
    let dir = download::fetch_into(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(&zip)),
        cache.path(),
        false,
    )
    .unwrap();
    assert_eq!(std::fs::read(dir.join("u.data")).unwrap(), U_DATA);
}

/// Limits far below the defaults, so that the tests need only small bodies.
fn small_limits() -> download::Limits {
    download::Limits {
        max_download: 64 << 10,
        max_unpacked: 256 << 10,
        deadline: std::time::Duration::from_secs(2),
    }
}

fn fetch_small(
    server: &download_server::Server,
    body: &[u8],
    cache: &std::path::Path,
) -> DownloadError {
    let url = format!("{}/ml-100k.zip", server.base_url);
    download::fetch_into_with(
        &url,
        "ml-100k",
        &Checksum::Sha256(sha256_hex(body)),
        cache,
        false,
        &small_limits(),
    )
    .unwrap_err()
}

#[test]
fn a_body_larger_than_the_limit_is_refused_by_its_length_before_a_byte_is_written() {
    let cache = tempfile::tempdir().unwrap();
    let body = vec![7u8; 1 << 20];
    let server = serve(Reply::Body(body.clone()));
    let error = fetch_small(&server, &body, cache.path());
    let message = error.to_string();
    assert!(matches!(error, DownloadError::TooLarge { .. }), "{message}");
    assert!(message.contains("Content-Length is 1048576"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

#[test]
fn a_body_without_a_length_is_cut_off_at_the_limit() {
    let cache = tempfile::tempdir().unwrap();
    let body = vec![7u8; 1 << 20];
    let server = serve(Reply::NoLength(body.clone()));
    let error = fetch_small(&server, &body, cache.path());
    let message = error.to_string();
    assert!(matches!(error, DownloadError::TooLarge { .. }), "{message}");
    assert!(message.contains("more than 65536 bytes"), "{message}");
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

#[test]
fn a_trickling_server_is_stopped_at_the_deadline() {
    let cache = tempfile::tempdir().unwrap();
    let body = good_ml_100k_zip();
    let server = serve(Reply::Trickle {
        body: body.clone(),
        every: std::time::Duration::from_millis(50),
    });
    let started = std::time::Instant::now();
    let error = fetch_small(&server, &body, cache.path());
    let message = error.to_string();
    assert!(matches!(error, DownloadError::Deadline { .. }), "{message}");
    assert!(message.contains("after 2 s"), "{message}");
    assert!(started.elapsed().as_secs() < 15, "{:?}", started.elapsed());
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

#[test]
fn a_zip_that_unpacks_far_beyond_the_data_set_is_refused_and_leaves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    // 4 MiB of one byte deflate to a few KiB: inside the download limit, far past the unpacked one.
    let bomb = vec![b'1'; 4 << 20];
    let zip = zip_of("ml-100k", &[("u.data", &bomb), ("u.item", U_ITEM)]);
    assert!(zip.len() < 64 << 10, "{}", zip.len());
    let server = serve(Reply::Body(zip.clone()));
    let error = fetch_small(&server, &zip, cache.path());
    let message = error.to_string();
    assert!(matches!(error, DownloadError::BadZip { .. }), "{message}");
    assert!(
        message.contains("unpacks to more than 262144 bytes"),
        "{message}"
    );
    assert!(
        entries(cache.path()).is_empty(),
        "{:?}",
        entries(cache.path())
    );
}

#[test]
fn the_default_limits_leave_room_for_every_known_zip() {
    for dataset in download::KNOWN {
        let limits = dataset.limits();
        assert!(limits.max_download > dataset.zip_bytes, "{}", dataset.name);
        assert!(
            limits.max_unpacked > dataset.unpacked_bytes,
            "{}",
            dataset.name
        );
        // A slow 32 KiB/s line still finishes.
        let seconds = dataset.zip_bytes / download::SLOWEST_BYTES_PER_SECOND;
        assert!(limits.deadline.as_secs() > seconds, "{}", dataset.name);
    }
    assert_eq!(
        download::Limits::for_name("ml-100k"),
        download::KNOWN[0].limits()
    );
    // The 300 MB body for ml-100k is far past its limit.
    assert!(download::Limits::for_name("ml-100k").max_download < 10 << 20);
}
