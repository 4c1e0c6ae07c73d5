//! Learning for real on the synthetic presets (a planted DotProductBias model plus noise, from
//! `data::synth`): the default recipe's validation MSE approaches the noise floor and the learned
//! biases correlate with the planted ones.
//!
//! Issue 3 asks for "within 10% of the noise floor". What stands in the way on ML-100K's shape is
//! the recipe, not the generator: on pure noise (every planted parameter zero, so nothing to learn)
//! the default recipe still ends 1.116-1.135x above the floor (noise std 0.7-1.0) (`default_recipe_overfits_pure_noise_
//! on_the_ml100k_shape` below): K = 50 factors for 943 + 1,682 rows is 134k parameters for 80k
//! training ratings, and wd = 0.1 over 5 epochs does not hold them all back. The first calibration
//! (noise std 0.7, factor std 0.55) added a large factor signal on top that the recipe could not
//! identify from ~50 training ratings per user and ended 1.27x above the floor (0.6473 vs 0.5100);
//! with the planted model calibrated to look like the real data (biases carry most of the signal,
//! factors a little, noise std 1.0: floor 0.915, where real ML-100K models reach about 0.82) it
//! ends at 1.108x. The flatter or steeper item popularity, the user activity spread and the global
//! offset made no measurable difference (`examples/synth_calibration.rs`). So on ML-100K this test
//! holds the recipe to 1.12x (measured 1.108) and the 10% criterion is checked on the ML-1M shape
//! (about 8x the ratings per user and per item, measured 1.056x), which takes about half a minute.
//! A denser hand-made planted set checks it too (`tests/train_cpu.rs`,
//! `learns_a_planted_model_down_to_the_noise_floor`).

#[path = "support/correlation.rs"]
mod correlation;

use collabgpu::cpu::CpuBackend;
use collabgpu::data::Ratings;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::data::synth::{NOISE_STD, Preset, generate};
use collabgpu::train::{self, TrainConfig};
use correlation::correlation;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// What one default-recipe run on planted data measured.
struct Outcome {
    /// Final validation MSE.
    valid: f64,
    /// The planted model's own MSE on the same validation ratings.
    floor: f64,
    /// Variance of the validation ratings: what predicting their mean would score.
    variance: f64,
    user_corr: f64,
    /// Correlation over the items with at least 20 training ratings (fewer cannot be estimated).
    item_corr: f64,
    rated_items: usize,
}

/// Trains the default recipe (run seed `run_seed`) on `ratings` and compares it with the
/// planted prediction `planted(u, i)` and the planted biases.
fn default_recipe_on(
    ratings: &Ratings,
    (users, items): (usize, usize),
    planted: &dyn Fn(u32, u32) -> f64,
    planted_bias: (&[f32], &[f32]),
    run_seed: u64,
) -> Outcome {
    let config = TrainConfig {
        seed: run_seed,
        ..TrainConfig::default()
    };
    let (train_set, valid_set) = split(ratings, SplitKind::Random, 0.2, config.seed).unwrap();
    let n_valid = valid_set.len() as f64;
    let floor = (0..valid_set.len())
        .map(|n| {
            (planted(valid_set.users[n], valid_set.items[n]) - valid_set.ratings[n] as f64).powi(2)
        })
        .sum::<f64>()
        / n_valid;
    let state = train::initial_state(&config, users, items);
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
    let mean = valid_set.ratings.iter().map(|&r| r as f64).sum::<f64>() / n_valid;
    let variance = valid_set
        .ratings
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / n_valid;
    let mut counts = vec![0usize; items];
    for &i in &train_set.items {
        counts[i as usize] += 1;
    }
    let rated: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] >= 20).collect();
    let pick = |bias: &[f32]| rated.iter().map(|&i| bias[i]).collect::<Vec<f32>>();
    let params = &report.state.params;
    Outcome {
        valid,
        floor,
        variance,
        user_corr: correlation(&params.user_bias, planted_bias.0),
        item_corr: correlation(&pick(&params.item_bias), &pick(planted_bias.1)),
        rated_items: rated.len(),
    }
}

/// The default recipe on `preset`'s synthetic data (seed `data_seed`), printed for the record.
fn default_recipe_on_preset(preset: Preset, data_seed: u64, run_seed: u64) -> Outcome {
    let synthetic = generate(preset, data_seed).unwrap();
    let (dataset, truth) = (&synthetic.dataset, &synthetic.truth);
    let outcome = default_recipe_on(
        &dataset.ratings,
        (dataset.users.len(), dataset.items.len()),
        &|u, i| truth.predict(u, i),
        (&truth.user_bias, &truth.item_bias),
        run_seed,
    );
    let Outcome {
        valid,
        floor,
        variance,
        user_corr,
        item_corr,
        rated_items,
    } = outcome;
    eprintln!(
        "synthetic {}: valid MSE {valid:.4}, noise floor {floor:.4} ({:.3}x; truth says {:.4}), \
         rating variance {variance:.4}, bias correlations: users {user_corr:.3}, \
         {rated_items} items with >= 20 ratings {item_corr:.3}",
        preset.name(),
        valid / floor,
        truth.noise_floor_mse,
    );
    outcome
}

/// Asserts what every preset must show besides the distance to the floor.
fn assert_learned(outcome: &Outcome) {
    let Outcome {
        valid,
        floor,
        variance,
        user_corr,
        item_corr,
        ..
    } = *outcome;
    // Most of what can be learned (the spread above the floor) is learned.
    assert!(
        variance - valid > 0.6 * (variance - floor),
        "valid MSE {valid} vs rating variance {variance} and floor {floor}"
    );
    assert!(user_corr > 0.85, "user bias correlation {user_corr}");
    assert!(item_corr > 0.85, "item bias correlation {item_corr}");
}

#[test]
fn default_recipe_learns_the_planted_ml100k_model() {
    let outcome = default_recipe_on_preset(Preset::Ml100k, 42, 1);
    let (valid, floor) = (outcome.valid, outcome.floor);
    // Measured 1.108x (1.0141 vs 0.9154); 1.10x is out of the recipe's reach on this shape, see
    // the header and the pure-noise test below.
    assert!(
        valid <= 1.12 * floor,
        "valid MSE {valid} is not within 12% of the floor {floor}"
    );
    assert_learned(&outcome);
}

/// About 30 s with the test profile on 2 busy cores (measured 1.056x, 0.9572 vs 0.9060; item bias
/// correlation 0.856). It runs in every `cargo test`: this is issue 3's 10% criterion.
#[test]
fn default_recipe_comes_within_10_percent_of_the_floor_on_the_ml1m_shape() {
    let outcome = default_recipe_on_preset(Preset::Ml1m, 42, 1);
    let (valid, floor) = (outcome.valid, outcome.floor);
    assert!(
        valid <= 1.10 * floor,
        "valid MSE {valid} is not within 10% of the floor {floor}"
    );
    assert_learned(&outcome);
}

/// Why 10% is out of reach on ML-100K's shape: with nothing planted but a constant and the noise,
/// the default recipe still fits noise in its 50 factors and ends more than 10% above the floor.
/// If the recipe or the trainer changes so that this fails, tighten the ML-100K test above.
#[test]
fn default_recipe_overfits_pure_noise_on_the_ml100k_shape() {
    let synthetic = generate(Preset::Ml100k, 42).unwrap();
    let dataset = &synthetic.dataset;
    let scale = synthetic.truth.scale;
    let constant = 3.55;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let noisy: Vec<f32> = (0..dataset.ratings.len())
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            scale.round(constant + NOISE_STD as f64 * z)
        })
        .collect();
    let ratings = Ratings {
        ratings: noisy,
        ..dataset.ratings.clone()
    };
    let (users, items) = (dataset.users.len(), dataset.items.len());
    let zeros = (vec![0.0; users], vec![0.0; items]);
    let outcome = default_recipe_on(
        &ratings,
        (users, items),
        &|_, _| constant,
        (&zeros.0, &zeros.1),
        1,
    );
    let (valid, floor) = (outcome.valid, outcome.floor);
    eprintln!(
        "pure noise on the ml-100k shape: valid MSE {valid:.4}, floor {floor:.4} ({:.3}x)",
        valid / floor
    );
    assert!(
        valid > 1.10 * floor,
        "the default recipe now gets within 10% of the floor on pure noise ({valid} vs {floor}): \
         tighten default_recipe_learns_the_planted_ml100k_model to 1.10x"
    );
    // Still a sane fit: it does not chase the noise without limit.
    assert!(valid < 1.3 * floor, "valid MSE {valid} vs floor {floor}");
}
