//! The validated training configuration. The library takes only this type; the CLI builds it.

use serde::{Deserialize, Serialize};

use super::TrainError;

/// The largest `K` a run accepts: beyond any use of a dot-product model (fastai uses 50), and it
/// keeps `(U + I) K` and `B K` far from overflowing before the memory estimate looks at them.
pub const MAX_FACTORS: usize = 65_536;

/// The most epochs a run accepts; the epoch loop keeps a report per epoch.
pub const MAX_EPOCHS: usize = 1_000_000;

/// The largest `B` a run accepts (16 Mi ratings: 256 times the ml-25m preset's).
pub const MAX_BATCH_SIZE: usize = 1 << 24;

/// SPEC "Optimisers" and "Scale". Serialised under the CLI's names (`adamw`, `sgd`,
/// `rowwise-adagrad`, `sparse-adam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// fastai's Adam with decoupled weight decay; dense: every parameter steps after every batch.
    #[serde(rename = "adamw")]
    AdamW,
    /// Sparse SGD: only rows in the batch move, with lazy weight decay.
    Sgd,
    /// Sparse, one adaptive-rate accumulator per row (LibMF's, TorchRec's exact row-wise Adagrad).
    RowwiseAdagrad,
    /// Lazy Adam (PyTorch's SparseAdam): only rows in the batch update their moments and move.
    SparseAdam,
}

impl OptimizerKind {
    /// The CLI's (and the files') name.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::RowwiseAdagrad => "rowwise-adagrad",
            OptimizerKind::SparseAdam => "sparse-adam",
        }
    }

    /// Whether only the rows of a batch move (every optimiser but `adamw`).
    pub fn is_sparse(self) -> bool {
        self != OptimizerKind::AdamW
    }

    /// Whether the state carries Adam's moments `m` and `v` (one per parameter).
    pub fn has_moments(self) -> bool {
        matches!(self, OptimizerKind::AdamW | OptimizerKind::SparseAdam)
    }

    /// Whether the state carries one accumulator per row (`rowwise-adagrad`).
    pub fn has_row_sums(self) -> bool {
        self == OptimizerKind::RowwiseAdagrad
    }
}

/// SPEC "Schedules". Serialised under the CLI's names (`one-cycle`, `constant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    OneCycle,
    Constant,
}

/// SPEC "Batches" and "Scale": the order in which an epoch visits the training ratings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchOrder {
    /// One permutation of all training ratings per epoch (SPEC "Batches").
    #[default]
    Random,
    /// Block by block over a grid of user and item ranges ([`super::batches::block_epoch`]).
    Blocks,
}

/// Everything that decides which model a run trains. Defaults are SPEC's default recipe.
///
/// Model files and checkpoints store it as JSON with these field names; a field missing there
/// (from an older file) takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// `K`.
    pub factors: usize,
    pub epochs: usize,
    /// `lr_max` for one-cycle, `lr` for constant.
    pub lr: f32,
    pub wd: f32,
    /// `B`.
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub schedule: ScheduleKind,
    /// `(lo, hi)` of the sigmoid range; `None` predicts the raw score.
    pub y_range: Option<(f32, f32)>,
    pub init_std: f32,
    pub seed: u64,
    pub beta2: f32,
    pub eps: f32,
    /// Drop the last, short batch of every epoch (fastai's default for training).
    pub drop_last: bool,
    /// `--order`: random (SPEC "Batches") or blocks (SPEC "Scale").
    pub order: BatchOrder,
    /// `λ` of SPEC's L2 per occurrence (`--l2`), for every optimiser; 0 turns it off.
    pub l2: f32,
    /// `--early-stop N`: stop once the validation loss has not improved for `N` epochs and keep
    /// the best epoch's parameters; 0 trains every epoch and keeps the last.
    pub early_stop: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            factors: 50,
            epochs: 5,
            lr: 5e-3,
            wd: 0.1,
            batch_size: 64,
            optimizer: OptimizerKind::AdamW,
            schedule: ScheduleKind::OneCycle,
            y_range: Some((0.0, 5.5)),
            init_std: 0.01,
            seed: 42,
            beta2: 0.99,
            eps: 1e-5,
            drop_last: true,
            l2: 0.0,
            order: BatchOrder::Random,
            early_stop: 0,
        }
    }
}

/// The largest `|LO|` and `|HI|` of `--y-range` (and of a loaded model's y-range): far beyond any
/// rating scale, and small enough that `HI - LO` and the predictions stay finite.
pub const Y_RANGE_LIMIT: f32 = 1e6;

impl TrainConfig {
    /// The configuration as a JSON value whose floats keep their shortest f32 form (`0.005`);
    /// `serde_json::to_value` would widen them to f64 first (`0.004999999888241291`).
    pub fn to_json(&self) -> serde_json::Value {
        let text = serde_json::to_string(self).expect("plain data always serialises");
        serde_json::from_str(&text).expect("serde_json reads what it wrote")
    }

    /// Checks every field, so that backends can trust the configuration they are given.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |message: String| Err(TrainError::Config(message));
        if !(1..=MAX_FACTORS).contains(&self.factors) {
            return bad(format!(
                "--factors must lie in 1..={MAX_FACTORS}, got {} (fastai uses 50)",
                self.factors
            ));
        }
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(format!(
                "--epochs must lie in 1..={MAX_EPOCHS}, got {}",
                self.epochs
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return bad(format!(
                "--bs must lie in 1..={MAX_BATCH_SIZE}, got {}",
                self.batch_size
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be a positive number, got {}", self.lr));
        }
        if !(self.wd.is_finite() && self.wd >= 0.0) {
            return bad(format!("--wd must be zero or positive, got {}", self.wd));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad(format!("--l2 must be zero or positive, got {}", self.l2));
        }
        if self.order == BatchOrder::Blocks && self.epochs >= 1 << 20 {
            return bad(format!(
                "--order blocks allows fewer than 2^20 epochs, got {}",
                self.epochs
            ));
        }
        if self.early_stop > MAX_EPOCHS {
            return bad(format!(
                "--early-stop must be at most {MAX_EPOCHS} epochs, got {}",
                self.early_stop
            ));
        }
        if !(self.init_std.is_finite() && self.init_std >= 0.0) {
            return bad(format!(
                "--init-std must be zero or positive, got {}",
                self.init_std
            ));
        }
        if let Some((lo, hi)) = self.y_range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return bad(format!(
                "--y-range needs LO < HI, got {lo},{hi} (e.g. --y-range 0,5.5)"
            ));
        }
        if let Some((lo, hi)) = self.y_range
            && (lo.abs() > Y_RANGE_LIMIT || hi.abs() > Y_RANGE_LIMIT)
        {
            return bad(format!(
                "--y-range {lo},{hi} is beyond +-{Y_RANGE_LIMIT:e}, where HI - LO and the \
                 predictions overflow; use the range of your ratings (e.g. --y-range 0,5.5)"
            ));
        }
        if !(self.beta2 > 0.0 && self.beta2 < 1.0) {
            return bad(format!("beta2 must lie in (0, 1), got {}", self.beta2));
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return bad(format!("eps must be positive, got {}", self.eps));
        }
        Ok(())
    }
}
