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

/// Reads a whole safetensors file, bounded; the one place both formats read from disk.
///
/// Only a regular file is read (a device such as `/dev/zero`, a pipe or a directory would be read
/// until memory runs out, or block), and never more than its size: the length is taken once, the
/// read stops there, and a file that changed size meanwhile is refused; the host must have memory
/// for the bytes and the tensors decoded from them ([`crate::train::memory`]). What the header
/// then claims is checked against those bytes when they are parsed: safetensors refuses a header
/// or a tensor that reaches past the end, and [`Contents::params`] refuses shapes that do not
/// match the id lists and `K`.
fn read_file<E>(path: &Path, io_error: impl FnOnce(std::io::Error) -> E) -> Result<Vec<u8>, E> {
    read_bounded(path).map_err(io_error)
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a directory, device or pipe); pass the file that `collabgpu train` wrote",
        ));
    }
    let size = metadata.len();
    let estimate = crate::train::MemoryEstimate {
        parts: vec![
            ("the file's bytes".to_string(), size),
            ("the tensors read from them".to_string(), size),
        ],
    };
    if let Err(e) = estimate.check(
        "reading this file",
        "Is it the model or checkpoint you meant? Read it on a machine with more memory",
    ) {
        return Err(Error::new(ErrorKind::OutOfMemory, e.to_string()));
    }
    let capacity = usize::try_from(size).map_err(|_| {
        Error::new(
            ErrorKind::OutOfMemory,
            format!("{size} bytes do not fit in this machine's address space"),
        )
    })?;
    let mut bytes = Vec::with_capacity(capacity);
    // One byte more than the size, to notice a file that grew while being read.
    file.take(size.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != size {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "the file changed size while being read ({size} bytes, then {}); read it again once nothing writes it",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
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
