//! Train/validation splits (SPEC "Data": random; `--split time`: the most recent ratings).

use super::{DataError, Ratings};

/// How to choose the validation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitKind {
    /// A seeded permutation; the first `round(valid_pct * N)` are the validation set.
    #[default]
    Random,
    /// The most recent `valid_pct` of ratings by timestamp are the validation set.
    Time,
}

/// Splits `ratings` into `(train, valid)`.
pub fn split(
    ratings: &Ratings,
    kind: SplitKind,
    valid_pct: f64,
    seed: u64,
) -> Result<(Ratings, Ratings), DataError> {
    let _ = (ratings, kind, valid_pct, seed);
    Err(DataError::Invalid("splitting is not written yet".into()))
}
