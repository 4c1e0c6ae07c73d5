//! Named recipes: whole training configurations that are known to work for a kind of data, with
//! the reasons for their numbers. `bench --preset` takes them; they are library knowledge, not
//! command-line knowledge.

use super::{BatchOrder, OptimizerKind, ScheduleKind, TrainConfig};

/// A named configuration: `train --recipe NAME` and `bench --preset NAME` start from it, and any
/// flag the user gives overrides the recipe's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// SPEC's default recipe, fastai's chapter 8 on ML-100K: adamw, one-cycle, lr 5e-3, wd 0.1,
    /// K = 50, B = 64, 5 epochs ([`TrainConfig::default`]).
    Fastai,
    /// The scale recipe, for ML-25M and any large data set: `rowwise-adagrad`, constant lr
    /// [`ML_25M_LR`], `--l2` [`ML_25M_L2`], wd 0, K = 64, B = [`ML_25M_BATCH`], `--order blocks`,
    /// at most 5 epochs with `--early-stop 1`.
    Ml25m,
}

/// The `ml-25m` recipe's batch size. The sparse optimisers touch only the rows of a batch, so a big
/// batch costs no more work per rating (less: a row that occurs several times in a batch is
/// updated once), and row-wise Adagrad's step does not depend on the gradient's scale, so the
/// `1/B` of the batch mean does not shrink it. Under `--order blocks` an ML-25M block holds about
/// 25,500 training ratings (S = 28), so B = 65,536 makes each block one batch: 21.5-22.3 M
/// ratings/s against 18.8-19.8 M at B = 16,384, and with lr 0.15 a better model, 1.0151x the
/// floor after 5 epochs against 1.0171x (synthetic ML-25M seed 42, 2 threads, quiet machine;
/// seeds 1 and 7 gave 1.0168x and 1.0166x; BENCHMARKS.md, "The ml-25m recipe against LibMF").
pub const ML_25M_BATCH: usize = 65_536;

/// The `ml-25m` recipe's learning rate: with row-wise Adagrad it is a step in parameter units, and
/// each row's step shrinks as its accumulator grows. With one batch per block a row steps once per
/// block it has ratings in, so the first steps may be larger: lr 0.1 gave 1.0193x the floor after
/// 5 epochs at B = 32,768, lr 0.15 1.0172x (B = 65,536: 1.0151x).
pub const ML_25M_LR: f32 = 0.15;

/// The `ml-25m` recipe's L2 per occurrence. K = 64 is sixteen times the planted model's rank, and
/// without a regulariser the training loss falls below the noise floor while the validation loss
/// rises; l2 0.05 overfitted by the third epoch (0.8721 -> 0.8730), l2 0.1 still improved there
/// (0.8729 -> 0.8716, 1.015x the floor of 0.8587).
pub const ML_25M_L2: f32 = 0.1;

impl Recipe {
    /// The recipe's configuration.
    pub fn config(self) -> TrainConfig {
        match self {
            Recipe::Fastai => TrainConfig::default(),
            Recipe::Ml25m => TrainConfig {
                factors: 64,
                epochs: 5,
                lr: ML_25M_LR,
                wd: 0.0,
                l2: ML_25M_L2,
                batch_size: ML_25M_BATCH,
                optimizer: OptimizerKind::RowwiseAdagrad,
                schedule: ScheduleKind::Constant,
                early_stop: 1,
                order: BatchOrder::Blocks,
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
        assert_eq!(large.optimizer, OptimizerKind::RowwiseAdagrad);
        assert_eq!((large.l2, large.wd, large.early_stop), (ML_25M_L2, 0.0, 1));
        assert!(large.epochs <= 5, "issue 11: at most 5 epochs");
        assert_eq!(large.order, BatchOrder::Blocks);
        assert_eq!(large.schedule, ScheduleKind::Constant);
        large.validate().unwrap();
    }
}
