//! Checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! A checkpoint is a safetensors file. Its tensors are the four parameter tensors under their model
//! file names (`user_factors`, `item_factors`, `user_bias`, `item_bias`) and, for `adamw` and
//! `sparse-adam`, Adam's moments as `adam_m.<name>` and `adam_v.<name>`; for `rowwise-adagrad`, the
//! accumulators as `adagrad.<name>` (one per row: `[U, 1]`, `[I, 1]`, `[U]`, `[I]`). Sparse Adam's
//! bias corrections use the global step, so no per-row step counts are needed. Its
//! `__metadata__` (JSON strings) holds:
//!
//! - `format`: [`FORMAT`];
//! - `config`: the [`TrainConfig`] (as in the model file);
//! - `position`: the next batch, `{"epoch", "batch", "loss_sum_bits"}` (the running sum of the
//!   epoch's batch losses as the bits of an f64, in hex, so it comes back exactly);
//! - `data`: the [`DataFingerprint`] of the data and split the run trained on.
//!
//! The optimiser's step count `t` and the random-number position are not stored separately: `t`
//! is the global step `epoch * batches_per_epoch + batch + 1`, and every epoch's permutation is
//! derived from `(seed, epoch)`, so the position and the configuration imply both.
//!
//! **What may change on resume.** Nothing that decides the model: every configuration field (K,
//! epochs, lr, wd, B, optimiser, schedule, y-range, init_std, seed, beta2, eps, drop_last) and the
//! data and split (U, I, N_train, N_valid, seed, a hash of the training and validation triples)
//! must match, because each changes the batches, the schedule or the parameters' shapes. What does
//! not decide the model may change: the backend (a CPU checkpoint resumes on a GPU and back), the
//! thread count, output files and flags such as `--json`, `--quiet` or `--checkpoint-every`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Contents, check_loaded, json_string, param_tensors, read_file, serialize, write_file};
use crate::data::DataFingerprint;
use crate::model::Params;
use crate::train::{AdamMoments, Position, TrainConfig, TrainState};

/// The `format` metadata value this version writes and reads.
pub const FORMAT: &str = "collabgpu-checkpoint-1";

/// A saved run: configuration, state, position and the data it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub config: TrainConfig,
    pub state: TrainState,
    /// The next batch to train.
    pub position: Position,
    pub data: DataFingerprint,
}

/// Errors from writing, reading or resuming from a checkpoint. Messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a collabgpu checkpoint ({message}); pass a file written by `collabgpu train --checkpoint`"
    )]
    Format { path: PathBuf, message: String },
    #[error(
        "{path} is damaged: {message}; train afresh without --resume, or restore the file from a copy"
    )]
    Damaged { path: PathBuf, message: String },
    #[error(
        "{path}: cannot resume: {message}. Resume with the data and flags of the run that wrote it, \
         or train afresh without --resume"
    )]
    Mismatch { path: PathBuf, message: String },
}

const MOMENT_PREFIXES: [&str; 2] = ["adam_m.", "adam_v."];

/// The prefix of `rowwise-adagrad`'s accumulators.
const ROW_SUMS_PREFIX: &str = "adagrad.";

impl Checkpoint {
    /// Writes the checkpoint atomically (temporary file, flush, fsync, rename), so that a crash
    /// while saving leaves the previous checkpoint intact.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = self.to_bytes();
        write_file(path, &bytes, |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a file written by [`Checkpoint::save`], verifying its checksum (older files have
    /// none and load unverified) and its contents: a valid configuration, finite parameters and
    /// moments, a position inside the run.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = read_file(path, |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut tensors = param_tensors("", &self.state.params);
        if let Some(moments) = &self.state.moments {
            tensors.extend(param_tensors(MOMENT_PREFIXES[0], &moments.m));
            tensors.extend(param_tensors(MOMENT_PREFIXES[1], &moments.v));
        }
        if let Some(sums) = &self.state.row_sums {
            tensors.extend(param_tensors(ROW_SUMS_PREFIX, sums));
        }
        let position = SavedPosition::from(self.position);
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("config".to_string(), json_string(&self.config)),
            ("position".to_string(), json_string(&position)),
            ("data".to_string(), json_string(&self.data)),
        ]);
        serialize(&tensors, metadata).expect("f32 tensors of matching shapes always serialise")
    }

    /// Parses the bytes of a checkpoint; `path` is for messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bad = |message: String| CheckpointError::Format {
            path: path.to_path_buf(),
            message,
        };
        let damaged = |message: String| CheckpointError::Damaged {
            path: path.to_path_buf(),
            message,
        };
        let contents = Contents::parse(bytes).map_err(bad)?;
        contents.expect_format(FORMAT).map_err(bad)?;
        contents.verify_checksum().map_err(damaged)?;
        let config: TrainConfig = contents.field("config").map_err(bad)?;
        config
            .validate()
            .map_err(|e| damaged(format!("metadata `config`: {e}")))?;
        let data: DataFingerprint = contents.field("data").map_err(bad)?;
        if data.users == 0 || data.items == 0 {
            return Err(damaged(format!(
                "metadata `data` has {} users and {} items; a run has at least one of each",
                data.users, data.items
            )));
        }
        let position: SavedPosition = contents.field("position").map_err(bad)?;
        let position = position.to_position().map_err(bad)?;
        if !position.loss_sum.is_finite() || position.epoch > config.epochs {
            return Err(damaged(format!(
                "metadata `position` is epoch {} of {} with a loss sum of {}",
                position.epoch, config.epochs, position.loss_sum
            )));
        }
        let read = |prefix: &str| {
            contents
                .params(prefix, data.users, data.items, config.factors)
                .map_err(bad)
        };
        let params = read("")?;
        let moments = match config.optimizer.has_moments() {
            true => Some(AdamMoments {
                m: read(MOMENT_PREFIXES[0])?,
                v: read(MOMENT_PREFIXES[1])?,
            }),
            false => None,
        };
        let row_sums = match config.optimizer.has_row_sums() {
            true => Some(
                contents
                    .params(ROW_SUMS_PREFIX, data.users, data.items, 1)
                    .map_err(bad)?,
            ),
            false => None,
        };
        if let Some(sums) = &row_sums
            && let Some((name, index)) =
                Params::TENSOR_NAMES
                    .iter()
                    .zip(sums.tensors())
                    .find_map(|(name, s)| {
                        s.iter()
                            .position(|&x| !(x >= 0.0 && x.is_finite()))
                            .map(|i| (name, i))
                    })
        {
            return Err(damaged(format!(
                "tensor `{ROW_SUMS_PREFIX}{name}` is negative or not finite at index {index}; \
                 Adagrad's accumulators are sums of squares"
            )));
        }
        let mut all = vec![("", &params)];
        if let Some(moments) = &moments {
            all.push((MOMENT_PREFIXES[0], &moments.m));
            all.push((MOMENT_PREFIXES[1], &moments.v));
            if let Some((name, index)) = Params::TENSOR_NAMES
                .iter()
                .zip(moments.v.tensors())
                .find_map(|(name, v)| v.iter().position(|&x| x < 0.0).map(|i| (name, i)))
            {
                return Err(damaged(format!(
                    "tensor `{}{name}` is negative at index {index}; Adam's second moments are \
                     never negative",
                    MOMENT_PREFIXES[1]
                )));
            }
        }
        check_loaded(config.factors, config.y_range, &all).map_err(damaged)?;
        Ok(Checkpoint {
            config,
            state: TrainState {
                params,
                moments,
                row_sums,
            },
            position,
            data,
        })
    }

    /// Refuses to resume this checkpoint under a different configuration or different data (see
    /// the module docs for what may change); `path` is for messages.
    pub fn check_resumable(
        &self,
        config: &TrainConfig,
        data: &DataFingerprint,
        path: &Path,
    ) -> Result<(), CheckpointError> {
        let mut differences = Vec::new();
        let (saved, wanted) = (self.config.to_json(), config.to_json());
        if let (Some(saved), Some(wanted)) = (saved.as_object(), wanted.as_object()) {
            for (key, value) in wanted {
                let before = saved.get(key).unwrap_or(&serde_json::Value::Null);
                if before != value {
                    differences.push(format!(
                        "`{key}` was {before} in the checkpoint but is {value} now"
                    ));
                }
            }
        }
        let (a, b) = (&self.data, data);
        let mut compare = |what: &str, before: String, now: String| {
            if before != now {
                differences.push(format!("{what} was {before} but is {now} now"));
            }
        };
        compare("U (users)", a.users.to_string(), b.users.to_string());
        compare("I (items)", a.items.to_string(), b.items.to_string());
        compare(
            "N_train",
            a.train_ratings.to_string(),
            b.train_ratings.to_string(),
        );
        compare(
            "N_valid",
            a.valid_ratings.to_string(),
            b.valid_ratings.to_string(),
        );
        compare("the split seed", a.seed.to_string(), b.seed.to_string());
        if differences.is_empty() && a.hash != b.hash {
            differences.push(format!(
                "the data or split differs (hash of the triples {:016x} in the checkpoint, {:016x} now)",
                a.hash, b.hash
            ));
        }
        match differences.is_empty() {
            true => Ok(()),
            false => Err(CheckpointError::Mismatch {
                path: path.to_path_buf(),
                message: differences.join("; "),
            }),
        }
    }
}

/// The `position` metadata: the running loss sum travels as the hex bits of its f64, so it comes
/// back exactly (`loss_sum` beside it is for people reading the metadata).
#[derive(Debug, Serialize, Deserialize)]
struct SavedPosition {
    epoch: usize,
    batch: usize,
    loss_sum_bits: String,
    #[serde(default)]
    loss_sum: f64,
}

impl From<Position> for SavedPosition {
    fn from(position: Position) -> Self {
        SavedPosition {
            epoch: position.epoch,
            batch: position.batch,
            loss_sum_bits: format!("{:016x}", position.loss_sum.to_bits()),
            loss_sum: position.loss_sum,
        }
    }
}

impl SavedPosition {
    fn to_position(&self) -> Result<Position, String> {
        let bits = u64::from_str_radix(&self.loss_sum_bits, 16).map_err(|e| {
            format!(
                "metadata `position` has loss_sum_bits {:?}: {e}",
                self.loss_sum_bits
            )
        })?;
        Ok(Position {
            epoch: self.epoch,
            batch: self.batch,
            loss_sum: f64::from_bits(bits),
        })
    }
}
