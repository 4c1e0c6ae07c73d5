//! Experiment: the default recipe on a synthetic preset, against the planted noise floor, with
//! the validation error broken down by how often the item was seen in training.

#[path = "../tests/support/correlation.rs"]
mod correlation;

use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::data::synth::{Preset, generate};
use collabgpu::train::{self, TrainConfig};
use correlation::correlation;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = Preset::from_name(args.get(1).map(String::as_str).unwrap_or("ml-100k")).unwrap();
    let data_seed: u64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(42);
    let run_seed: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(1);
    let synthetic = generate(preset, data_seed).unwrap();
    let (dataset, truth) = (&synthetic.dataset, &synthetic.truth);
    let mut hist = [0usize; 10];
    for &r in &dataset.ratings.ratings {
        hist[(r * 2.0) as usize - 1] += 1;
    }
    let config = TrainConfig {
        seed: run_seed,
        ..TrainConfig::default()
    };
    let (train_set, valid_set) =
        split(&dataset.ratings, SplitKind::Random, 0.2, config.seed).unwrap();
    let state = train::initial_state(&config, dataset.users.len(), dataset.items.len());
    let mut backend = CpuBackend::new(2).unwrap();
    let report = train::train(
        &mut backend,
        &config,
        &state,
        &train_set,
        &valid_set,
        &mut |_| {},
    )
    .unwrap();
    let valid = report.final_valid_loss().unwrap();
    let params = &report.state.params;
    let mut counts = vec![0usize; dataset.items.len()];
    for &i in &train_set.items {
        counts[i as usize] += 1;
    }
    let mut ucounts = vec![0usize; dataset.users.len()];
    for &u in &train_set.users {
        ucounts[u as usize] += 1;
    }
    let buckets = [0usize, 1, 5, 20, 50, 100, 200, usize::MAX];
    let mut floor_b = vec![0.0; buckets.len()];
    let mut model_b = vec![0.0; buckets.len()];
    let mut n_b = vec![0usize; buckets.len()];
    let (mut floor, mut sig) = (0.0, 0.0);
    let mean_pred: f64 = (0..valid_set.len())
        .map(|n| truth.predict(valid_set.users[n], valid_set.items[n]))
        .sum::<f64>()
        / valid_set.len() as f64;
    for n in 0..valid_set.len() {
        let (u, i, r) = (
            valid_set.users[n],
            valid_set.items[n],
            valid_set.ratings[n] as f64,
        );
        let t = truth.predict(u, i);
        let m = params.predict(u, i, config.y_range) as f64;
        let b = buckets
            .iter()
            .position(|&c| counts[i as usize] <= c)
            .unwrap();
        floor_b[b] += (t - r).powi(2);
        model_b[b] += (m - r).powi(2);
        n_b[b] += 1;
        floor += (t - r).powi(2);
        sig += (t - mean_pred).powi(2);
    }
    let nv = valid_set.len() as f64;
    floor /= nv;
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let mut us = ucounts.clone();
    us.sort_unstable();
    println!(
        "{} data {data_seed} run {run_seed}: valid {valid:.4} floor {floor:.4} ratio {:.3} (truth floor {:.4}); planted signal var {:.4}; hist {:?}; item train counts min/median/max {}/{}/{}; user min/median/max {}/{}/{}",
        preset.name(),
        valid / floor,
        truth.noise_floor_mse,
        sig / nv,
        &hist,
        sorted[0],
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        us[0],
        us[us.len() / 2],
        us[us.len() - 1]
    );
    for b in 0..buckets.len() {
        if n_b[b] > 0 {
            println!(
                "  item train count <= {:>20}: {:>6} valid ratings, floor {:.4}, model {:.4}, excess share {:.3}",
                buckets[b],
                n_b[b],
                floor_b[b] / n_b[b] as f64,
                model_b[b] / n_b[b] as f64,
                (model_b[b] - floor_b[b]) / nv / (valid - floor)
            );
        }
    }
    // The best any predictor can do: E[rating | u, i] under the planted model, noise and rounding.
    let scale = truth.scale;
    let sd = truth.noise_std as f64;
    let bayes = |t: f64| -> f64 {
        let steps = ((scale.max - scale.min) / scale.step).round() as usize;
        let mut e = 0.0;
        for k in 0..=steps {
            let v = scale.min as f64 + k as f64 * scale.step as f64;
            let lo = if k == 0 {
                f64::NEG_INFINITY
            } else {
                v - scale.step as f64 / 2.0
            };
            let hi = if k == steps {
                f64::INFINITY
            } else {
                v + scale.step as f64 / 2.0
            };
            e += v * (phi((hi - t) / sd) - phi((lo - t) / sd));
        }
        e
    };
    let bayes_mse = (0..valid_set.len())
        .map(|n| {
            (bayes(truth.predict(valid_set.users[n], valid_set.items[n]))
                - valid_set.ratings[n] as f64)
                .powi(2)
        })
        .sum::<f64>()
        / nv;
    let rmean = dataset
        .ratings
        .ratings
        .iter()
        .map(|&r| r as f64)
        .sum::<f64>()
        / dataset.ratings.len() as f64;
    let rvar = dataset
        .ratings
        .ratings
        .iter()
        .map(|&r| (r as f64 - rmean).powi(2))
        .sum::<f64>()
        / dataset.ratings.len() as f64;
    let rated: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] >= 20).collect();
    let pick = |b: &[f32]| rated.iter().map(|&i| b[i]).collect::<Vec<f32>>();
    println!(
        "  E[r|u,i] MSE {bayes_mse:.4} (ratio of model to it {:.3}); rating mean {rmean:.3} variance {rvar:.4}; bias corr users {:.3}, {} items {:.3}",
        valid / bayes_mse,
        correlation(&params.user_bias, &truth.user_bias),
        rated.len(),
        correlation(&pick(&params.item_bias), &pick(&truth.item_bias))
    );
}

/// Standard normal CDF (Abramowitz and Stegun 7.1.26, error under 1.5e-7).
fn phi(x: f64) -> f64 {
    if x == f64::INFINITY {
        return 1.0;
    }
    if x == f64::NEG_INFINITY {
        return 0.0;
    }
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let erf = 1.0
        - t * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
            * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}
