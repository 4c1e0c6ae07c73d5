//! Training on the real MovieLens 100K: the default recipe reaches fastai's quality (SPEC "The
//! default recipe": fastai reports 0.8217-0.8231; issue 3 asks for an average of at most 0.830),
//! and the scale optimisers, with the flags BENCHMARKS.md ("The scale optimisers on ML-100K")
//! chose for them, land within 0.01 of the default recipe's validation MSE on the same split
//! (issue 11). Skips with the reason printed without the data, fails instead under
//! `COLLABGPU_REQUIRE_DATA=1`.

#[path = "support/prerequisite.rs"]
mod prerequisite;

use std::path::Path;
use std::sync::OnceLock;

use collabgpu::cpu::CpuBackend;
use collabgpu::data::split::{SplitKind, split};
use collabgpu::data::{self, LoadOptions};
use collabgpu::train::{self, OptimizerKind, TrainConfig, TrainReport};

/// The seed of every run here: one split, compared across optimisers.
const SEED: u64 = 1;

/// How far above the default recipe's validation MSE a tuned scale optimiser may land (issue 11).
const MARGIN: f64 = 0.01;

/// Trains `config` on ML-100K's default 80/20 random split of `config.seed`, on 2 CPU threads.
fn train_ml100k(dir: &Path, config: &TrainConfig) -> TrainReport {
    let dataset = data::load(&dir.to_string_lossy(), &LoadOptions::default()).unwrap();
    let (train_set, valid_set) =
        split(&dataset.ratings, SplitKind::Random, 0.2, config.seed).unwrap();
    assert_eq!((train_set.len(), valid_set.len()), (80_000, 20_000));
    let state = train::initial_state(config, dataset.users.len(), dataset.items.len());
    let mut backend = CpuBackend::new(2).unwrap();
    train::train(
        &mut backend,
        config,
        &state,
        &train_set,
        &valid_set,
        &mut |_| {},
    )
    .unwrap()
}

/// The default recipe's run on [`SEED`], trained once for every test of this file that needs it.
fn default_recipe_report(dir: &Path) -> &'static TrainReport {
    static REPORT: OnceLock<TrainReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        let config = TrainConfig {
            seed: SEED,
            ..TrainConfig::default()
        };
        train_ml100k(dir, &config)
    })
}

#[test]
fn default_recipe_on_ml100k_matches_fastai() {
    let Some(dir) = prerequisite::ml100k_dir() else {
        return;
    };
    let report = default_recipe_report(&dir);
    let valid = report.final_valid_loss().unwrap();
    eprintln!("ML-100K default recipe, seed {SEED}: valid MSE {valid:.4}");
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

/// Trains `tuned` (`flags` on the command line) and checks it against the default recipe on the
/// same split: at most [`MARGIN`] above it, and not implausibly good.
fn assert_within_margin_of_default_recipe(flags: &str, tuned: TrainConfig) {
    let Some(dir) = prerequisite::ml100k_dir() else {
        return;
    };
    let default = default_recipe_report(&dir).final_valid_loss().unwrap();
    let valid = train_ml100k(&dir, &tuned).final_valid_loss().unwrap();
    eprintln!("ML-100K seed {SEED}: `{flags}` valid MSE {valid:.4}, default recipe {default:.4}");
    assert!(
        valid <= default + MARGIN,
        "`{flags}`: valid MSE {valid} is more than {MARGIN} above the default recipe's {default}"
    );
    assert!(
        valid >= 0.70,
        "`{flags}`: valid MSE {valid} is implausibly good: is validation leaking?"
    );
}

#[test]
fn tuned_rowwise_adagrad_on_ml100k_is_within_0_01_of_the_default_recipe() {
    // Adagrad's lr is a step in parameter units: the default 5e-3 leaves the model near the
    // global mean (valid MSE 1.18 after 5 epochs), 0.1 under one-cycle learns, and twice the
    // epochs let the schedule's tail settle; wd does nothing for it, so --l2 regularises.
    assert_within_margin_of_default_recipe(
        "--optimizer rowwise-adagrad --lr 0.1 --l2 0.075 --epochs 10",
        TrainConfig {
            optimizer: OptimizerKind::RowwiseAdagrad,
            lr: 0.1,
            l2: 0.075,
            epochs: 10,
            seed: SEED,
            ..TrainConfig::default()
        },
    );
}

#[test]
fn tuned_sparse_adam_on_ml100k_is_within_0_01_of_the_default_recipe() {
    // A row decays only in the batches it occurs in, so --wd regularises far less than dense
    // adamw's; --l2 takes its place, which lets the lr double.
    assert_within_margin_of_default_recipe(
        "--optimizer sparse-adam --lr 1e-2 --l2 0.075 --wd 0",
        TrainConfig {
            optimizer: OptimizerKind::SparseAdam,
            lr: 1e-2,
            l2: 0.075,
            wd: 0.0,
            seed: SEED,
            ..TrainConfig::default()
        },
    );
}
