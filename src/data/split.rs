//! Train/validation splits (SPEC "Data": random; `--split time`: the most recent ratings).

use serde::{Deserialize, Serialize};

use crate::shuffle::shuffle;

use super::{DataError, Ratings};
use crate::rng::{RngStream, seeded_rng};

/// How to choose the validation set. Serialised under the CLI's names (`random`, `time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// A seeded permutation; the first `round(valid_pct * N)` are the validation set.
    #[default]
    Random,
    /// The most recent `valid_pct` of ratings by timestamp are the validation set.
    Time,
}

/// Splits `ratings` into `(train, valid)`.
///
/// `Random` (SPEC "Data"): a permutation of all `N` rating indices drawn from
/// `seeded_rng(seed, RngStream::Split)`; its first `round(valid_pct * N)` entries are the
/// validation set and the rest the training set, both in permutation order.
///
/// `Time`: the ratings sorted by timestamp (ties keep file order); the last
/// `round(valid_pct * N)` are the validation set. Both sets come out in that chronological order.
/// The seed is not used. Data without timestamps is refused.
pub fn split(
    ratings: &Ratings,
    kind: SplitKind,
    valid_pct: f64,
    seed: u64,
) -> Result<(Ratings, Ratings), DataError> {
    if !(0.0..1.0).contains(&valid_pct) {
        return Err(DataError::Invalid(format!(
            "--valid-pct {valid_pct} is outside [0, 1): give the fraction of ratings to hold out, e.g. 0.2"
        )));
    }
    let n = ratings.len();
    if n > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "{n} ratings do not fit 32-bit rating indices; use a smaller data set"
        )));
    }
    let n_valid = (valid_pct * n as f64).round() as usize;
    let order: Vec<u32> = match kind {
        SplitKind::Random => {
            let mut order: Vec<u32> = (0..n as u32).collect();
            shuffle(&mut order, &mut seeded_rng(seed, RngStream::Split));
            order
        }
        SplitKind::Time => {
            let Some(timestamps) = ratings.timestamps.as_ref() else {
                return Err(DataError::Invalid(
                    "--split time needs timestamps, but this data set has none; use --split random \
                     or a file with a timestamp column (--columns user,item,rating,timestamp)"
                        .into(),
                ));
            };
            let mut order: Vec<u32> = (0..n as u32).collect();
            // Stable sort: equal timestamps keep file order, so the split is deterministic.
            order.sort_by_key(|&i| timestamps[i as usize]);
            // The newest ratings go to validation: rotate them to the front.
            order.rotate_right(n_valid);
            order
        }
    };
    let (valid, train) = order.split_at(n_valid);
    Ok((ratings.select(train), ratings.select(valid)))
}

/// One fold of a `count`-fold cross-validation: `index` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub index: usize,
    pub count: usize,
}

impl Fold {
    /// The held-out positions `round(index N / count) .. round((index + 1) N / count)` of the
    /// split's permutation of `n` ratings.
    pub fn range(self, n: usize) -> std::ops::Range<usize> {
        let at = |f: usize| ((f as f64 * n as f64) / self.count as f64).round() as usize;
        at(self.index)..at(self.index + 1)
    }
}

/// Fold `fold` of a cross-validation: the random split's seeded permutation of all ratings, cut
/// into `count` consecutive blocks; the fold's block is held out and the rest, in permutation
/// order, is the training set. Fold 0 of 5 is exactly the default 20% random split.
pub fn split_fold(
    ratings: &Ratings,
    fold: Fold,
    seed: u64,
) -> Result<(Ratings, Ratings), DataError> {
    let n = ratings.len();
    if fold.count < 2 || fold.index >= fold.count {
        return Err(DataError::Invalid(format!(
            "fold {} of {}: give --folds 2 or more (5 as Surprise and most papers use)",
            fold.index + 1,
            fold.count
        )));
    }
    if fold.count > n {
        return Err(DataError::Invalid(format!(
            "--folds {} is more than the {n} ratings: every fold needs at least one",
            fold.count
        )));
    }
    if n > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "{n} ratings do not fit 32-bit rating indices; use a smaller data set"
        )));
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    shuffle(&mut order, &mut seeded_rng(seed, RngStream::Split));
    let held = fold.range(n);
    let train: Vec<u32> = order[..held.start]
        .iter()
        .chain(&order[held.end..])
        .copied()
        .collect();
    Ok((ratings.select(&train), ratings.select(&order[held])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(n: usize, with_time: bool) -> Ratings {
        Ratings {
            users: (0..n as u32).collect(),
            items: (0..n as u32).map(|i| i % 3).collect(),
            ratings: (0..n).map(|i| i as f32).collect(),
            // Timestamps descend, so the newest ratings are the first lines.
            timestamps: with_time.then(|| (0..n as i64).map(|i| 1_000 - i).collect()),
        }
    }

    #[test]
    fn random_split_sizes_round_half_away_from_zero() {
        // 0.25 * 10 = 2.5 rounds to 3.
        let (train, valid) = split(&ratings(10, false), SplitKind::Random, 0.25, 42).unwrap();
        assert_eq!((train.len(), valid.len()), (7, 3));
    }

    #[test]
    fn random_split_is_a_seeded_partition() {
        let data = ratings(1000, true);
        let (train, valid) = split(&data, SplitKind::Random, 0.2, 7).unwrap();
        let (train2, valid2) = split(&data, SplitKind::Random, 0.2, 7).unwrap();
        assert_eq!(train, train2);
        assert_eq!(valid, valid2);
        let mut all: Vec<u32> = train.users.iter().chain(&valid.users).copied().collect();
        all.sort_unstable();
        assert_eq!(all, data.users, "every rating lands in exactly one set");
        let (_, valid3) = split(&data, SplitKind::Random, 0.2, 8).unwrap();
        assert_ne!(valid, valid3, "another seed, another split");
    }

    #[test]
    fn folds_partition_the_ratings_and_fold_0_of_5_is_the_default_split() {
        let data = ratings(1003, false);
        let mut held: Vec<u32> = Vec::new();
        for index in 0..5 {
            let (train, valid) = split_fold(&data, Fold { index, count: 5 }, 9).unwrap();
            assert_eq!(train.len() + valid.len(), 1003);
            assert!((200..=201).contains(&valid.len()), "{}", valid.len());
            held.extend(&valid.users);
        }
        held.sort_unstable();
        assert_eq!(
            held, data.users,
            "each rating is held out by exactly one fold"
        );
        let fold = split_fold(&data, Fold { index: 0, count: 5 }, 9).unwrap();
        let default = split(&data, SplitKind::Random, 0.2, 9).unwrap();
        assert_eq!(fold, default);
        assert_eq!(Fold { index: 2, count: 3 }.range(10), 7..10);
    }

    #[test]
    fn impossible_folds_are_refused() {
        let data = ratings(3, false);
        for (index, count) in [(0, 1), (2, 2), (0, 4)] {
            assert!(
                split_fold(&data, Fold { index, count }, 0).is_err(),
                "{index} {count}"
            );
        }
    }

    #[test]
    fn time_split_holds_out_the_newest() {
        let data = ratings(10, true);
        let (train, valid) = split(&data, SplitKind::Time, 0.3, 0).unwrap();
        // Lines 0..3 have the largest timestamps; validation is in chronological order.
        assert_eq!(valid.users, vec![2, 1, 0]);
        assert_eq!(train.users, vec![9, 8, 7, 6, 5, 4, 3]);
        assert_eq!(valid.timestamps, Some(vec![998, 999, 1000]));
    }

    #[test]
    fn time_split_without_timestamps_is_refused() {
        let err = split(&ratings(10, false), SplitKind::Time, 0.2, 0).unwrap_err();
        assert!(err.to_string().contains("needs timestamps"), "{err}");
    }

    #[test]
    fn valid_pct_outside_range_is_refused() {
        for pct in [-0.1, 1.0, f64::NAN] {
            assert!(split(&ratings(10, false), SplitKind::Random, pct, 0).is_err());
        }
    }
}
