//! The model's parameters (SPEC "Model"): `P` (`U x K`), `Q` (`I x K`), `bu` (`U`), `bi` (`I`),
//! their seeded initialisation on the host, and the prediction.

use rand_distr::{Distribution, StandardNormal};

use crate::rng::{RngStream, seeded_rng};

/// The four parameter tensors, row-major, f32. Optimiser moments reuse this shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// `K`, the number of latent factors.
    pub factors: usize,
    /// `P`, `U x K`.
    pub user_factors: Vec<f32>,
    /// `Q`, `I x K`.
    pub item_factors: Vec<f32>,
    /// `bu`, `U`.
    pub user_bias: Vec<f32>,
    /// `bi`, `I`.
    pub item_bias: Vec<f32>,
}

impl Params {
    /// All-zero parameters of the given shape (also the starting optimiser moments).
    pub fn zeros(users: usize, items: usize, factors: usize) -> Params {
        Params {
            factors,
            user_factors: vec![0.0; users * factors],
            item_factors: vec![0.0; items * factors],
            user_bias: vec![0.0; users],
            item_bias: vec![0.0; items],
        }
    }

    /// SPEC "Initialisation": every entry is `fmod(z, 2) * init_std` for a standard normal `z`,
    /// drawn from the seed's init stream in the order `P`, `Q`, `bu`, `bi` (row-major).
    pub fn init(users: usize, items: usize, factors: usize, init_std: f32, seed: u64) -> Params {
        let mut rng = seeded_rng(seed, RngStream::Init);
        let mut params = Params::zeros(users, items, factors);
        for tensor in params.tensors_mut() {
            for value in tensor.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *value = ((z % 2.0) * init_std as f64) as f32;
            }
        }
        params
    }

    pub fn users(&self) -> usize {
        self.user_bias.len()
    }

    pub fn items(&self) -> usize {
        self.item_bias.len()
    }

    /// The tensors in their fixed order `P`, `Q`, `bu`, `bi`.
    pub fn tensors(&self) -> [&[f32]; 4] {
        [
            &self.user_factors,
            &self.item_factors,
            &self.user_bias,
            &self.item_bias,
        ]
    }

    /// The tensors in their fixed order `P`, `Q`, `bu`, `bi`, mutable.
    pub fn tensors_mut(&mut self) -> [&mut Vec<f32>; 4] {
        [
            &mut self.user_factors,
            &mut self.item_factors,
            &mut self.user_bias,
            &mut self.item_bias,
        ]
    }

    /// The tensor names used in model files and test messages, in [`Params::tensors`] order.
    pub const TENSOR_NAMES: [&'static str; 4] =
        ["user_factors", "item_factors", "user_bias", "item_bias"];

    /// `x(u, i) = dot(P[u], Q[i]) + bu[u] + bi[i]`, summed in index order.
    pub fn raw_score(&self, user: u32, item: u32) -> f32 {
        let k = self.factors;
        let p = &self.user_factors[user as usize * k..][..k];
        let q = &self.item_factors[item as usize * k..][..k];
        let mut x = 0.0f32;
        for j in 0..k {
            x += p[j] * q[j];
        }
        // The biases are added together first, as the training kernels (`bias_add`) do, so that a
        // prediction is bit for bit the score training and evaluation computed.
        x + (self.user_bias[user as usize] + self.item_bias[item as usize])
    }

    /// `pred(u, i)`: the raw score through the sigmoid range when there is one.
    pub fn predict(&self, user: u32, item: u32, y_range: Option<(f32, f32)>) -> f32 {
        apply_y_range(self.raw_score(user, item), y_range)
    }
}

/// `lo + (hi - lo) * sigmoid(x)`, or `x` itself without a y-range.
#[inline]
pub fn apply_y_range(x: f32, y_range: Option<(f32, f32)>) -> f32 {
    match y_range {
        Some((lo, hi)) => lo + (hi - lo) * sigmoid(x),
        None => x,
    }
}

/// The logistic function, written once so both backends agree on its form.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
