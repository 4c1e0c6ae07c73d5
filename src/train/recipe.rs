//! Named recipes: whole training configurations that are known to work for a kind of data, with
//! the reasons for their numbers. `bench --preset` takes them; they are library knowledge, not
//! command-line knowledge.

use super::{OptimizerKind, ScheduleKind, TrainConfig};

/// A named configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// SPEC's default recipe, fastai's chapter 8 on ML-100K: adamw, one-cycle, lr 5e-3, wd 0.1,
    /// K = 50, B = 64, 5 epochs ([`TrainConfig::default`]).
    Fastai,
    /// Sparse sgd at scale: constant lr [`ML_25M_LR`], wd 0, K = 64, B = [`ML_25M_BATCH`], 1
    /// epoch. It measures speed on the ML-25M shape; it is not tuned to learn well.
    Ml25m,
}

/// The `ml-25m` recipe's batch size. Sparse sgd touches only the rows of a batch, so a big batch
/// costs no more work per rating; what it buys is fewer batches (382 per ML-25M epoch), hence
/// fewer dispatches and step records, which is what bounds a GPU epoch. 65536 still leaves every
/// item about once per batch on average (I = 59,047), so the lazy updates stay frequent.
pub const ML_25M_BATCH: usize = 65_536;

/// The `ml-25m` recipe's learning rate. The loss is the batch *mean*, so a row's gradient scales
/// like `1/B`; sgd at B = 65536 needs an lr of that order times the per-rating step it means.
/// Popular items occur hundreds of times in one batch and their contributions add up before the
/// step, so the per-rating step must be small: lr 200 (0.003 per rating) reaches valid MSE 0.952
/// after one epoch on the synthetic ML-25M shape, where lr 2000 overshoots and stays at 2.95
/// (measured with `train --data synthetic:ml-25m --optimizer sgd --schedule constant --factors 64
/// --bs 65536 --wd 0 --epochs 1`).
pub const ML_25M_LR: f32 = 200.0;

impl Recipe {
    /// The recipe's configuration.
    pub fn config(self) -> TrainConfig {
        match self {
            Recipe::Fastai => TrainConfig::default(),
            Recipe::Ml25m => TrainConfig {
                factors: 64,
                epochs: 1,
                lr: ML_25M_LR,
                wd: 0.0,
                batch_size: ML_25M_BATCH,
                optimizer: OptimizerKind::Sgd,
                schedule: ScheduleKind::Constant,
                ..TrainConfig::default()
            },
        }
    }

    /// The synthetic data set (`--data` form) of the shape the recipe is meant for.
    pub fn synthetic_data(self) -> &'static str {
        match self {
            Recipe::Fastai => "synthetic:ml-100k",
            Recipe::Ml25m => "synthetic:ml-25m",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_hold_their_configurations() {
        assert_eq!(Recipe::Fastai.config(), TrainConfig::default());
        let large = Recipe::Ml25m.config();
        assert_eq!(large.factors, 64);
        assert_eq!(large.batch_size, ML_25M_BATCH);
        assert_eq!(large.optimizer, OptimizerKind::Sgd);
        assert_eq!(large.schedule, ScheduleKind::Constant);
        large.validate().unwrap();
    }
}
