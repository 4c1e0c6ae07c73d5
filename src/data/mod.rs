//! Reading ratings: MovieLens layouts and plain delimited files into a struct-of-arrays store,
//! raw-id to dense-index maps, splits, synthetic data with a planted answer, and the download cache.

use std::path::PathBuf;

/// Ratings as parallel columns (struct of arrays): entry `n` is one `(user, item, rating, timestamp)`.
///
/// Users and items are dense indices (`< U`, `< I`) assigned by [`IdMap`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ratings {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub ratings: Vec<f32>,
    /// Unix seconds, when the source has them.
    pub timestamps: Option<Vec<i64>>,
}

impl Ratings {
    pub fn len(&self) -> usize {
        self.ratings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }

    /// The ratings at `indices`, in that order (timestamps kept when present).
    pub fn select(&self, indices: &[u32]) -> Ratings {
        let pick_u32 = |col: &[u32]| indices.iter().map(|&n| col[n as usize]).collect();
        Ratings {
            users: pick_u32(&self.users),
            items: pick_u32(&self.items),
            ratings: indices.iter().map(|&n| self.ratings[n as usize]).collect(),
            timestamps: self
                .timestamps
                .as_ref()
                .map(|ts| indices.iter().map(|&n| ts[n as usize]).collect()),
        }
    }
}

/// Dense index <-> raw id. Index `d` is the `d`-th raw id in ascending order (numeric order when
/// every id is an integer), over the whole data set before splitting (SPEC "Data").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    raw: Vec<String>,
}

impl IdMap {
    /// Builds the map from the distinct raw ids, sorting them as SPEC says.
    pub fn from_raw_ids(mut raw: Vec<String>) -> IdMap {
        let all_integers = raw.iter().all(|id| integer_id(id).is_some());
        if all_integers {
            raw.sort_by_key(|id| integer_id(id).expect("checked above"));
        } else {
            raw.sort();
        }
        raw.dedup();
        IdMap { raw }
    }

    /// Wraps raw ids that are already in index order (e.g. read back from a model file).
    pub fn from_sorted(raw: Vec<String>) -> IdMap {
        IdMap { raw }
    }

    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The raw id of dense index `index`.
    pub fn raw(&self, index: u32) -> &str {
        &self.raw[index as usize]
    }

    pub fn raw_ids(&self) -> &[String] {
        &self.raw
    }

    /// The dense index of a raw id, if the data set has it. Integer ids compare as integers
    /// (`042`, `+42` and `42` are one id, see [`canonical_id`]); other ids compare as text.
    /// Linear in the worst case for non-integer ids; build a `HashMap` when looking up many.
    pub fn index_of(&self, raw: &str) -> Option<u32> {
        let found = match integer_id(raw) {
            Some(key) if self.raw.iter().all(|id| integer_id(id).is_some()) => self
                .raw
                .binary_search_by_key(&key, |id| integer_id(id).unwrap_or(i64::MIN))
                .ok(),
            Some(key) => self.raw.iter().position(|id| integer_id(id) == Some(key)),
            None => self.raw.iter().position(|id| id == raw),
        };
        found.map(|d| d as u32)
    }

    /// Why these ids cannot be a model's id list (SPEC "Data" order: ascending, numerically when
    /// every id is an integer, each id once), or `None` when they can.
    pub fn order_problem(&self) -> Option<String> {
        let all_integers = self.raw.iter().all(|id| integer_id(id).is_some());
        for (index, pair) in self.raw.windows(2).enumerate() {
            let (a, b) = (&pair[0], &pair[1]);
            let ascending = match all_integers {
                true => integer_id(a) < integer_id(b),
                false => a < b,
            };
            if !ascending {
                let how = match canonical_id(a) == canonical_id(b) {
                    true => "the same id twice",
                    false => "out of order",
                };
                return Some(format!(
                    "ids {a:?} and {b:?} at indices {index} and {} are {how}",
                    index + 1
                ));
            }
        }
        if !all_integers {
            // Text order keeps "42" and "042" apart; as ids they are one.
            let mut seen = std::collections::HashMap::new();
            for (index, id) in self.raw.iter().enumerate() {
                if let Some(first) = seen.insert(canonical_id(id), index) {
                    return Some(format!(
                        "ids {:?} and {id:?} at indices {first} and {index} are the same integer",
                        self.raw[first]
                    ));
                }
            }
        }
        None
    }
}

/// The value of an integer raw id: optional sign, decimal digits, leading zeros allowed, within
/// `i64` (`042`, `+42` and `42` are all 42). `None` for any other text, which stays a string id.
pub fn integer_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok()
}

/// The text a raw id is stored and shown as: an integer in its canonical form (`042` and `+42`
/// become `42`, `-0` becomes `0`), anything else as it is.
pub fn canonical_id(raw: &str) -> std::borrow::Cow<'_, str> {
    match integer_id(raw) {
        Some(value) if value.to_string() != raw => value.to_string().into(),
        _ => raw.into(),
    }
}

/// A loaded data set: the ratings, the id maps and what the source said about items.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub ratings: Ratings,
    pub users: IdMap,
    pub items: IdMap,
    /// Title per item index, when the layout has a title file.
    pub titles: Option<Vec<String>>,
    /// Genres per item index (`|`-joined), when the layout has them.
    pub genres: Option<Vec<String>>,
    /// Where the ratings came from (a path or `synthetic:NAME`), for messages.
    pub source: String,
    /// Lines skipped under `--skip-bad-lines`, by reason.
    pub skipped: Vec<(String, u64)>,
}

/// Errors from reading data. Every message says which file, which line and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    BadLine {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// Fetching a named data set into the download cache failed.
    #[error(transparent)]
    Download(#[from] download::DownloadError),
}

/// How to read a ratings source. Built by the CLI from `--format`, `--delimiter`, ... flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    pub format: Format,
    /// Field delimiter for `--format csv` (default `,`).
    pub delimiter: Option<u8>,
    /// Whether a `--format csv` file has a header line (`None`: detect).
    pub header: Option<bool>,
    /// `--columns user,item,rating[,timestamp]`: names (matched against the header) or 0-based
    /// positions.
    pub columns: Option<Vec<String>>,
    pub item_key: ItemKey,
    /// Skip malformed lines (and report how many, by reason) instead of failing.
    pub skip_bad_lines: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            format: Format::Auto,
            delimiter: None,
            header: None,
            columns: None,
            item_key: ItemKey::Id,
            skip_bad_lines: false,
        }
    }
}

/// The input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Detect a MovieLens layout from the directory or file name.
    #[default]
    Auto,
    /// A generic delimited file described by the other options.
    Csv,
}

/// What identifies an item (SPEC "Data").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItemKey {
    /// The raw item id.
    #[default]
    Id,
    /// The title: distinct ids that share a title become one item (the fastai book's ML-100k).
    Title,
}

pub mod columns;
mod delimited;
pub mod download;
mod fingerprint;
pub mod load;
mod movielens;
pub mod prepare;
mod rating_index;
pub mod split;
pub mod stats;
pub mod synth;

pub use columns::{RatingColumns, RawIds, dataset_from_columns};
pub use fingerprint::DataFingerprint;
pub use load::load;
pub use prepare::{SplitData, load_split, noise_floor, split_dataset, split_dataset_fold};
pub use rating_index::RatingIndex;
