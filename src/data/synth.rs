//! Synthetic data with a known answer: ratings from a planted DotProductBias-like model plus
//! Gaussian noise, in the shape and file layout of a MovieLens preset.
//!
//! The planted model is SPEC's DotProductBias with a y-range and `K = PLANTED_K` factors, plus a
//! global offset inside the sigmoid:
//!
//! ```text
//! pred(u, i) = lo + (hi - lo) * sigmoid(g + dot(P[u], Q[i]) + bu[u] + bi[i])
//! rating     = clamp(round_to_scale(pred(u, i) + noise)),   noise ~ Normal(0, noise_std)
//! ```
//!
//! so a trainer with `K >= PLANTED_K` can represent it exactly (fold `g` into `bu`, see
//! [`Truth::to_params`]); the best validation MSE it can hope for is about the noise floor, the
//! MSE of `pred` against the written ratings.
//!
//! How the shape is met: every user first gets at least 20 ratings and a heavy-tailed
//! (log-normal) share of the rest, capped below `I`; every item is given to one user up front so
//! that each occurs at least once; the remaining items of a user are drawn without replacement
//! from a Zipf-like popularity (a few blockbusters, a long tail). Users are generated in parallel,
//! each from its own stream of the seed, so the output does not depend on the thread count.

mod titles;
mod write;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;

use super::{DataError, Dataset, IdMap, Ratings};
use crate::model::Params;
use crate::rng::{RngStream, seeded_rng};

pub use write::WrittenFiles;

/// `K` of the planted model: a few factors, so any trainer's `K` can represent it.
pub const PLANTED_K: usize = 4;
/// The planted model's sigmoid range: SPEC's default y-range, so the default recipe fits it.
pub const PLANTED_Y_RANGE: (f32, f32) = (0.0, 5.5);
/// Standard deviation of the Gaussian noise added to the planted prediction before rounding.
///
/// Calibrated (with [`FACTOR_STD`]) so that the planted model explains about as much of the
/// rating variance as models do on the real ML-100K (biases most of it, factors a little), rather
/// than far more: with noise 0.7 and factor std 0.55 the floor was 0.51, where no model on the real
/// data gets below about 0.8, and the default recipe ended 1.27x above it.
pub const NOISE_STD: f32 = 1.0;
/// Standard deviation of every entry of `P` and `Q`: `dot(P[u], Q[i])` has variance
/// `PLANTED_K * FACTOR_STD^4`, a small part of the signal, as on the real data where a
/// biases-only model is within about 0.07 MSE of a factor model.
pub const FACTOR_STD: f64 = 0.2;
const USER_BIAS_STD: f64 = 0.35;
const ITEM_BIAS_STD: f64 = 0.45;
/// Fewest ratings per user, as in every MovieLens release.
pub const MIN_RATINGS_PER_USER: usize = 20;
/// No user rates more than this share of all items (the busiest ML-100K user rated 44%).
const MAX_USER_SHARE_OF_ITEMS: f64 = 0.45;
/// Spread (sigma of the log) of user activity beyond the minimum.
const USER_ACTIVITY_SIGMA: f64 = 1.1;
/// Item popularity `w(rank) = 1 / (rank + ZIPF_OFFSET)^ZIPF_EXPONENT`.
pub const ZIPF_EXPONENT: f64 = 1.4;
pub const ZIPF_OFFSET: f64 = 30.0;
/// Users per parallel work unit: large enough to amortise the scratch, small enough to balance.
const USERS_PER_BLOCK: usize = 512;

/// A data-set shape to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Preset {
    /// 100,000 ratings, 943 users, 1,682 items, whole stars, `u.data` layout.
    #[serde(rename = "ml-100k")]
    Ml100k,
    /// 1,000,209 ratings, 6,040 users, 3,706 items, whole stars, `ratings.dat` layout.
    #[serde(rename = "ml-1m")]
    Ml1m,
    /// 25,000,095 ratings, 162,541 users, 59,047 items, half stars, `ratings.csv` layout.
    #[serde(rename = "ml-25m")]
    Ml25m,
}

/// How many ratings, users and items a preset has: `N`, `U`, `I`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shape {
    pub ratings: usize,
    pub users: usize,
    pub items: usize,
}

/// The values a rating can take: `min, min + step, ..., max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatingScale {
    pub min: f32,
    pub max: f32,
    pub step: f32,
}

impl RatingScale {
    /// The nearest value on the scale (ties away from zero), clamped to `[min, max]`.
    pub fn round(&self, x: f64) -> f32 {
        let (min, max, step) = (self.min as f64, self.max as f64, self.step as f64);
        let steps = ((x - min) / step).round();
        (min + steps * step).clamp(min, max) as f32
    }
}

impl Preset {
    /// Every preset, smallest first.
    pub const ALL: [Preset; 3] = [Preset::Ml100k, Preset::Ml1m, Preset::Ml25m];

    /// `ml-100k`, `ml-1m` or `ml-25m`.
    pub fn from_name(name: &str) -> Option<Preset> {
        match name {
            "ml-100k" => Some(Preset::Ml100k),
            "ml-1m" => Some(Preset::Ml1m),
            "ml-25m" => Some(Preset::Ml25m),
            _ => None,
        }
    }

    /// The name [`Preset::from_name`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Ml100k => "ml-100k",
            Preset::Ml1m => "ml-1m",
            Preset::Ml25m => "ml-25m",
        }
    }

    /// The real data set's `N`, `U` and `I`.
    pub fn shape(self) -> Shape {
        let (ratings, users, items) = match self {
            Preset::Ml100k => (100_000, 943, 1_682),
            Preset::Ml1m => (1_000_209, 6_040, 3_706),
            Preset::Ml25m => (25_000_095, 162_541, 59_047),
        };
        Shape {
            ratings,
            users,
            items,
        }
    }

    /// Whole stars 1..5, or half stars 0.5..5 for ML-25M.
    pub fn scale(self) -> RatingScale {
        match self {
            Preset::Ml100k | Preset::Ml1m => RatingScale {
                min: 1.0,
                max: 5.0,
                step: 1.0,
            },
            Preset::Ml25m => RatingScale {
                min: 0.5,
                max: 5.0,
                step: 0.5,
            },
        }
    }

    /// The names of the ratings file and the titles file this preset writes.
    pub fn file_names(self) -> (&'static str, &'static str) {
        match self {
            Preset::Ml100k => ("u.data", "u.item"),
            Preset::Ml1m => ("ratings.dat", "movies.dat"),
            Preset::Ml25m => ("ratings.csv", "movies.csv"),
        }
    }

    /// The real data set's first and last timestamp (Unix seconds).
    fn time_window(self) -> (i64, i64) {
        match self {
            Preset::Ml100k => (874_724_710, 893_286_638),
            Preset::Ml1m => (956_703_932, 1_046_454_590),
            Preset::Ml25m => (789_652_009, 1_574_327_703),
        }
    }

    /// Release years of the invented titles.
    fn years(self) -> (u32, u32) {
        match self {
            Preset::Ml100k => (1922, 1998),
            Preset::Ml1m => (1919, 2000),
            Preset::Ml25m => (1902, 2019),
        }
    }

    /// Mean gap between consecutive raw item ids beyond 1: the real ML-1M and ML-25M skip ids
    /// (3,706 movies up to id 3,952; 59,047 up to 209,171), which a loader must map densely.
    fn item_id_gap(self) -> f64 {
        match self {
            Preset::Ml100k => 0.0,
            Preset::Ml1m => 0.066,
            Preset::Ml25m => 2.54,
        }
    }

    /// Target mean rating: where the global offset `g` puts the sigmoid.
    fn mean_rating(self) -> f64 {
        match self {
            Preset::Ml100k | Preset::Ml1m => 3.55,
            Preset::Ml25m => 3.5,
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
    /// `K` of the planted model.
    pub factors: usize,
    /// `P`, `U x K`, row-major.
    pub user_factors: Vec<f32>,
    /// `Q`, `I x K`, row-major.
    pub item_factors: Vec<f32>,
    /// `g`, the global offset inside the sigmoid.
    pub global_logit: f32,
    /// `(lo, hi)` of the planted sigmoid range.
    pub y_range: (f32, f32),
    /// The scale the ratings were rounded to.
    pub scale: RatingScale,
}

impl Truth {
    /// The planted prediction `pred(u, i)` before noise and rounding, in f64 (summed in index
    /// order, so it is the same on every machine).
    pub fn predict(&self, user: u32, item: u32) -> f64 {
        let k = self.factors;
        let p = &self.user_factors[user as usize * k..][..k];
        let q = &self.item_factors[item as usize * k..][..k];
        let mut x = self.global_logit as f64;
        for j in 0..k {
            x += p[j] as f64 * q[j] as f64;
        }
        x += self.user_bias[user as usize] as f64 + self.item_bias[item as usize] as f64;
        let (lo, hi) = (self.y_range.0 as f64, self.y_range.1 as f64);
        lo + (hi - lo) / (1.0 + (-x).exp())
    }

    /// The planted model as the engine's parameters (with `y_range`): `g` folded into `bu`.
    pub fn to_params(&self) -> Params {
        Params {
            factors: self.factors,
            user_factors: self.user_factors.clone(),
            item_factors: self.item_factors.clone(),
            user_bias: self
                .user_bias
                .iter()
                .map(|&b| b + self.global_logit)
                .collect(),
            item_bias: self.item_bias.clone(),
        }
    }
}

/// A generated data set and the model it came from.
#[derive(Debug, Clone)]
pub struct Synthetic {
    pub dataset: Dataset,
    pub truth: Truth,
    pub preset: Preset,
    pub seed: u64,
}

/// Mean and standard deviation (population) of a tensor, for `truth.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TensorSummary {
    pub shape: [usize; 2],
    pub mean: f64,
    pub std: f64,
}

impl TensorSummary {
    fn of(values: &[f32], shape: [usize; 2]) -> TensorSummary {
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        TensorSummary {
            shape,
            mean,
            std: var.sqrt(),
        }
    }
}

/// The planted tensors, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct TensorSummaries {
    pub user_factors: TensorSummary,
    pub item_factors: TensorSummary,
    pub user_bias: TensorSummary,
    pub item_bias: TensorSummary,
}

/// What `truth.json` holds: the planted model summarised, the noise and the noise floor.
#[derive(Debug, Clone, Serialize)]
pub struct TruthSummary {
    pub preset: Preset,
    pub seed: u64,
    pub shape: Shape,
    /// The formula the ratings came from, for a reader of the file.
    pub model: &'static str,
    #[serde(rename = "K")]
    pub factors: usize,
    pub y_range: (f32, f32),
    pub global_logit: f32,
    pub rating_scale: RatingScale,
    pub noise_std: f32,
    /// MSE of `pred` (before noise and rounding) against the written ratings: about the best
    /// validation MSE a trainer can reach.
    pub noise_floor_mse: f64,
    /// Mean and standard deviation of the written ratings.
    pub rating_mean: f64,
    pub rating_std: f64,
    pub tensors: TensorSummaries,
    pub zipf_exponent: f64,
    pub zipf_offset: f64,
}

impl Synthetic {
    /// The summary written as `truth.json`.
    pub fn truth_summary(&self) -> TruthSummary {
        let truth = &self.truth;
        // The data set's own sizes, so a hand-made or trimmed data set is summarised truly.
        let shape = Shape {
            ratings: self.dataset.ratings.len(),
            users: self.dataset.users.len(),
            items: self.dataset.items.len(),
        };
        let ratings = &self.dataset.ratings.ratings;
        let n = ratings.len().max(1) as f64;
        let rating_mean = ratings.iter().map(|&r| r as f64).sum::<f64>() / n;
        let rating_var = ratings
            .iter()
            .map(|&r| (r as f64 - rating_mean).powi(2))
            .sum::<f64>()
            / n;
        let (u, i, k) = (shape.users, shape.items, truth.factors);
        TruthSummary {
            preset: self.preset,
            seed: self.seed,
            shape,
            model: "rating = round_to_scale(lo + (hi - lo) * sigmoid(global_logit + dot(P[u], Q[i]) + bu[u] + bi[i]) + Normal(0, noise_std))",
            factors: k,
            y_range: truth.y_range,
            global_logit: truth.global_logit,
            rating_scale: truth.scale,
            noise_std: truth.noise_std,
            noise_floor_mse: truth.noise_floor_mse,
            rating_mean,
            rating_std: rating_var.sqrt(),
            tensors: TensorSummaries {
                user_factors: TensorSummary::of(&truth.user_factors, [u, k]),
                item_factors: TensorSummary::of(&truth.item_factors, [i, k]),
                user_bias: TensorSummary::of(&truth.user_bias, [u, 1]),
                item_bias: TensorSummary::of(&truth.item_bias, [i, 1]),
            },
            zipf_exponent: ZIPF_EXPONENT,
            zipf_offset: ZIPF_OFFSET,
        }
    }
}

/// Generates `preset`'s data set in memory from `seed`. Same seed, same data.
///
/// Ratings are grouped by user (users in index order) and, within a user, in increasing
/// timestamp order.
pub fn generate(preset: Preset, seed: u64) -> Result<Synthetic, DataError> {
    generate_shaped(preset, preset.shape(), seed)
}

/// [`generate`] at another `N`, `U` and `I` than the preset's, everything else (rating scale,
/// titles, raw id gaps, time window) as the preset has it: what a test uses to check a large
/// preset's traits at a small size. Refused, like any preset, when the shape cannot give every user
/// [`MIN_RATINGS_PER_USER`] ratings and every item one.
pub fn generate_shaped(preset: Preset, shape: Shape, seed: u64) -> Result<Synthetic, DataError> {
    let (n, u_count, i_count) = (shape.ratings, shape.users, shape.items);
    let scale = preset.scale();
    let mut rng = seeded_rng(seed, RngStream::Synthetic);

    // The planted model, drawn in the fixed order P, Q, bu, bi.
    let mut normal = |std: f64, len: usize| -> Vec<f32> {
        (0..len)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                (z * std) as f32
            })
            .collect()
    };
    let user_factors = normal(FACTOR_STD, u_count * PLANTED_K);
    let item_factors = normal(FACTOR_STD, i_count * PLANTED_K);
    let user_bias = normal(USER_BIAS_STD, u_count);
    let item_bias = normal(ITEM_BIAS_STD, i_count);
    let (lo, hi) = PLANTED_Y_RANGE;
    let target = (preset.mean_rating() - lo as f64) / (hi - lo) as f64;
    let global_logit = (target / (1.0 - target)).ln() as f32;

    let item_raw_ids = invent_item_ids(&mut rng, i_count, preset.item_id_gap());
    let popularity = popularity_cdf(&mut rng, i_count);
    let counts = ratings_per_user(&mut rng, shape)?;

    // Every item goes to one user up front so that all I items occur. With the item order and the
    // user order shuffled, user at position p of `user_order` gets items
    // `item_order[p], item_order[p + U], ...`.
    let mut item_order: Vec<u32> = (0..i_count as u32).collect();
    item_order.shuffle(&mut rng);
    let mut user_order: Vec<u32> = (0..u_count as u32).collect();
    user_order.shuffle(&mut rng);
    let mut position_of_user = vec![0usize; u_count];
    for (p, &u) in user_order.iter().enumerate() {
        position_of_user[u as usize] = p;
    }

    let utf8 = preset == Preset::Ml25m;
    let titles = titles::invent_titles(&mut rng, i_count, preset.years(), utf8);
    let vocabulary = match preset {
        Preset::Ml100k => titles::GENRES_100K,
        Preset::Ml1m => titles::GENRES_1M,
        Preset::Ml25m => titles::GENRES_25M,
    };
    let genres: Vec<String> = (0..i_count)
        .map(|_| titles::invent_genres(&mut rng, vocabulary))
        .collect();
    let user_seed: u64 = rng.random();

    let truth = Truth {
        user_bias,
        item_bias,
        noise_std: NOISE_STD,
        noise_floor_mse: 0.0,
        factors: PLANTED_K,
        user_factors,
        item_factors,
        global_logit,
        y_range: PLANTED_Y_RANGE,
        scale,
    };

    let mut users = Vec::with_capacity(n);
    for (u, &count) in counts.iter().enumerate() {
        users.extend(std::iter::repeat_n(u as u32, count));
    }
    let mut items = vec![0u32; n];
    let mut ratings = vec![0f32; n];
    let mut timestamps = vec![0i64; n];

    // Cut the columns into per-block slices so that blocks fill their own rows in parallel.
    let mut blocks = Vec::with_capacity(u_count.div_ceil(USERS_PER_BLOCK));
    let (mut items_rest, mut ratings_rest, mut times_rest) =
        (&mut items[..], &mut ratings[..], &mut timestamps[..]);
    for first in (0..u_count).step_by(USERS_PER_BLOCK) {
        let last = (first + USERS_PER_BLOCK).min(u_count);
        let rows: usize = counts[first..last].iter().sum();
        let (block_items, rest) = items_rest.split_at_mut(rows);
        items_rest = rest;
        let (block_ratings, rest) = ratings_rest.split_at_mut(rows);
        ratings_rest = rest;
        let (block_times, rest) = times_rest.split_at_mut(rows);
        times_rest = rest;
        blocks.push(Block {
            users: first..last,
            items: block_items,
            ratings: block_ratings,
            timestamps: block_times,
        });
    }
    let context = UserContext {
        truth: &truth,
        counts: &counts,
        popularity: &popularity,
        item_order: &item_order,
        position_of_user: &position_of_user,
        time_window: preset.time_window(),
        user_seed,
    };
    let block_errors: Vec<f64> = blocks
        .into_par_iter()
        .map(|block| context.fill_block(block))
        .collect();
    let squared_error: f64 = block_errors.iter().sum();

    let truth = Truth {
        noise_floor_mse: squared_error / n as f64,
        ..truth
    };
    let dataset = Dataset {
        ratings: Ratings {
            users,
            items,
            ratings,
            timestamps: Some(timestamps),
        },
        users: IdMap::from_sorted((1..=u_count).map(|u| u.to_string()).collect()),
        items: IdMap::from_sorted(item_raw_ids.iter().map(|id| id.to_string()).collect()),
        titles: Some(titles),
        genres: Some(genres),
        source: format!("synthetic:{}:{seed}", preset.name()),
        skipped: Vec::new(),
    };
    Ok(Synthetic {
        dataset,
        truth,
        preset,
        seed,
    })
}

/// Ascending raw item ids starting at 1, each step 1 plus a gap of mean `mean_gap`.
fn invent_item_ids(rng: &mut ChaCha8Rng, count: usize, mean_gap: f64) -> Vec<u64> {
    let mut id = 0u64;
    (0..count)
        .map(|_| {
            let gap = if mean_gap > 0.0 {
                // Geometric with mean `mean_gap`: P(gap >= k) = q^k.
                let q = mean_gap / (1.0 + mean_gap);
                let uniform = 1.0 - rng.random::<f64>(); // in (0, 1]
                (uniform.ln() / q.ln()).floor() as u64
            } else {
                0
            };
            id += 1 + gap;
            id
        })
        .collect()
}

/// Cumulative Zipf-like popularity over item indices (the rank of each item is shuffled, so
/// popularity does not follow the id). Sampling is a binary search for a uniform draw.
fn popularity_cdf(rng: &mut ChaCha8Rng, items: usize) -> Vec<f64> {
    let mut rank: Vec<u32> = (0..items as u32).collect();
    rank.shuffle(rng);
    let mut total = 0.0;
    rank.iter()
        .map(|&r| {
            total += 1.0 / (r as f64 + 1.0 + ZIPF_OFFSET).powf(ZIPF_EXPONENT);
            total
        })
        .collect()
}

/// Ratings per user summing to exactly `N`: `MIN_RATINGS_PER_USER` each plus a log-normal share
/// of the rest, capped at `MAX_USER_SHARE_OF_ITEMS * I`, rounded by largest remainder.
fn ratings_per_user(rng: &mut ChaCha8Rng, shape: Shape) -> Result<Vec<usize>, DataError> {
    let Shape {
        ratings: n,
        users,
        items,
    } = shape;
    let cap = ((MAX_USER_SHARE_OF_ITEMS * items as f64) as usize).max(MIN_RATINGS_PER_USER);
    let extra_cap = (cap - MIN_RATINGS_PER_USER) as f64;
    let floor_total = MIN_RATINGS_PER_USER * users;
    if n < floor_total || n > cap * users || items.div_ceil(users) > MIN_RATINGS_PER_USER {
        return Err(DataError::Invalid(format!(
            "synthetic shape {n} ratings / {users} users / {items} items cannot give every user \
             {MIN_RATINGS_PER_USER}..{cap} ratings and every item one; choose another preset"
        )));
    }
    let weights: Vec<f64> = (0..users)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            (USER_ACTIVITY_SIGMA * z).exp()
        })
        .collect();
    let extra_total = (n - floor_total) as f64;
    // Water-filling: users whose share would pass the cap get the cap, the rest share what is
    // left in proportion to their weights.
    let mut capped = vec![false; users];
    let mut shares = vec![0.0f64; users];
    loop {
        let capped_count = capped.iter().filter(|&&c| c).count();
        let left = extra_total - capped_count as f64 * extra_cap;
        let free_weight: f64 = (0..users).filter(|&u| !capped[u]).map(|u| weights[u]).sum();
        let mut changed = false;
        for u in 0..users {
            if capped[u] {
                shares[u] = extra_cap;
            } else {
                shares[u] = left * weights[u] / free_weight;
                if shares[u] > extra_cap {
                    capped[u] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut extras: Vec<usize> = shares.iter().map(|&s| s.floor() as usize).collect();
    let remainder = n - floor_total - extras.iter().sum::<usize>();
    let mut by_fraction: Vec<usize> = (0..users).filter(|&u| extras[u] < cap).collect();
    by_fraction.sort_by(|&a, &b| {
        let fa = shares[a] - shares[a].floor();
        let fb = shares[b] - shares[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &u in by_fraction.iter().take(remainder) {
        extras[u] += 1;
    }
    Ok(extras
        .into_iter()
        .map(|e| (e + MIN_RATINGS_PER_USER).min(cap))
        .collect())
}

/// The rows of users `users`, as disjoint slices of the output columns.
struct Block<'a> {
    users: std::ops::Range<usize>,
    items: &'a mut [u32],
    ratings: &'a mut [f32],
    timestamps: &'a mut [i64],
}

/// What every user's generation reads.
struct UserContext<'a> {
    truth: &'a Truth,
    counts: &'a [usize],
    popularity: &'a [f64],
    item_order: &'a [u32],
    position_of_user: &'a [usize],
    time_window: (i64, i64),
    user_seed: u64,
}

impl UserContext<'_> {
    /// Fills one block's rows; returns the sum of squared differences between the planted
    /// prediction and the written rating (for the noise floor).
    fn fill_block(&self, block: Block<'_>) -> f64 {
        let items_total = self.popularity.len();
        let mut taken = vec![false; items_total];
        let mut offset_times: Vec<i64> = Vec::new();
        let mut start = 0;
        let mut squared_error = 0.0;
        for u in block.users {
            let count = self.counts[u];
            let rows = start..start + count;
            start += count;
            let mut rng = ChaCha8Rng::seed_from_u64(self.user_seed);
            rng.set_stream(u as u64);
            let items = &mut block.items[rows.clone()];
            self.choose_items(&mut rng, u, items, &mut taken);
            self.choose_times(
                &mut rng,
                &mut block.timestamps[rows.clone()],
                &mut offset_times,
            );
            for (slot, &item) in block.ratings[rows].iter_mut().zip(items.iter()) {
                let pred = self.truth.predict(u as u32, item);
                let z: f64 = StandardNormal.sample(&mut rng);
                let rating = self
                    .truth
                    .scale
                    .round(pred + self.truth.noise_std as f64 * z);
                *slot = rating;
                squared_error += (pred - rating as f64).powi(2);
            }
        }
        squared_error
    }

    /// Distinct items for user `u`: its items given up front, then draws by popularity. `taken`
    /// is all false on entry and on return.
    fn choose_items(&self, rng: &mut ChaCha8Rng, u: usize, items: &mut [u32], taken: &mut [bool]) {
        let users_total = self.position_of_user.len();
        let mut filled = 0;
        for &item in self
            .item_order
            .iter()
            .skip(self.position_of_user[u])
            .step_by(users_total)
        {
            items[filled] = item;
            taken[item as usize] = true;
            filled += 1;
        }
        let total = *self.popularity.last().expect("at least one item");
        let mut misses = 0;
        while filled < items.len() {
            let draw = rng.random::<f64>() * total;
            let mut item = self
                .popularity
                .partition_point(|&c| c <= draw)
                .min(taken.len() - 1);
            if taken[item] {
                misses += 1;
                // A heavy user can exhaust the popular head; after a run of repeats take the
                // next free item instead of drawing on and on.
                if misses < 64 {
                    continue;
                }
                while taken[item] {
                    item = (item + 1) % taken.len();
                }
            }
            misses = 0;
            taken[item] = true;
            items[filled] = item as u32;
            filled += 1;
        }
        for &item in items.iter() {
            taken[item as usize] = false;
        }
        // Rating order is time order; without a shuffle the given-up-front items would always
        // come first.
        items.shuffle(rng);
    }

    /// Strictly increasing timestamps inside the preset's window: a log-uniform activity span
    /// (an evening to the whole window) at a uniform start, rating times uniform inside it.
    fn choose_times(&self, rng: &mut ChaCha8Rng, times: &mut [i64], offsets: &mut Vec<i64>) {
        let (first, last) = self.time_window;
        let window = last - first;
        let count = times.len() as i64;
        let shortest = (3_600i64).max(30 * count).min(window);
        let log_span = rng.random_range((shortest as f64).ln()..=(window as f64).ln());
        let span = (log_span.exp() as i64).clamp(shortest, window);
        let begin = first + rng.random_range(0..=window - span);
        offsets.clear();
        offsets.extend((0..count).map(|_| rng.random_range(0..=span)));
        offsets.sort_unstable();
        let mut previous = i64::MIN;
        for (time, &offset) in times.iter_mut().zip(offsets.iter()) {
            *time = (begin + offset).max(previous + 1);
            previous = *time;
        }
    }
}

impl Synthetic {
    /// Writes the preset's files (ratings, titles) and `truth.json` into `dir`, creating it.
    /// Each file is written to a temporary name and renamed, so none is ever half-written.
    pub fn write_to(&self, dir: &std::path::Path) -> Result<WrittenFiles, DataError> {
        write::write_preset(self, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_scale_rounds_to_the_nearest_step_and_clamps() {
        let whole = Preset::Ml100k.scale();
        let rounded: Vec<f32> = [3.26, 3.5, 3.76, -0.4, 0.9, 5.9, 4.49]
            .iter()
            .map(|&x| whole.round(x))
            .collect();
        assert_eq!(rounded, [3.0, 4.0, 4.0, 1.0, 1.0, 5.0, 4.0]);
        let half = Preset::Ml25m.scale();
        let rounded: Vec<f32> = [3.24, 3.26, 0.1, 0.74, 5.3, 4.75]
            .iter()
            .map(|&x| half.round(x))
            .collect();
        assert_eq!(rounded, [3.0, 3.5, 0.5, 0.5, 5.0, 5.0]);
    }

    #[test]
    fn ratings_per_user_sum_to_n_within_the_floor_and_the_cap() {
        for preset in Preset::ALL {
            let shape = preset.shape();
            let mut rng = seeded_rng(11, RngStream::Synthetic);
            let counts = ratings_per_user(&mut rng, shape).unwrap();
            let cap = (MAX_USER_SHARE_OF_ITEMS * shape.items as f64) as usize;
            assert_eq!(counts.len(), shape.users);
            assert_eq!(counts.iter().sum::<usize>(), shape.ratings, "{preset:?}");
            assert!(
                counts
                    .iter()
                    .all(|&c| (MIN_RATINGS_PER_USER..=cap).contains(&c))
            );
            // Heavy-tailed activity: the busiest user rates far more than the median one.
            let mut sorted = counts.clone();
            sorted.sort_unstable();
            assert!(
                sorted[sorted.len() - 1] > 5 * sorted[sorted.len() / 2],
                "{preset:?}"
            );
        }
    }

    #[test]
    fn impossible_shapes_are_refused() {
        let mut rng = seeded_rng(1, RngStream::Synthetic);
        let too_few = Shape {
            ratings: 19 * 10,
            users: 10,
            items: 100,
        };
        let message = ratings_per_user(&mut rng, too_few).unwrap_err().to_string();
        assert!(message.contains("cannot give every user"), "{message}");
        let too_many = Shape {
            ratings: 10 * 100,
            users: 10,
            items: 100,
        };
        assert!(ratings_per_user(&mut rng, too_many).is_err());
    }

    #[test]
    fn item_ids_ascend_from_one_with_the_requested_gaps() {
        let mut rng = seeded_rng(2, RngStream::Synthetic);
        let ids = invent_item_ids(&mut rng, 10_000, 2.54);
        assert!(ids[0] >= 1);
        assert!(ids.windows(2).all(|w| w[1] > w[0]));
        let mean_step = (ids[9_999] - ids[0]) as f64 / 9_999.0;
        assert!((mean_step - 3.54).abs() < 0.15, "mean step {mean_step}");
        let contiguous = invent_item_ids(&mut rng, 5, 0.0);
        assert_eq!(contiguous, [1, 2, 3, 4, 5]);
    }
}
