//! The model file: safetensors with the four tensors `user_factors` `[U, K]`, `item_factors`
//! `[I, K]`, `user_bias` `[U]`, `item_bias` `[I]` (f32, little-endian) and `__metadata__` that makes
//! the file usable without the data: the training configuration, the y-range, the raw ids of every
//! user and item in index order, the titles when known, and how the training data was split
//! (`split`, so that `eval` can score the held-out ratings alone). Every metadata value is a JSON string,
//! so Python reads it with `json.loads(safe_open(path, "pt").metadata()["user_ids"])`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Contents, check_loaded, json_string, param_tensors, read_file, serialize, write_file};
use serde::{Deserialize, Serialize};

use crate::data::split::SplitKind;
use crate::data::{DataFingerprint, Dataset, IdMap, ItemKey};
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
    /// The shapes and hash of the split, as a checkpoint records them.
    pub data: DataFingerprint,
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
        }
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
        serialize(&param_tensors("", p), metadata).map_err(ModelFileError::Shape)
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
        if let Some(split) = &split
            && (split.data.users != users.len() || split.data.items != items.len())
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
        Ok(ModelFile {
            params,
            users,
            items,
            titles,
            config,
            split,
        })
    }
}
