//! The default recipe on the real MovieLens 100K reaches fastai's quality (SPEC "The default
//! recipe": fastai reports 0.8217-0.8231; issue 3 asks for an average of at most 0.830). Skips with
//! the reason printed without the data, fails instead under `COLLABGPU_REQUIRE_DATA=1`.

#[path = "support/prerequisite.rs"]
mod prerequisite;

use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::data::{self, LoadOptions};
use collabgpu::train::{self, TrainConfig};

#[test]
fn default_recipe_on_ml100k_matches_fastai() {
    let Some(dir) = prerequisite::ml100k_dir() else {
        return;
    };
    let dataset = data::load(&dir.to_string_lossy(), &LoadOptions::default()).unwrap();
    let config = TrainConfig {
        seed: 1,
        ..TrainConfig::default()
    };
    let (train_set, valid_set) =
        split(&dataset.ratings, SplitKind::Random, 0.2, config.seed).unwrap();
    assert_eq!((train_set.len(), valid_set.len()), (80_000, 20_000));
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
    eprintln!("ML-100K default recipe, seed 1: valid MSE {valid:.4}");
    assert!(
        valid <= 0.830,
        "valid MSE {valid} is worse than fastai's 0.82"
    );
    assert!(
        valid >= 0.70,
        "valid MSE {valid} is implausibly good: is validation leaking?"
    );
    let train_losses: Vec<f64> = report.epochs.iter().map(|e| e.train_loss).collect();
    assert!(
        train_losses.windows(2).all(|w| w[1] < w[0]),
        "{train_losses:?}"
    );
}
