//! Writing a synthetic data set in its preset's own MovieLens layout, so the real loaders read it:
//!
//! - ML-100K: `u.data` (`user\titem\trating\ttimestamp`, no header) and `u.item` (ISO-8859-1,
//!   `id|title|release date|video release date|URL|` + 19 genre flags).
//! - ML-1M: `ratings.dat` (`user::item::rating::timestamp`) and `movies.dat`
//!   (`id::Title (Year)::Genre|Genre`, ISO-8859-1).
//! - ML-25M: `ratings.csv` (header `userId,movieId,rating,timestamp`, half stars as `3.5`) and
//!   `movies.csv` (`movieId,title,genres`, UTF-8, titles with commas double-quoted).
//!
//! plus `truth.json` for every preset.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Preset, Synthetic, titles};
use crate::data::DataError;

/// Rows formatted per parallel work unit when writing the ratings file.
const ROWS_PER_CHUNK: usize = 1 << 18;

/// The files [`Synthetic::write_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFiles {
    pub ratings: PathBuf,
    pub titles: PathBuf,
    pub truth: PathBuf,
}

pub(super) fn write_preset(synthetic: &Synthetic, dir: &Path) -> Result<WrittenFiles, DataError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let (ratings_name, titles_name) = synthetic.preset.file_names();
    let files = WrittenFiles {
        ratings: dir.join(ratings_name),
        titles: dir.join(titles_name),
        truth: dir.join("truth.json"),
    };
    // Everything that can fail on content is formatted before the first file is written.
    let titles = titles_bytes(synthetic)?;
    let truth = serde_json::to_vec_pretty(&synthetic.truth_summary())
        .map_err(|e| DataError::Invalid(format!("truth.json: cannot serialise: {e}")))?;
    write_atomically(&files.ratings, |out| write_ratings(synthetic, out))?;
    write_atomically(&files.titles, |out| out.write_all(&titles))?;
    write_atomically(&files.truth, |out| {
        out.write_all(&truth)?;
        out.write_all(b"\n")
    })?;
    Ok(files)
}

/// Writes `path` whole or not at all (see [`crate::atomic_file`]).
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> Result<(), DataError> {
    crate::atomic_file::write_atomically(path, fill).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The ratings file, formatted in parallel chunks and written in order.
fn write_ratings(synthetic: &Synthetic, out: &mut impl Write) -> std::io::Result<()> {
    let preset = synthetic.preset;
    let dataset = &synthetic.dataset;
    let separator: &[u8] = match preset {
        Preset::Ml100k => b"\t",
        Preset::Ml1m => b"::",
        Preset::Ml25m => b",",
    };
    if preset == Preset::Ml25m {
        out.write_all(b"userId,movieId,rating,timestamp\n")?;
    }
    let ratings = &dataset.ratings;
    let times = ratings.timestamps.as_deref().unwrap_or(&[]);
    let half_stars = preset.scale().step < 1.0;
    let n = ratings.len();
    let chunks_at_once = rayon::current_num_threads() * 2;
    let mut first = 0;
    while first < n {
        let last = (first + ROWS_PER_CHUNK * chunks_at_once).min(n);
        let texts: Vec<Vec<u8>> = (first..last)
            .step_by(ROWS_PER_CHUNK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|begin| {
                let end = (begin + ROWS_PER_CHUNK).min(last);
                let mut text = Vec::with_capacity((end - begin) * 32);
                for row in begin..end {
                    text.extend_from_slice(dataset.users.raw(ratings.users[row]).as_bytes());
                    text.extend_from_slice(separator);
                    text.extend_from_slice(dataset.items.raw(ratings.items[row]).as_bytes());
                    text.extend_from_slice(separator);
                    push_rating(&mut text, ratings.ratings[row], half_stars);
                    text.extend_from_slice(separator);
                    push_integer(&mut text, times.get(row).copied().unwrap_or(0) as u64);
                    text.push(b'\n');
                }
                text
            })
            .collect();
        for text in &texts {
            out.write_all(text)?;
        }
        first = last;
    }
    Ok(())
}

/// `4` for whole stars; `4.0` / `3.5` for half stars, as ML-20M and later write them.
fn push_rating(text: &mut Vec<u8>, rating: f32, half_stars: bool) {
    let halves = (rating * 2.0).round() as u64;
    push_integer(text, halves / 2);
    if half_stars {
        text.extend_from_slice(if halves % 2 == 1 { b".5" } else { b".0" });
    }
}

/// Decimal digits of `value` (the ratings file has 25M lines; `write!` would dominate).
fn push_integer(text: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    text.extend_from_slice(&digits[at..]);
}

/// The titles file's bytes, in the preset's encoding.
fn titles_bytes(synthetic: &Synthetic) -> Result<Vec<u8>, DataError> {
    let dataset = &synthetic.dataset;
    let empty = Vec::new();
    let titles = dataset.titles.as_ref().unwrap_or(&empty);
    let genres = dataset.genres.as_ref().unwrap_or(&empty);
    let (_, file_name) = synthetic.preset.file_names();
    let mut text = String::new();
    match synthetic.preset {
        Preset::Ml100k => {
            for (item, (title, genre_list)) in titles.iter().zip(genres).enumerate() {
                let id = dataset.items.raw(item as u32);
                let year = title_year(title).unwrap_or("1995");
                text.push_str(&format!(
                    "{id}|{title}|01-Jan-{year}||http://us.imdb.com/M/title-exact?{id}|"
                ));
                let flags: Vec<&str> = titles::GENRES_100K
                    .iter()
                    .map(|g| {
                        if genre_list.split('|').any(|x| x == *g) {
                            "1"
                        } else {
                            "0"
                        }
                    })
                    .collect();
                text.push_str(&flags.join("|"));
                text.push('\n');
            }
            latin1(&text, file_name)
        }
        Preset::Ml1m => {
            for (item, (title, genre_list)) in titles.iter().zip(genres).enumerate() {
                let id = dataset.items.raw(item as u32);
                text.push_str(&format!("{id}::{title}::{genre_list}\n"));
            }
            latin1(&text, file_name)
        }
        Preset::Ml25m => {
            let mut csv_out = csv::Writer::from_writer(Vec::new());
            let to_error =
                |e: csv::Error| DataError::Invalid(format!("{file_name}: cannot format: {e}"));
            csv_out
                .write_record(["movieId", "title", "genres"])
                .map_err(to_error)?;
            for (item, (title, genre_list)) in titles.iter().zip(genres).enumerate() {
                csv_out
                    .write_record([dataset.items.raw(item as u32), title, genre_list])
                    .map_err(to_error)?;
            }
            csv_out
                .into_inner()
                .map_err(|e| DataError::Invalid(format!("{file_name}: cannot format: {e}")))
        }
    }
}

/// `1995` from `Some Title (1995)`.
fn title_year(title: &str) -> Option<&str> {
    let inner = title.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    Some(&inner[open + 1..])
}

/// ISO-8859-1 bytes of `text`; a character beyond U+00FF (a title fit only for UTF-8 layouts)
/// is an error naming the file, the line and the text.
fn latin1(text: &str, file_name: &str) -> Result<Vec<u8>, DataError> {
    let mut bytes = Vec::with_capacity(text.len());
    for (line_index, line) in text.split_inclusive('\n').enumerate() {
        for c in line.chars() {
            let byte = u8::try_from(u32::from(c)).map_err(|_| DataError::BadLine {
                path: PathBuf::from(file_name),
                line: line_index as u64 + 1,
                message: format!(
                    "{c:?} in {:?} has no ISO-8859-1 encoding, which this layout requires; \
                     use a preset with a UTF-8 layout (ml-25m) for such titles",
                    line.trim_end()
                ),
            })?;
            bytes.push(byte);
        }
    }
    Ok(bytes)
}
