//! The model file: safetensors with the four tensors `user_factors` `[U, K]`, `item_factors`
//! `[I, K]`, `user_bias` `[U]`, `item_bias` `[I]` (f32, little-endian) and `__metadata__` that makes
//! the file usable without the data: the training configuration, the y-range, the raw ids of every
//! user and item in index order, the titles when known, and how the training data was split
//! (`split`, so that `eval` can score the held-out ratings alone). Every metadata value is a JSON string,
//! so Python reads it with `json.loads(safe_open(path, "pt").metadata()["user_ids"])`.
//!
//! A model written by `train` also records who rated what in training ([`RatingIndex`]), as six
//! more tensors: `user_counts` `[U]` and `item_counts` `[I]` (I32, ratings per row),
//! `user_rating_sums` `[U]` and `item_rating_sums` `[I]` (F64), `rated_offsets` `[U + 1]` (I64)
//! and `rated_items` (I32, each user's distinct rated item indices, ascending, user `u`'s at
//! `rated_offsets[u]..rated_offsets[u + 1]`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{
    Contents, NamedTensor, check_loaded, json_string, param_tensors, read_file, serialize,
    write_file,
};
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use crate::data::split::{Fold, SplitKind};
use crate::data::{DataFingerprint, Dataset, IdMap, ItemKey, RatingIndex, SplitData};
use crate::model::Params;
use crate::train::TrainConfig;

/// The `format` metadata value this version writes and reads.
pub const FORMAT: &str = "collabgpu-dot-product-bias-1";

/// A trained model with everything a later command needs to use it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub params: Params,
    /// Raw user ids in index order.
    pub users: IdMap,
    /// Raw item ids (or titles, under `--item-key title`) in index order.
    pub items: IdMap,
    /// A title per item index, when the data had them.
    pub titles: Option<Vec<String>>,
    /// The configuration the model was trained with (its `y_range` is the model's y-range).
    pub config: TrainConfig,
    /// How the training run split its data; `None` for models written before it was recorded,
    /// or built other than by `train`.
    pub split: Option<TrainingSplit>,
    /// Who rated what in the training ratings; `None` for models written before it was
    /// recorded, or built other than by `train`.
    pub training: Option<RatingIndex>,
}

/// How a training run chose its validation ratings: enough to split the same data again and
/// check, by the fingerprint, that it is the same split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSplit {
    /// The `--data` the run was given, for messages.
    pub source: String,
    pub kind: SplitKind,
    pub valid_pct: f64,
    /// The split's seed (the run's `--seed`).
    pub seed: u64,
    /// For a model of a cross-validation (`train --folds`): which fold it held out; then `kind`
    /// is `random` and `valid_pct` is `1 / count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<Fold>,
    /// The shapes and hash of the split, as a checkpoint records them.
    pub data: DataFingerprint,
}

/// The path fold `index` (from 0) of a cross-validation saves its model to: `m.safetensors`
/// gives `m.fold1.safetensors`.
pub fn fold_path(out: &Path, index: usize) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(ext) => format!("{stem}.fold{}.{}", index + 1, ext.to_string_lossy()),
        None => format!("{stem}.fold{}", index + 1),
    };
    out.with_file_name(name)
}

/// Errors from writing or reading a model file. Messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a safetensors file ({message}); was it written by `collabgpu train --out`?"
    )]
    Format { path: PathBuf, message: String },
    #[error("{path}: {message}; the file is damaged or from another program, retrain with `--out`")]
    Content { path: PathBuf, message: String },
    #[error(
        "{path} is damaged: {message}; retrain the model (`collabgpu train --out`) or restore the \
         file from a copy"
    )]
    Damaged { path: PathBuf, message: String },
    #[error("cannot save the model: {0}")]
    Shape(String),
}

impl ModelFile {
    /// The model of `params` trained with `config` on `dataset` (its id maps and titles).
    pub fn new(params: Params, dataset: &Dataset, config: &TrainConfig) -> ModelFile {
        ModelFile {
            params,
            users: dataset.users.clone(),
            items: dataset.items.clone(),
            titles: dataset.titles.clone(),
            config: config.clone(),
            split: None,
            training: None,
        }
    }

    /// The model of `params` trained on `data` as `collabgpu train --out` writes it (and the
    /// Python package's `fit`): the data set's ids and titles, the configuration, the record of
    /// the split and who rated what in `data.train`.
    pub fn trained(
        params: Params,
        data: &SplitData,
        config: &TrainConfig,
        split: TrainingSplit,
    ) -> ModelFile {
        let training = RatingIndex::of(&data.train, data.users(), data.items());
        ModelFile::new(params, &data.dataset, config)
            .with_split(split)
            .with_training(training)
    }

    /// The model with the record of its training ratings, indexed as the model is.
    pub fn with_training(mut self, training: RatingIndex) -> ModelFile {
        self.training = Some(training);
        self
    }

    /// Whether the model's items are titles (trained with `--item-key title`): then its item ids
    /// are its titles, and a data set must be read the same way for its items to match.
    pub fn keyed_by_title(&self) -> bool {
        self.titles
            .as_deref()
            .is_some_and(|titles| !titles.is_empty() && titles == self.items.raw_ids())
    }

    /// The item key to read data with for its items to match the model's ([`Self::keyed_by_title`]).
    pub fn item_key(&self) -> ItemKey {
        match self.keyed_by_title() {
            true => ItemKey::Title,
            false => ItemKey::Id,
        }
    }

    /// The model with the record of how its training data was split.
    pub fn with_split(mut self, split: TrainingSplit) -> ModelFile {
        self.split = Some(split);
        self
    }

    /// Writes the file atomically: a temporary file in the same directory, flushed and synced, then
    /// renamed over `path`, so a reader never sees half a model.
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let bytes = self.to_bytes()?;
        write_file(path, &bytes, |source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a file written by [`ModelFile::save`], verifying its checksum (files from before
    /// checksums existed have none and load unverified) and its contents: K >= 1, a finite
    /// y-range LO < HI, finite parameters, unique ascending ids, tensor shapes that match.
    pub fn load(path: &Path) -> Result<ModelFile, ModelFileError> {
        let bytes = read_file(path, |source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ModelFile::from_bytes(&bytes, path)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelFileError> {
        let p = &self.params;
        let (users, items) = (p.users(), p.items());
        if self.users.len() != users || self.items.len() != items {
            return Err(ModelFileError::Shape(format!(
                "{} user ids and {} item ids for a model of {users} users and {items} items",
                self.users.len(),
                self.items.len()
            )));
        }
        if let Some(titles) = &self.titles
            && titles.len() != items
        {
            return Err(ModelFileError::Shape(format!(
                "{} titles for {items} items",
                titles.len()
            )));
        }
        let mut metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("config".to_string(), json_string(&self.config)),
            ("y_range".to_string(), json_string(&self.config.y_range)),
            ("user_ids".to_string(), json_string(&self.users.raw_ids())),
            ("item_ids".to_string(), json_string(&self.items.raw_ids())),
        ]);
        if let Some(titles) = &self.titles {
            metadata.insert("titles".to_string(), json_string(titles));
        }
        if let Some(split) = &self.split {
            metadata.insert("split".to_string(), json_string(split));
        }
        let mut tensors = param_tensors("", p);
        if let Some(index) = &self.training {
            if index.users() != users || index.items_len() != items {
                return Err(ModelFileError::Shape(format!(
                    "a rating index of {} users and {} items for a model of {users} and {items}",
                    index.users(),
                    index.items_len()
                )));
            }
            tensors.extend(training_tensors(index));
        }
        serialize(&tensors, metadata).map_err(ModelFileError::Shape)
    }

    /// Parses the bytes of a model file; `path` is for messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ModelFile, ModelFileError> {
        let format_error = |message: String| ModelFileError::Format {
            path: path.to_path_buf(),
            message,
        };
        let content = |message: String| ModelFileError::Content {
            path: path.to_path_buf(),
            message,
        };
        let contents = Contents::parse(bytes).map_err(format_error)?;
        contents.expect_format(FORMAT).map_err(content)?;
        contents
            .verify_checksum()
            .map_err(|message| ModelFileError::Damaged {
                path: path.to_path_buf(),
                message,
            })?;
        let mut config: TrainConfig = contents.field("config").map_err(content)?;
        config.y_range = contents.field("y_range").map_err(content)?;
        let users = IdMap::from_sorted(contents.field("user_ids").map_err(content)?);
        let items = IdMap::from_sorted(contents.field("item_ids").map_err(content)?);
        let titles: Option<Vec<String>> = match contents.has("titles") {
            true => Some(contents.field("titles").map_err(content)?),
            false => None,
        };
        let split: Option<TrainingSplit> = match contents.has("split") {
            true => Some(contents.field("split").map_err(content)?),
            false => None,
        };
        // Fold-in adds users after training, so a model may know more users than its split.
        if let Some(split) = &split
            && (split.data.users > users.len() || split.data.items != items.len())
        {
            return Err(content(format!(
                "metadata `split` records {} users and {} items for a model of {} and {}",
                split.data.users,
                split.data.items,
                users.len(),
                items.len()
            )));
        }
        for (what, ids) in [("user_ids", &users), ("item_ids", &items)] {
            if ids.is_empty() {
                return Err(content(format!("metadata `{what}` is empty")));
            }
            if let Some(problem) = ids.order_problem() {
                return Err(content(format!(
                    "metadata `{what}`: {problem}; ids must be unique and ascending (numerically \
                     when all are integers)"
                )));
            }
        }
        if config.factors == 0 {
            return Err(content(
                "K (`factors` in metadata `config`) is 0; a model needs K >= 1".into(),
            ));
        }
        let params = contents
            .params("", users.len(), items.len(), config.factors)
            .map_err(content)?;
        check_loaded(config.factors, config.y_range, &[("", &params)]).map_err(content)?;
        if let Some(titles) = &titles
            && titles.len() != items.len()
        {
            return Err(content(format!(
                "{} titles for {} items",
                titles.len(),
                items.len()
            )));
        }
        let training = match contents.has_tensor(RATED_ITEMS) {
            true => Some(read_training(&contents, users.len(), items.len()).map_err(content)?),
            false => None,
        };
        Ok(ModelFile {
            params,
            users,
            items,
            titles,
            config,
            split,
            training,
        })
    }
}

/// The tensor whose presence says the file records its training ratings.
const RATED_ITEMS: &str = "rated_items";

/// The six tensors of a [`RatingIndex`] (see the module docs).
fn training_tensors(index: &RatingIndex) -> Vec<NamedTensor> {
    let i32s = |v: &[u32]| v.iter().map(|&x| x as i32).collect::<Vec<i32>>();
    vec![
        NamedTensor::vector(
            "user_counts",
            Dtype::I32,
            &i32s(&index.user_counts),
            i32::to_le_bytes,
        ),
        NamedTensor::vector(
            "item_counts",
            Dtype::I32,
            &i32s(&index.item_counts),
            i32::to_le_bytes,
        ),
        NamedTensor::vector(
            "user_rating_sums",
            Dtype::F64,
            &index.user_sums,
            f64::to_le_bytes,
        ),
        NamedTensor::vector(
            "item_rating_sums",
            Dtype::F64,
            &index.item_sums,
            f64::to_le_bytes,
        ),
        NamedTensor::vector(
            "rated_offsets",
            Dtype::I64,
            &index
                .offsets
                .iter()
                .map(|&x| x as i64)
                .collect::<Vec<i64>>(),
            i64::to_le_bytes,
        ),
        NamedTensor::vector(
            RATED_ITEMS,
            Dtype::I32,
            &i32s(&index.items),
            i32::to_le_bytes,
        ),
    ]
}

/// Reads the [`training_tensors`] back and checks them against each other and the shapes.
fn read_training(contents: &Contents, users: usize, items: usize) -> Result<RatingIndex, String> {
    let count = |name: &str, len: usize| -> Result<Vec<u32>, String> {
        contents
            .vector(name, Dtype::I32, Some(len), i32::from_le_bytes)?
            .into_iter()
            .map(|c| u32::try_from(c).map_err(|_| format!("tensor `{name}` holds {c}")))
            .collect()
    };
    let sums =
        |name: &str, len: usize| contents.vector(name, Dtype::F64, Some(len), f64::from_le_bytes);
    let offsets = contents
        .vector(
            "rated_offsets",
            Dtype::I64,
            Some(users + 1),
            i64::from_le_bytes,
        )?
        .into_iter()
        .map(|o| u64::try_from(o).map_err(|_| format!("tensor `rated_offsets` holds {o}")))
        .collect::<Result<Vec<u64>, String>>()?;
    let index = RatingIndex {
        user_counts: count("user_counts", users)?,
        item_counts: count("item_counts", items)?,
        user_sums: sums("user_rating_sums", users)?,
        item_sums: sums("item_rating_sums", items)?,
        offsets,
        items: contents
            .vector(RATED_ITEMS, Dtype::I32, None, i32::from_le_bytes)?
            .into_iter()
            .map(|i| u32::try_from(i).map_err(|_| format!("tensor `{RATED_ITEMS}` holds {i}")))
            .collect::<Result<Vec<u32>, String>>()?,
    };
    match index.problem() {
        Some(problem) => Err(format!("the training rating tensors disagree: {problem}")),
        None => Ok(index),
    }
}
