//! Synthetic data with a known answer: ratings from a planted DotProductBias-like model plus
//! Gaussian noise, in the shape and file layout of a MovieLens preset.

use super::{DataError, Dataset};

/// A data-set shape to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// 100,000 ratings, 943 users, 1,682 items, whole stars, `u.data` layout.
    Ml100k,
    /// ML-1M's shape, whole stars, `ratings.dat` layout.
    Ml1m,
    /// 25,000,095 ratings, 162,541 users, 59,047 items, half stars, `ratings.csv` layout.
    Ml25m,
}

impl Preset {
    /// `ml-100k`, `ml-1m` or `ml-25m`.
    pub fn from_name(name: &str) -> Option<Preset> {
        match name {
            "ml-100k" => Some(Preset::Ml100k),
            "ml-1m" => Some(Preset::Ml1m),
            "ml-25m" => Some(Preset::Ml25m),
            _ => None,
        }
    }
}

/// What was planted, index-aligned with the generated [`Dataset`]'s dense indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    /// Standard deviation of the Gaussian noise added before rounding.
    pub noise_std: f32,
    /// MSE of the planted model's prediction on the written (rounded) ratings.
    pub noise_floor_mse: f64,
}

/// A generated data set and the model it came from.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub dataset: Dataset,
    pub truth: Truth,
}

/// Generates `preset`'s data set in memory from `seed`. Same seed, same data.
pub fn generate(preset: Preset, seed: u64) -> Result<Synthetic, DataError> {
    let _ = (preset, seed);
    Err(DataError::Invalid("synthetic data: not written yet".into()))
}
