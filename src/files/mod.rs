//! The files collabgpu writes and reads back, in one place above the training loop:
//!
//! - [`model`]: the trained model, for every later command and for other tools (Python);
//! - [`checkpoint`]: a run in progress, to resume exactly;
//! - [`log`]: one JSON line per epoch, which `collabgpu plot --log` draws.
//!
//! The model file and the checkpoint are both safetensors: f32 tensors named as
//! [`Params::TENSOR_NAMES`] (a checkpoint adds Adam's moments under prefixes) and a
//! `__metadata__` map whose every value is a JSON string. The helpers below read and write that
//! shared part once; each format adds its own fields and error messages. Both are written whole or
//! not at all ([`crate::atomic_file`]).

pub mod checkpoint;
pub mod log;
pub mod model;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use log::{EpochLine, LogCut, LogFile};
pub use model::{ModelFile, ModelFileError};

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::de::DeserializeOwned;

use crate::model::Params;

/// Reads a whole file; the one place both formats read from disk.
fn read_file<E>(path: &Path, io_error: impl FnOnce(std::io::Error) -> E) -> Result<Vec<u8>, E> {
    std::fs::read(path).map_err(io_error)
}

/// Writes a whole file atomically ([`crate::atomic_file`]): a crash while saving leaves the
/// previous file intact, and a reader never sees half of one.
fn write_file<E>(
    path: &Path,
    bytes: &[u8],
    io_error: impl FnOnce(std::io::Error) -> E,
) -> Result<(), E> {
    crate::atomic_file::write_bytes_atomically(path, bytes).map_err(io_error)
}

/// One tensor ready to serialise: name, shape and little-endian f32 bytes.
struct NamedTensor {
    name: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The four tensors of `params`, named `{prefix}{user_factors, item_factors, user_bias, item_bias}`.
fn param_tensors(prefix: &str, params: &Params) -> Vec<NamedTensor> {
    let (u, i, k) = (params.users(), params.items(), params.factors);
    let shapes = [vec![u, k], vec![i, k], vec![u], vec![i]];
    Params::TENSOR_NAMES
        .iter()
        .zip(shapes)
        .zip(params.tensors())
        .map(|((name, shape), tensor)| NamedTensor {
            name: format!("{prefix}{name}"),
            shape,
            bytes: tensor.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
        .collect()
}

/// The safetensors bytes of `tensors` with `metadata`.
fn serialize(
    tensors: &[NamedTensor],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let mut views = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let view = TensorView::new(Dtype::F32, tensor.shape.clone(), &tensor.bytes)
            .map_err(|e| format!("{}: {e}", tensor.name))?;
        views.push((tensor.name.as_str(), view));
    }
    safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

/// A safetensors file that parsed, with its metadata.
struct Contents<'a> {
    tensors: SafeTensors<'a>,
    metadata: HashMap<String, String>,
}

impl<'a> Contents<'a> {
    /// Parses `bytes`; the error says why they are not a safetensors file with metadata.
    fn parse(bytes: &'a [u8]) -> Result<Contents<'a>, String> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let metadata = header
            .metadata()
            .clone()
            .ok_or_else(|| "it has no __metadata__".to_string())?;
        Ok(Contents { tensors, metadata })
    }

    /// Checks the `format` field.
    fn expect_format(&self, expected: &str) -> Result<(), String> {
        match self.metadata.get("format").map(String::as_str) {
            Some(format) if format == expected => Ok(()),
            other => Err(format!(
                "metadata `format` is {other:?}, expected {expected:?}"
            )),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.metadata.contains_key(key)
    }

    /// The metadata field `key`, parsed from its JSON string.
    fn field<T: DeserializeOwned>(&self, key: &str) -> Result<T, String> {
        let text = self
            .metadata
            .get(key)
            .ok_or_else(|| format!("metadata has no `{key}`"))?;
        serde_json::from_str(text).map_err(|e| format!("metadata `{key}` ({text:.80}): {e}"))
    }

    /// The four parameter tensors under `prefix`, which must have the shapes `U`, `I` and `K` give.
    fn params(&self, prefix: &str, users: usize, items: usize, k: usize) -> Result<Params, String> {
        let shapes = [vec![users, k], vec![items, k], vec![users], vec![items]];
        let mut values: Vec<Vec<f32>> = Vec::with_capacity(4);
        for (name, shape) in Params::TENSOR_NAMES.iter().zip(&shapes) {
            let full = format!("{prefix}{name}");
            let view = self
                .tensors
                .tensor(&full)
                .map_err(|e| format!("tensor `{full}`: {e}"))?;
            if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
                return Err(format!(
                    "tensor `{full}` is {:?} {:?}, expected F32 {shape:?} (from the id lists and K)",
                    view.dtype(),
                    view.shape()
                ));
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
    }
}

/// `value` as a JSON string: floats in their shortest form (`0.005`, not `0.004999999888`).
fn json_string<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serialises")
}
