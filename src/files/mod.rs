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
pub use model::{ModelFile, ModelFileError, TrainingSplit, fold_path};

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::de::DeserializeOwned;

use crate::model::Params;
use crate::train::Y_RANGE_LIMIT;

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

/// One tensor ready to serialise: name, element type, shape and little-endian bytes.
struct NamedTensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl NamedTensor {
    /// A one-dimensional tensor of `values`, each written by `to_le` as `dtype`.
    fn vector<T: Copy, const N: usize>(
        name: &str,
        dtype: Dtype,
        values: &[T],
        to_le: impl Fn(T) -> [u8; N],
    ) -> NamedTensor {
        NamedTensor {
            name: name.to_string(),
            dtype,
            shape: vec![values.len()],
            bytes: values.iter().flat_map(|&x| to_le(x)).collect(),
        }
    }
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
            dtype: Dtype::F32,
            shape,
            bytes: tensor.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
        .collect()
}

/// The metadata key of the file's checksum ([`checksum`]).
pub const CHECKSUM_KEY: &str = "checksum";

/// The checksum both formats carry under [`CHECKSUM_KEY`]: `sha256:` and the lowercase hex
/// SHA-256 of, first, every other metadata entry in byte order of the keys (key, a zero byte,
/// value, a zero byte), then every tensor in byte order of the names (name, a zero byte, its
/// little-endian data bytes). Any flipped byte of the ids, the configuration or a parameter
/// changes it; other tools can recompute it from the file alone
/// (`scripts/check_model_python.py` does).
fn checksum<'t>(
    metadata: &HashMap<String, String>,
    tensors: impl IntoIterator<Item = (&'t str, &'t [u8])>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut entries: Vec<(&String, &String)> = metadata
        .iter()
        .filter(|(key, _)| key.as_str() != CHECKSUM_KEY)
        .collect();
    entries.sort();
    for (key, value) in entries {
        for part in [key.as_bytes(), &[0], value.as_bytes(), &[0]] {
            hasher.update(part);
        }
    }
    let mut tensors: Vec<(&str, &[u8])> = tensors.into_iter().collect();
    tensors.sort_by_key(|&(name, _)| name);
    for (name, bytes) in tensors {
        for part in [name.as_bytes(), &[0], bytes] {
            hasher.update(part);
        }
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The safetensors bytes of `tensors` with `metadata` and their [`checksum`].
fn serialize(
    tensors: &[NamedTensor],
    mut metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let sum = checksum(
        &metadata,
        tensors
            .iter()
            .map(|t| (t.name.as_str(), t.bytes.as_slice())),
    );
    metadata.insert(CHECKSUM_KEY.to_string(), sum);
    let mut views = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let view = TensorView::new(tensor.dtype, tensor.shape.clone(), &tensor.bytes)
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

    /// Recomputes the [`checksum`] and compares it with the stored one. `Ok(false)` when the
    /// file has none (written before checksums existed: it loads unverified); the error says
    /// what differs.
    fn verify_checksum(&self) -> Result<bool, String> {
        let Some(stored) = self.metadata.get(CHECKSUM_KEY) else {
            return Ok(false);
        };
        let tensors = self.tensors.tensors();
        let actual = checksum(
            &self.metadata,
            tensors
                .iter()
                .map(|(name, view)| (name.as_str(), view.data())),
        );
        match stored.eq_ignore_ascii_case(&actual) {
            true => Ok(true),
            false => Err(format!(
                "checksum mismatch (the file records {}, its contents give {actual})",
                shorten(stored)
            )),
        }
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

    /// Whether the file has a tensor named `name`.
    fn has_tensor(&self, name: &str) -> bool {
        self.tensors.names().contains(&name)
    }

    /// The one-dimensional tensor `name`, which must be `dtype` with `len` entries (`None`: any
    /// length), each decoded by `from_le`.
    fn vector<T, const N: usize>(
        &self,
        name: &str,
        dtype: Dtype,
        len: Option<usize>,
        from_le: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, String> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
        let shape = view.shape();
        if view.dtype() != dtype || shape.len() != 1 || len.is_some_and(|n| shape[0] != n) {
            let expected = match len {
                Some(n) => format!("[{n}]"),
                None => "one-dimensional".to_string(),
            };
            return Err(format!(
                "tensor `{name}` is {:?} {shape:?}, expected {dtype:?} {expected}",
                view.dtype()
            ));
        }
        Ok(view
            .data()
            .chunks_exact(N)
            .map(|b| from_le(b.try_into().expect("N bytes")))
            .collect())
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

/// At most 80 characters of `text`, for messages about values read from a file.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Checks what a model file and a checkpoint share, after parsing: K, the y-range, that every
/// parameter is finite (each `Params` comes with the prefix of its tensor names).
fn check_loaded(
    factors: usize,
    y_range: Option<(f32, f32)>,
    params: &[(&str, &Params)],
) -> Result<(), String> {
    if factors == 0 {
        return Err("K (`factors` in metadata `config`) is 0; a model needs K >= 1".into());
    }
    if let Some((lo, hi)) = y_range
        && !(lo.is_finite()
            && hi.is_finite()
            && lo < hi
            && lo.abs() <= Y_RANGE_LIMIT
            && hi.abs() <= Y_RANGE_LIMIT)
    {
        return Err(format!(
            "metadata `y_range` is [{lo}, {hi}]; it must be finite with LO < HI, each within \
             +-{Y_RANGE_LIMIT:e}"
        ));
    }
    for (prefix, params) in params {
        for (name, tensor) in Params::TENSOR_NAMES.iter().zip(params.tensors()) {
            if let Some(index) = tensor.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "tensor `{prefix}{name}` holds {} at index {index}; every parameter must be finite",
                    tensor[index]
                ));
            }
        }
    }
    Ok(())
}

/// `value` as a JSON string: floats in their shortest form (`0.005`, not `0.004999999888`).
fn json_string<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serialises")
}
