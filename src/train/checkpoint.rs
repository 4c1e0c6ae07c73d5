//! Checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! A checkpoint is a safetensors file. Its tensors are the four parameter tensors under their model
//! file names (`user_factors`, `item_factors`, `user_bias`, `item_bias`) and, for `adamw`, Adam's
//! moments as `adam_m.<name>` and `adam_v.<name>`. Its `__metadata__` (JSON strings) holds:
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

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{Value, json};

use super::{AdamMoments, Position, TrainConfig, TrainState};
use crate::data::Ratings;
use crate::model::Params;
use crate::model::file::{config_from_json, config_to_json, write_atomically};

/// The `format` metadata value this version writes and reads.
pub const FORMAT: &str = "collabgpu-checkpoint-1";

/// What identifies the data and split a run trains on, cheaply: the shapes, the seed and a hash of
/// the triples in split order (a different split or a changed rating changes the hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFingerprint {
    /// `U`.
    pub users: usize,
    /// `I`.
    pub items: usize,
    /// `N_train`.
    pub train_ratings: usize,
    /// `N_valid`.
    pub valid_ratings: usize,
    /// The split's seed.
    pub seed: u64,
    /// FNV-1a over `(user, item, rating bits)` of the training then the validation triples.
    pub hash: u64,
}

impl DataFingerprint {
    /// The fingerprint of a split of data with `users` users and `items` items.
    pub fn new(
        users: usize,
        items: usize,
        train: &Ratings,
        valid: &Ratings,
        seed: u64,
    ) -> DataFingerprint {
        // FNV-1a, 64-bit: simple, stable across versions and platforms, fast enough for ML-25M.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |word: u32| {
            for byte in word.to_le_bytes() {
                hash ^= byte as u64;
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for set in [train, valid] {
            for n in 0..set.len() {
                feed(set.users[n]);
                feed(set.items[n]);
                feed(set.ratings[n].to_bits());
            }
        }
        DataFingerprint {
            users,
            items,
            train_ratings: train.len(),
            valid_ratings: valid.len(),
            seed,
            hash,
        }
    }

    fn to_json(self) -> Value {
        json!({
            "users": self.users,
            "items": self.items,
            "train_ratings": self.train_ratings,
            "valid_ratings": self.valid_ratings,
            "seed": self.seed,
            "hash": format!("{:016x}", self.hash),
        })
    }

    fn from_json(value: &Value) -> Option<DataFingerprint> {
        let count = |key: &str| value.get(key)?.as_u64();
        Some(DataFingerprint {
            users: count("users")? as usize,
            items: count("items")? as usize,
            train_ratings: count("train_ratings")? as usize,
            valid_ratings: count("valid_ratings")? as usize,
            seed: count("seed")?,
            hash: u64::from_str_radix(value.get("hash")?.as_str()?, 16).ok()?,
        })
    }
}

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
        "{path}: cannot resume: {message}. Resume with the data and flags of the run that wrote it, \
         or train afresh without --resume"
    )]
    Mismatch { path: PathBuf, message: String },
}

const MOMENT_PREFIXES: [&str; 2] = ["adam_m.", "adam_v."];

impl Checkpoint {
    /// Writes the checkpoint atomically (temporary file, flush, fsync, rename), so that a crash
    /// while saving leaves the previous checkpoint intact.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes = self.to_bytes();
        write_atomically(path, &bytes).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a file written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let params = &self.state.params;
        let (u, i, k) = (params.users(), params.items(), params.factors);
        let shapes = [vec![u, k], vec![i, k], vec![u], vec![i]];
        let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut add = |prefix: &str, tensors: [&[f32]; 4]| {
            for ((name, shape), tensor) in Params::TENSOR_NAMES.iter().zip(&shapes).zip(tensors) {
                let bytes = tensor.iter().flat_map(|x| x.to_le_bytes()).collect();
                named.push((format!("{prefix}{name}"), shape.clone(), bytes));
            }
        };
        add("", params.tensors());
        if let Some(moments) = &self.state.moments {
            add(MOMENT_PREFIXES[0], moments.m.tensors());
            add(MOMENT_PREFIXES[1], moments.v.tensors());
        }
        let views: Vec<(String, TensorView<'_>)> = named
            .iter()
            .map(|(name, shape, bytes)| {
                let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .expect("shape and length agree by construction");
                (name.clone(), view)
            })
            .collect();
        let position = &self.position;
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            (
                "config".to_string(),
                config_to_json(&self.config).to_string(),
            ),
            (
                "position".to_string(),
                json!({
                    "epoch": position.epoch,
                    "batch": position.batch,
                    "loss_sum_bits": format!("{:016x}", position.loss_sum.to_bits()),
                    "loss_sum": position.loss_sum,
                })
                .to_string(),
            ),
            ("data".to_string(), self.data.to_json().to_string()),
        ]);
        safetensors::serialize(views, Some(metadata)).expect("f32 tensors always serialise")
    }

    /// Parses the bytes of a checkpoint; `path` is for messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bad = |message: String| CheckpointError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let metadata = header
            .metadata()
            .clone()
            .ok_or_else(|| bad("it has no __metadata__".into()))?;
        match metadata.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            other => {
                return Err(bad(format!(
                    "metadata `format` is {other:?}, expected {FORMAT:?}"
                )));
            }
        }
        let field = |key: &str| -> Result<Value, CheckpointError> {
            let text = metadata
                .get(key)
                .ok_or_else(|| bad(format!("metadata has no `{key}`")))?;
            serde_json::from_str(text)
                .map_err(|e| bad(format!("metadata `{key}` is not JSON ({e}): {text:.80}")))
        };
        let config = config_from_json(&field("config")?).map_err(&bad)?;
        let data_value = field("data")?;
        let data = DataFingerprint::from_json(&data_value)
            .ok_or_else(|| bad(format!("metadata `data` is {data_value}")))?;
        let position_value = field("position")?;
        let position = (|| {
            Some(Position {
                epoch: position_value.get("epoch")?.as_u64()? as usize,
                batch: position_value.get("batch")?.as_u64()? as usize,
                loss_sum: f64::from_bits(
                    u64::from_str_radix(position_value.get("loss_sum_bits")?.as_str()?, 16).ok()?,
                ),
            })
        })()
        .ok_or_else(|| bad(format!("metadata `position` is {position_value}")))?;

        let (u, i, k) = (data.users, data.items, config.factors);
        let shapes = [vec![u, k], vec![i, k], vec![u], vec![i]];
        let read = |prefix: &str| -> Result<Params, CheckpointError> {
            let mut values: Vec<Vec<f32>> = Vec::with_capacity(4);
            for (name, shape) in Params::TENSOR_NAMES.iter().zip(&shapes) {
                let full = format!("{prefix}{name}");
                let view = tensors
                    .tensor(&full)
                    .map_err(|e| bad(format!("tensor `{full}`: {e}")))?;
                if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
                    return Err(bad(format!(
                        "tensor `{full}` is {:?} {:?}, expected F32 {shape:?}",
                        view.dtype(),
                        view.shape()
                    )));
                }
                values.push(
                    view.data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                );
            }
            let [user_factors, item_factors, user_bias, item_bias]: [Vec<f32>; 4] =
                values.try_into().expect("four tensors");
            Ok(Params {
                factors: k,
                user_factors,
                item_factors,
                user_bias,
                item_bias,
            })
        };
        let params = read("")?;
        let moments = match config.optimizer {
            super::OptimizerKind::AdamW => Some(AdamMoments {
                m: read(MOMENT_PREFIXES[0])?,
                v: read(MOMENT_PREFIXES[1])?,
            }),
            super::OptimizerKind::Sgd => None,
        };
        Ok(Checkpoint {
            config,
            state: TrainState { params, moments },
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
        let (saved, wanted) = (config_to_json(&self.config), config_to_json(config));
        if let (Some(saved), Some(wanted)) = (saved.as_object(), wanted.as_object()) {
            for (key, value) in wanted {
                let before = saved.get(key).unwrap_or(&Value::Null);
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
