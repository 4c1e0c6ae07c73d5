//! What the inspection commands share: the `--model` flag, reading the model, and reading a data
//! set keyed the way the model is.

use std::path::{Path, PathBuf};

use anyhow::Context;
use collabgpu::data::{Dataset, ItemKey, LoadOptions};
use collabgpu::files::ModelFile;

/// The trained model to inspect.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// The model file that `collabgpu train --out FILE` wrote.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
}

impl ModelArgs {
    /// Reads the model, naming the flag in the error.
    pub fn load(&self) -> anyhow::Result<ModelFile> {
        load_model(&self.model)
    }
}

/// Reads a model file, naming the flag in the error.
pub fn load_model(path: &Path) -> anyhow::Result<ModelFile> {
    ModelFile::load(path).with_context(|| format!("cannot read --model {}", path.display()))
}

/// `options` with the item key the model was trained with.
pub fn options_for(model: &ModelFile, mut options: LoadOptions) -> LoadOptions {
    if model.keyed_by_title() {
        options.item_key = ItemKey::Title;
    }
    options
}

/// Reads `data` (a MovieLens directory or file, or a data-set name) keyed as the model is.
pub fn load_data_for(model: &ModelFile, data: &str, flag: &str) -> anyhow::Result<Dataset> {
    collabgpu::data::load(data, &options_for(model, LoadOptions::default()))
        .with_context(|| format!("cannot read {flag} {data}"))
}

/// A title for text tables, or `-` when the model has none.
pub fn title_or_dash(title: &Option<String>) -> &str {
    title.as_deref().unwrap_or("-")
}
