//! Reading a data set and splitting it for training, as every training command does: load, take
//! SPEC's split, and keep only what training reads.

use super::split::{Fold, SplitKind, split, split_fold};
use super::{DataError, DataFingerprint, Dataset, LoadOptions, Ratings};

/// A data set split for training. `dataset` keeps its id maps, titles and source for the model
/// file and for messages, but not its ratings: once split, the whole set is not needed, and on
/// ML-25M that is 500 MB of host memory not held for the whole run.
#[derive(Debug)]
pub struct SplitData {
    pub dataset: Dataset,
    pub train: Ratings,
    pub valid: Ratings,
    /// What a checkpoint of a run on this split must match.
    pub fingerprint: DataFingerprint,
    /// On synthetic data: the planted model's MSE on the validation ratings (`noise_floor` in
    /// `train`'s report), about the best validation loss any trainer can reach.
    pub noise_floor: Option<f64>,
}

impl SplitData {
    /// `U`.
    pub fn users(&self) -> usize {
        self.dataset.users.len()
    }

    /// `I`.
    pub fn items(&self) -> usize {
        self.dataset.items.len()
    }
}

/// Loads `source` (anything `--data` takes) and splits it `kind`-wise, holding out `valid_pct`
/// with `seed`. Neither set keeps timestamps: training never reads them.
pub fn load_split(
    source: &str,
    options: &LoadOptions,
    kind: SplitKind,
    valid_pct: f64,
    seed: u64,
) -> Result<SplitData, DataError> {
    let (dataset, truth) = super::load::load_with_truth(source, options)?;
    let mut split = split_dataset(dataset, kind, valid_pct, seed)?;
    split.noise_floor = truth.and_then(|truth| noise_floor(&truth, &split.valid));
    Ok(split)
}

/// `(1/N_valid) sum (pred_planted - r)^2` over `valid`, in f64, in rating order; `None` without
/// validation ratings.
pub fn noise_floor(truth: &super::synth::Truth, valid: &Ratings) -> Option<f64> {
    use rayon::prelude::*;
    if valid.is_empty() {
        return None;
    }
    // Fixed chunks summed in order, so the value does not depend on the thread count.
    const CHUNK: usize = 1 << 16;
    let starts: Vec<usize> = (0..valid.len()).step_by(CHUNK).collect();
    let chunks: Vec<f64> = starts
        .par_iter()
        .map(|&start| {
            (start..(start + CHUNK).min(valid.len()))
                .map(|n| {
                    let planted = truth.predict(valid.users[n], valid.items[n]);
                    (planted - valid.ratings[n] as f64).powi(2)
                })
                .sum::<f64>()
        })
        .collect();
    Some(chunks.iter().sum::<f64>() / valid.len() as f64)
}

/// [`load_split`] for a data set already in memory.
pub fn split_dataset(
    mut dataset: Dataset,
    kind: SplitKind,
    valid_pct: f64,
    seed: u64,
) -> Result<SplitData, DataError> {
    let mut all = std::mem::take(&mut dataset.ratings);
    if kind == SplitKind::Random {
        // A random split never reads timestamps either: 8 bytes a rating not to copy.
        all.timestamps = None;
    }
    let (train, valid) = split(&all, kind, valid_pct, seed)?;
    drop(all);
    Ok(assemble(dataset, train, valid, seed))
}

/// Fold `fold` of a cross-validation of a data set in memory ([`split_fold`]).
pub fn split_dataset_fold(
    mut dataset: Dataset,
    fold: Fold,
    seed: u64,
) -> Result<SplitData, DataError> {
    let mut all = std::mem::take(&mut dataset.ratings);
    all.timestamps = None;
    let (train, valid) = split_fold(&all, fold, seed)?;
    drop(all);
    Ok(assemble(dataset, train, valid, seed))
}

/// The split data of `train` and `valid`, without timestamps, with their fingerprint.
fn assemble(dataset: Dataset, mut train: Ratings, mut valid: Ratings, seed: u64) -> SplitData {
    (train.timestamps, valid.timestamps) = (None, None);
    let fingerprint = DataFingerprint::new(
        dataset.users.len(),
        dataset.items.len(),
        &train,
        &valid,
        seed,
    );
    SplitData {
        dataset,
        train,
        valid,
        fingerprint,
        noise_floor: None,
    }
}
