//! The download cache: `collabgpu download NAME` and `--data NAME` fetch a MovieLens zip from
//! GroupLens, verify its checksum and unzip it, all or nothing.
//!
//! A data set `NAME` lives in `CACHE/NAME/` with its files directly inside (`CACHE/ml-100k/u.data`),
//! where `CACHE` is `$COLLABGPU_DATA`, else the platform's user cache directory plus `collabgpu`.
//! Files placed there by hand are used as they are; only a missing data set is downloaded.
//!
//! All or nothing: the zip is streamed to a temporary file in the cache directory while it is
//! hashed, checked against the known checksum, unpacked into a temporary directory and only then
//! renamed to `CACHE/NAME`. Temporary names start with a dot and are removed on any failure, so a
//! failed or interrupted download never leaves a directory that looks like a data set.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::DataError;

/// Where the zips come from unless [`BASE_URL_VAR`] says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://files.grouplens.org/datasets/movielens";
/// Environment variable overriding the base URL (`BASE/NAME.zip`), e.g. for a local mirror.
pub const BASE_URL_VAR: &str = "COLLABGPU_DOWNLOAD_URL";
/// Environment variable naming the cache directory.
pub const CACHE_VAR: &str = "COLLABGPU_DATA";

/// The expected digest of a zip, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha256(String),
    /// Only for ML-10M, for which GroupLens publishes no SHA-256.
    Md5(String),
}

impl Checksum {
    fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "SHA-256",
            Checksum::Md5(_) => "MD5",
        }
    }

    fn hex(&self) -> &str {
        match self {
            Checksum::Sha256(hex) | Checksum::Md5(hex) => hex,
        }
    }
}

/// A data set the cache knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownDataset {
    /// The name on the command line and in the cache (`ml-100k`).
    pub name: &'static str,
    sha256: Option<&'static str>,
    md5: Option<&'static str>,
    /// The file whose presence marks the data set as complete in the cache.
    pub marker: &'static str,
    /// The files a user placing the data set by hand needs, for error messages.
    pub files: &'static str,
    /// The size of GroupLens's zip, about (its checksum is exact; this is for the limits).
    pub zip_bytes: u64,
    /// What the zip unpacks to, about.
    pub unpacked_bytes: u64,
}

impl KnownDataset {
    /// The published checksum of the zip.
    pub fn checksum(&self) -> Checksum {
        match (self.sha256, self.md5) {
            (Some(sha256), _) => Checksum::Sha256(sha256.to_string()),
            (None, Some(md5)) => Checksum::Md5(md5.to_string()),
            (None, None) => unreachable!("every known data set has a checksum"),
        }
    }

    /// The limits of fetching this data set: a quarter more than its zip's size, twice what it
    /// unpacks to, and [`Limits::deadline_for`] its size.
    pub fn limits(&self) -> Limits {
        let download = self.zip_bytes.saturating_add(self.zip_bytes / 4);
        Limits {
            max_download: download,
            max_unpacked: self.unpacked_bytes.saturating_mul(2),
            deadline: Limits::deadline_for(download),
        }
    }
}

/// What one download may cost: a body larger than `max_download` bytes, a zip that unpacks to
/// more than `max_unpacked` bytes, or a transfer still going after `deadline` is stopped, and
/// nothing is kept. A server that sends 300 MB for ml-100k, trickles a byte a second, or serves
/// a 4 MB zip of a 4 GB `u.data` cannot fill the disk or hang the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_download: u64,
    pub max_unpacked: u64,
    pub deadline: Duration,
}

impl Limits {
    /// For data sets of unknown size: 1 GiB down, 4 GiB unpacked.
    pub const UNKNOWN: Limits = Limits {
        max_download: 1 << 30,
        max_unpacked: 4 << 30,
        deadline: Duration::from_secs(300 + (1 << 30) / SLOWEST_BYTES_PER_SECOND),
    };

    /// Five minutes, plus the time `bytes` take at [`SLOWEST_BYTES_PER_SECOND`]: a slow line
    /// finishes, a trickle does not go on for ever.
    pub fn deadline_for(bytes: u64) -> Duration {
        Duration::from_secs(300u64.saturating_add(bytes / SLOWEST_BYTES_PER_SECOND))
    }

    /// The limits of the data set called `name` ([`Limits::UNKNOWN`] when it is not known).
    pub fn for_name(name: &str) -> Limits {
        known(name).map_or(Limits::UNKNOWN, KnownDataset::limits)
    }
}

/// The slowest transfer rate the deadline allows for: 32 KiB/s.
pub const SLOWEST_BYTES_PER_SECOND: u64 = 32 << 10;

/// The data sets `collabgpu download` accepts, with GroupLens's published checksums.
pub const KNOWN: [KnownDataset; 6] = [
    KnownDataset {
        name: "ml-100k",
        sha256: Some("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"),
        md5: None,
        marker: "u.data",
        files: "u.data and u.item",
        zip_bytes: 4_924_029,
        unpacked_bytes: 16_000_000,
    },
    KnownDataset {
        name: "ml-1m",
        sha256: Some("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
        md5: None,
        marker: "ratings.dat",
        files: "ratings.dat and movies.dat",
        zip_bytes: 5_917_549,
        unpacked_bytes: 25_000_000,
    },
    KnownDataset {
        name: "ml-10m",
        sha256: None,
        md5: Some("ce571fd55effeba0271552578f2648bd"),
        marker: "ratings.dat",
        files: "ratings.dat and movies.dat (from the zip's ml-10M100K folder)",
        zip_bytes: 65_566_137,
        unpacked_bytes: 420_000_000,
    },
    KnownDataset {
        name: "ml-20m",
        sha256: Some("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
        md5: None,
        marker: "ratings.csv",
        files: "ratings.csv and movies.csv",
        zip_bytes: 198_702_078,
        unpacked_bytes: 900_000_000,
    },
    KnownDataset {
        name: "ml-25m",
        sha256: Some("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
        md5: None,
        marker: "ratings.csv",
        files: "ratings.csv and movies.csv",
        zip_bytes: 261_978_986,
        unpacked_bytes: 1_250_000_000,
    },
    KnownDataset {
        name: "ml-latest-small",
        sha256: Some("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436"),
        md5: None,
        marker: "ratings.csv",
        files: "ratings.csv and movies.csv",
        zip_bytes: 978_202,
        unpacked_bytes: 3_400_000,
    },
];

/// The known data set called `name`, if any.
pub fn known(name: &str) -> Option<&'static KnownDataset> {
    KNOWN.iter().find(|k| k.name == name)
}

/// Errors from the download cache. Each says what to do next; network and HTTP failures also say
/// how to place the files by hand.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "this platform has no user cache directory; set {CACHE_VAR} to the folder that should \
         hold the data sets (one subfolder per name, e.g. $COLLABGPU_DATA/ml-100k/u.data)"
    )]
    NoCacheDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not download {url}: {reason}. {by_hand}")]
    Fetch {
        url: String,
        reason: String,
        by_hand: String,
    },
    #[error(
        "the download of {url} broke off after {received} of {expected} bytes; nothing was kept. \
         Run the command again. {by_hand}",
        expected = expected.map_or_else(|| "an unknown number of".to_string(), |e| e.to_string())
    )]
    Truncated {
        url: String,
        received: u64,
        expected: Option<u64>,
        by_hand: String,
    },
    #[error(
        "{url} has {algorithm} {actual}, but {expected} was expected: the file is corrupt or was \
         changed upstream, and nothing was kept. Run the command again; if it persists, check the \
         file against GroupLens's page. {by_hand}"
    )]
    ChecksumMismatch {
        url: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
        by_hand: String,
    },
    #[error(
        "{url} sends more than {limit} bytes ({what}), far more than this data set's zip; nothing \
         was kept. Check {BASE_URL_VAR} or the mirror. {by_hand}"
    )]
    TooLarge {
        url: String,
        limit: u64,
        what: String,
        by_hand: String,
    },
    #[error(
        "the download of {url} was still going after {seconds} s ({received} bytes received), past \
         the deadline for this data set's size; nothing was kept. Try again on a faster \
         connection. {by_hand}"
    )]
    Deadline {
        url: String,
        seconds: u64,
        received: u64,
        by_hand: String,
    },
    #[error("{url} is not a usable MovieLens zip: {reason}; nothing was kept. {by_hand}")]
    BadZip {
        url: String,
        reason: String,
        by_hand: String,
    },
}

/// The cache directory: `$COLLABGPU_DATA`, else the user cache directory plus `collabgpu`.
pub fn cache_dir() -> Result<PathBuf, DownloadError> {
    match std::env::var_os(CACHE_VAR) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => dirs::cache_dir()
            .map(|dir| dir.join("collabgpu"))
            .ok_or(DownloadError::NoCacheDir),
    }
}

/// The base URL: `$COLLABGPU_DOWNLOAD_URL`, else GroupLens.
pub fn base_url() -> String {
    match std::env::var(BASE_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => DEFAULT_BASE_URL.to_string(),
    }
}

/// `BASE/NAME.zip`.
pub fn zip_url(base_url: &str, name: &str) -> String {
    format!("{}/{name}.zip", base_url.trim_end_matches('/'))
}

/// `CACHE/NAME` when the data set is there already (its marker file exists).
pub fn cached(name: &str, cache_dir: &Path) -> Option<PathBuf> {
    let dir = cache_dir.join(name);
    let marker = known(name).map_or("", |k| k.marker);
    (!marker.is_empty() && dir.join(marker).is_file()).then_some(dir)
}

/// Resolves a data-set name (`ml-100k`, `ml-25m`, ...) to its directory in the cache
/// (`$COLLABGPU_DATA/NAME`, else the user cache directory), downloading it when missing.
/// Returns `Ok(None)` when `name` is not a known data-set name.
pub fn resolve(name: &str, progress: bool) -> Result<Option<PathBuf>, DataError> {
    if known(name).is_none() {
        return Ok(None);
    }
    let cache = cache_dir()?;
    Ok(resolve_in(name, &cache, &base_url(), progress)?)
}

/// [`resolve`] with the cache directory and base URL given rather than read from the
/// environment.
pub fn resolve_in(
    name: &str,
    cache_dir: &Path,
    base_url: &str,
    progress: bool,
) -> Result<Option<PathBuf>, DownloadError> {
    let Some(dataset) = known(name) else {
        return Ok(None);
    };
    if let Some(dir) = cached(name, cache_dir) {
        return Ok(Some(dir));
    }
    let url = zip_url(base_url, name);
    fetch_into(&url, name, &dataset.checksum(), cache_dir, progress).map(Some)
}

/// Downloads the zip at `url`, checks it against `expected`, and unpacks it into
/// `cache_dir/name` (replacing what is there), stripping the zip's single top folder
/// (`ml-100k/`, `ml-10M100K/`). Returns `cache_dir/name`. On any failure nothing is left in
/// `cache_dir` but what was there before.
pub fn fetch_into(
    url: &str,
    name: &str,
    expected: &Checksum,
    cache_dir: &Path,
    progress: bool,
) -> Result<PathBuf, DownloadError> {
    let limits = Limits::for_name(name);
    fetch_into_with(url, name, expected, cache_dir, progress, &limits)
}

/// [`fetch_into`] within the given [`Limits`].
pub fn fetch_into_with(
    url: &str,
    name: &str,
    expected: &Checksum,
    cache_dir: &Path,
    progress: bool,
    limits: &Limits,
) -> Result<PathBuf, DownloadError> {
    let by_hand = by_hand(name, url, cache_dir);
    std::fs::create_dir_all(cache_dir).map_err(io_error(cache_dir))?;
    let unique = format!("{}.{}", std::process::id(), unique_suffix());
    let zip_path = Removed::file(cache_dir.join(format!(".{name}.{unique}.zip.partial")));

    let actual = download_to(url, &zip_path.path, expected, progress, limits, &by_hand)?;
    if !actual.eq_ignore_ascii_case(expected.hex()) {
        return Err(DownloadError::ChecksumMismatch {
            url: url.to_string(),
            algorithm: expected.algorithm(),
            expected: expected.hex().to_string(),
            actual,
            by_hand,
        });
    }

    let unpacked = Removed::dir(cache_dir.join(format!(".{name}.{unique}.unpacking")));
    let bad_zip = |reason: String| DownloadError::BadZip {
        url: url.to_string(),
        reason,
        by_hand: by_hand.clone(),
    };
    unpack(&zip_path.path, &unpacked.path, limits.max_unpacked).map_err(|e| match e {
        Unpack::Zip(reason) => bad_zip(reason),
        Unpack::Io(path, source) => DownloadError::Io { path, source },
    })?;
    let marker = known(name).map(|k| k.marker);
    if let Some(marker) = marker.filter(|m| !unpacked.path.join(m).is_file()) {
        return Err(bad_zip(format!(
            "it has no {marker} (at its top or under one top folder)"
        )));
    }

    let target = cache_dir.join(name);
    // Files placed by hand but incomplete (no marker) make way, and come back if the new copy
    // cannot be put in place.
    let old = if target.exists() {
        let old = Removed::dir(cache_dir.join(format!(".{name}.{unique}.old")));
        std::fs::rename(&target, &old.path).map_err(io_error(&target))?;
        Some(old)
    } else {
        None
    };
    if let Err(source) = std::fs::rename(&unpacked.path, &target) {
        if let Some(old) = old {
            if std::fs::rename(&old.path, &target).is_ok() {
                old.keep();
            }
        }
        return Err(io_error(&target)(source));
    }
    unpacked.keep();
    Ok(target)
}

/// How to place a data set by hand, for error messages.
fn by_hand(name: &str, url: &str, cache_dir: &Path) -> String {
    let (marker, files) =
        known(name).map_or(("ratings file", "its files"), |k| (k.marker, k.files));
    let target = cache_dir.join(name);
    format!(
        "To place it by hand: fetch {url} on a machine with internet access, unzip it, and put \
         {files} directly into {} (so that {} exists); or set {CACHE_VAR} to a folder that \
         already holds {name}/",
        target.display(),
        target.join(marker).display()
    )
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Nanoseconds since the epoch, to keep temporary names of concurrent downloads apart.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Streams `url` into `path`, hashing as it goes; returns the hex digest of the kind `expected`
/// asks for. A body shorter than its `Content-Length` is an error, and so is one larger than
/// `limits.max_download` (refused from its `Content-Length` before a byte is written, or when the
/// bytes received pass it) and a transfer that passes `limits.deadline`.
fn download_to(
    url: &str,
    path: &Path,
    expected: &Checksum,
    progress: bool,
    limits: &Limits,
    by_hand: &str,
) -> Result<String, DownloadError> {
    let started = std::time::Instant::now();
    let too_large = |what: String| DownloadError::TooLarge {
        url: url.to_string(),
        limit: limits.max_download,
        what,
        by_hand: by_hand.to_string(),
    };
    let fetch_error = |reason: String| DownloadError::Fetch {
        url: url.to_string(),
        reason,
        by_hand: by_hand.to_string(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled connection fails instead of hanging; a slow one keeps going.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent
        .get(url)
        .call()
        .map_err(|e| fetch_error(e.to_string()))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // With a content encoding (which a zip should never get) the length is of the encoded body.
    let expected_length = header("content-encoding")
        .is_none()
        .then(|| header("content-length").and_then(|v| v.trim().parse::<u64>().ok()))
        .flatten();
    if let Some(length) = expected_length.filter(|&l| l > limits.max_download) {
        return Err(too_large(format!("its Content-Length is {length}")));
    }
    let mut body = response.into_body().into_reader();
    let mut file = File::create(path).map_err(io_error(path))?;
    let bar = progress_bar(expected_length, progress);
    let mut sha256 = Sha256::new();
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = 0u64;
    let truncated = |received| DownloadError::Truncated {
        url: url.to_string(),
        received,
        expected: expected_length,
        by_hand: by_hand.to_string(),
    };
    loop {
        let read = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                bar.abandon();
                return Err(truncated(received));
            }
            Err(e) => {
                bar.abandon();
                return Err(fetch_error(format!("{e} after {received} bytes")));
            }
        };
        let chunk = &buffer[..read];
        if received.saturating_add(read as u64) > limits.max_download {
            bar.abandon();
            return Err(too_large(format!(
                "{} bytes had come",
                received.saturating_add(read as u64)
            )));
        }
        if started.elapsed() > limits.deadline {
            bar.abandon();
            return Err(DownloadError::Deadline {
                url: url.to_string(),
                seconds: limits.deadline.as_secs(),
                received,
                by_hand: by_hand.to_string(),
            });
        }
        file.write_all(chunk).map_err(io_error(path))?;
        match expected {
            Checksum::Sha256(_) => sha256.update(chunk),
            Checksum::Md5(_) => md5.update(chunk),
        }
        received += read as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if expected_length.is_some_and(|length| length != received) {
        return Err(truncated(received));
    }
    file.sync_all().map_err(io_error(path))?;
    let digest: Vec<u8> = match expected {
        Checksum::Sha256(_) => sha256.finalize().to_vec(),
        Checksum::Md5(_) => md5.finalize().to_vec(),
    };
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// A byte progress bar on stderr, or a hidden one when asked or when stderr is not a terminal.
fn progress_bar(length: Option<u64>, progress: bool) -> indicatif::ProgressBar {
    if !progress || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match length {
        Some(length) => indicatif::ProgressBar::new(length),
        None => indicatif::ProgressBar::no_length(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.with_style(style)
}

enum Unpack {
    Zip(String),
    Io(PathBuf, std::io::Error),
}

/// Unpacks `zip_path` into the empty-or-missing `dir`, dropping the folder every entry shares
/// (if there is one) so that the data files lie directly in `dir`. More than `max_unpacked` bytes
/// in all, as the entries declare them or as they come out, is refused (a zip bomb).
fn unpack(zip_path: &Path, dir: &Path, max_unpacked: u64) -> Result<(), Unpack> {
    let file = File::open(zip_path).map_err(|e| Unpack::Io(zip_path.to_path_buf(), e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| Unpack::Zip(e.to_string()))?;
    let mut names = Vec::with_capacity(archive.len());
    let mut declared = 0u64;
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| Unpack::Zip(e.to_string()))?;
        // `enclosed_name` refuses absolute paths and `..`: a zip cannot write outside `dir`.
        let name = entry.enclosed_name().ok_or_else(|| {
            Unpack::Zip(format!(
                "entry {:?} points outside its folder",
                entry.name()
            ))
        })?;
        declared = declared.saturating_add(entry.size());
        names.push((name, entry.is_dir()));
    }
    let too_large = |bytes: u64| {
        Unpack::Zip(format!(
            "it unpacks to more than {max_unpacked} bytes ({bytes} and counting), far more than \
             this data set"
        ))
    };
    if declared > max_unpacked {
        return Err(too_large(declared));
    }
    let mut written = 0u64;
    let top = shared_top_folder(&names);
    std::fs::create_dir_all(dir).map_err(|e| Unpack::Io(dir.to_path_buf(), e))?;
    for (index, (name, is_dir)) in names.iter().enumerate() {
        let relative = match &top {
            Some(top) => name.strip_prefix(top).unwrap_or(name),
            None => name.as_path(),
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let destination = dir.join(relative);
        let create = |path: &Path| {
            std::fs::create_dir_all(path).map_err(|e| Unpack::Io(path.to_path_buf(), e))
        };
        if *is_dir {
            create(&destination)?;
            continue;
        }
        if let Some(parent) = destination.parent() {
            create(parent)?;
        }
        let mut entry = archive
            .by_index(index)
            .map_err(|e| Unpack::Zip(e.to_string()))?;
        let mut out = File::create(&destination).map_err(|e| Unpack::Io(destination.clone(), e))?;
        // The declared sizes may lie: count what comes out, and stop one byte past the limit.
        let allowed = max_unpacked - written;
        let copied = std::io::copy(&mut (&mut entry).take(allowed + 1), &mut out).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                    Unpack::Zip(format!("{}: {e}", name.display()))
                }
                _ => Unpack::Io(destination.clone(), e),
            }
        })?;
        if copied > allowed {
            return Err(too_large(written + copied));
        }
        written += copied;
    }
    Ok(())
}

/// The first path component, when every entry lies under it (or is it).
fn shared_top_folder(names: &[(PathBuf, bool)]) -> Option<PathBuf> {
    let first = names.first()?.0.components().next()?;
    let top = PathBuf::from(first.as_os_str());
    names
        .iter()
        .all(|(name, is_dir)| {
            name.starts_with(&top) && (name.components().count() > 1 || (*is_dir && *name == top))
        })
        .then_some(top)
}

/// A temporary file or directory, removed when dropped unless kept.
struct Removed {
    path: PathBuf,
    is_dir: bool,
}

impl Removed {
    fn file(path: PathBuf) -> Removed {
        Removed {
            path,
            is_dir: false,
        }
    }

    fn dir(path: PathBuf) -> Removed {
        Removed { path, is_dir: true }
    }

    /// It was renamed into place: nothing to remove.
    fn keep(mut self) {
        self.path = PathBuf::new();
    }
}

impl Drop for Removed {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        // Best effort: the error that led here matters more than a failed clean-up.
        let _ = if self.is_dir {
            std::fs::remove_dir_all(&self.path)
        } else {
            std::fs::remove_file(&self.path)
        };
    }
}
