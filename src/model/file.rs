//! The model file: safetensors with the four tensors `user_factors` `[U, K]`, `item_factors`
//! `[I, K]`, `user_bias` `[U]`, `item_bias` `[I]` (f32, little-endian) and `__metadata__` that makes
//! the file usable without the data: the training configuration, the y-range, the raw ids of every
//! user and item in index order, and the titles when known. Every metadata value is a JSON string,
//! so Python reads it with `json.loads(safe_open(path, "pt").metadata()["user_ids"])`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{Value, json};

use super::Params;
use crate::data::IdMap;
use crate::train::{OptimizerKind, ScheduleKind, TrainConfig};

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
    #[error("cannot save the model: {0}")]
    Shape(String),
}

impl ModelFile {
    /// Writes the file atomically: a temporary file in the same directory, flushed and synced, then
    /// renamed over `path`, so a reader never sees half a model.
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let bytes = self.to_bytes()?;
        write_atomically(path, &bytes).map_err(|source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a file written by [`ModelFile::save`].
    pub fn load(path: &Path) -> Result<ModelFile, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ModelFile::from_bytes(&bytes, path)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelFileError> {
        let p = &self.params;
        let (users, items, k) = (p.users(), p.items(), p.factors);
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
        let shapes = [vec![users, k], vec![items, k], vec![users], vec![items]];
        let data: Vec<Vec<u8>> = p
            .tensors()
            .iter()
            .map(|t| t.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let mut views = Vec::with_capacity(4);
        for ((name, shape), bytes) in Params::TENSOR_NAMES.iter().zip(shapes).zip(&data) {
            let view = TensorView::new(Dtype::F32, shape, bytes)
                .map_err(|e| ModelFileError::Shape(format!("{name}: {e}")))?;
            views.push((*name, view));
        }
        let mut metadata = HashMap::new();
        metadata.insert("format".to_string(), FORMAT.to_string());
        metadata.insert(
            "config".to_string(),
            config_to_json(&self.config).to_string(),
        );
        metadata.insert(
            "y_range".to_string(),
            match self.config.y_range {
                Some((lo, hi)) => json!([short(lo), short(hi)]),
                None => Value::Null,
            }
            .to_string(),
        );
        metadata.insert(
            "user_ids".to_string(),
            json!(self.users.raw_ids()).to_string(),
        );
        metadata.insert(
            "item_ids".to_string(),
            json!(self.items.raw_ids()).to_string(),
        );
        if let Some(titles) = &self.titles {
            metadata.insert("titles".to_string(), json!(titles).to_string());
        }
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| ModelFileError::Shape(e.to_string()))
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
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| format_error(e.to_string()))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| format_error(e.to_string()))?;
        let metadata = header
            .metadata()
            .clone()
            .ok_or_else(|| content("it has no __metadata__".into()))?;
        let field = |key: &str| -> Result<Value, ModelFileError> {
            let text = metadata
                .get(key)
                .ok_or_else(|| content(format!("metadata has no `{key}`")))?;
            serde_json::from_str(text)
                .map_err(|e| content(format!("metadata `{key}` is not JSON ({e}): {text:.80}")))
        };
        match metadata.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            other => {
                return Err(content(format!(
                    "metadata `format` is {other:?}, expected {FORMAT:?}"
                )));
            }
        }
        let mut config = config_from_json(&field("config")?).map_err(content)?;
        config.y_range = match field("y_range")? {
            Value::Null => None,
            value => {
                let pair: [f32; 2] = serde_json::from_value(value.clone()).map_err(|_| {
                    content(format!("metadata `y_range` is {value}, expected [lo, hi]"))
                })?;
                Some((pair[0], pair[1]))
            }
        };
        let strings = |key: &str| -> Result<Vec<String>, ModelFileError> {
            serde_json::from_value(field(key)?)
                .map_err(|e| content(format!("metadata `{key}` is not a list of strings: {e}")))
        };
        let users = IdMap::from_sorted(strings("user_ids")?);
        let items = IdMap::from_sorted(strings("item_ids")?);
        let titles = match metadata.contains_key("titles") {
            true => Some(strings("titles")?),
            false => None,
        };

        let k = config.factors;
        let (u, i) = (users.len(), items.len());
        let expected = [vec![u, k], vec![i, k], vec![u], vec![i]];
        let mut values: Vec<Vec<f32>> = Vec::with_capacity(4);
        for (name, shape) in Params::TENSOR_NAMES.iter().zip(&expected) {
            let view = tensors
                .tensor(name)
                .map_err(|e| content(format!("tensor `{name}`: {e}")))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
                return Err(content(format!(
                    "tensor `{name}` is {:?} {:?}, expected F32 {shape:?} (from the id lists and K)",
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
        if let Some(titles) = &titles
            && titles.len() != i
        {
            return Err(content(format!("{} titles for {i} items", titles.len())));
        }
        let [user_factors, item_factors, user_bias, item_bias]: [Vec<f32>; 4] =
            values.try_into().expect("four tensors");
        Ok(ModelFile {
            params: Params {
                factors: k,
                user_factors,
                item_factors,
                user_bias,
                item_bias,
            },
            users,
            items,
            titles,
            config,
        })
    }
}

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the whole new
/// one, never a truncated one: a temporary file in the same directory, flushed and synced, then
/// renamed over `path`. Model files and checkpoints both go through here.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile_in(dir, path)?;
    let result = (|| {
        temp.1.write_all(bytes)?;
        temp.1.flush()?;
        temp.1.sync_all()?;
        std::fs::rename(&temp.0, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp.0);
    }
    result
}

/// A fresh, exclusive temporary file next to `target`.
fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let stem = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    for attempt in 0..100u32 {
        let temp = dir.join(format!(".{stem}.{}.{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not create a temporary file"))
}

/// An f32 as the f64 with the same shortest decimal form (`0.005`, not `0.004999999888`), which
/// still reads back as the very same f32.
fn short(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// The configuration as JSON, with SPEC's option names.
pub fn config_to_json(config: &TrainConfig) -> Value {
    json!({
        "factors": config.factors,
        "epochs": config.epochs,
        "lr": short(config.lr),
        "wd": short(config.wd),
        "batch_size": config.batch_size,
        "optimizer": match config.optimizer {
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::Sgd => "sgd",
        },
        "schedule": match config.schedule {
            ScheduleKind::OneCycle => "one-cycle",
            ScheduleKind::Constant => "constant",
        },
        "y_range": config.y_range.map(|(lo, hi)| [short(lo), short(hi)]),
        "init_std": short(config.init_std),
        "seed": config.seed,
        "beta2": short(config.beta2),
        "eps": short(config.eps),
        "drop_last": config.drop_last,
    })
}

/// Reads back [`config_to_json`]; a missing field keeps its default.
pub fn config_from_json(value: &Value) -> Result<TrainConfig, String> {
    let mut config = TrainConfig::default();
    let object = value
        .as_object()
        .ok_or_else(|| format!("metadata `config` is {value}, expected an object"))?;
    let number = |key: &str| object.get(key).and_then(Value::as_f64);
    let bad = |key: &str| format!("metadata `config` has a bad `{key}`: {}", object[key]);
    for (key, slot) in [
        ("factors", &mut config.factors),
        ("epochs", &mut config.epochs),
    ] {
        if object.contains_key(key) {
            *slot = object[key].as_u64().ok_or_else(|| bad(key))? as usize;
        }
    }
    if object.contains_key("batch_size") {
        config.batch_size = object["batch_size"]
            .as_u64()
            .ok_or_else(|| bad("batch_size"))? as usize;
    }
    if object.contains_key("seed") {
        config.seed = object["seed"].as_u64().ok_or_else(|| bad("seed"))?;
    }
    for (key, slot) in [
        ("lr", &mut config.lr),
        ("wd", &mut config.wd),
        ("init_std", &mut config.init_std),
        ("beta2", &mut config.beta2),
        ("eps", &mut config.eps),
    ] {
        if object.contains_key(key) {
            *slot = number(key).ok_or_else(|| bad(key))? as f32;
        }
    }
    if let Some(optimizer) = object.get("optimizer") {
        config.optimizer = match optimizer.as_str() {
            Some("adamw") => OptimizerKind::AdamW,
            Some("sgd") => OptimizerKind::Sgd,
            _ => return Err(bad("optimizer")),
        };
    }
    if let Some(schedule) = object.get("schedule") {
        config.schedule = match schedule.as_str() {
            Some("one-cycle") => ScheduleKind::OneCycle,
            Some("constant") => ScheduleKind::Constant,
            _ => return Err(bad("schedule")),
        };
    }
    if let Some(y_range) = object.get("y_range") {
        config.y_range = match y_range {
            Value::Null => None,
            _ => {
                let pair: [f32; 2] =
                    serde_json::from_value(y_range.clone()).map_err(|_| bad("y_range"))?;
                Some((pair[0], pair[1]))
            }
        };
    }
    if let Some(drop_last) = object.get("drop_last") {
        config.drop_last = drop_last.as_bool().ok_or_else(|| bad("drop_last"))?;
    }
    Ok(config)
}
