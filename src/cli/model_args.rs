//! What the inspection commands share: the `--model` flag, reading the model, and reading a data
//! set keyed the way the model is.

use std::path::{Path, PathBuf};

use anyhow::Context;
use collabgpu::data::{Dataset, ItemKey, LoadOptions};
use collabgpu::files::ModelFile;
use collabgpu::inspect::RatingCounts;

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

/// How a text table writes its item columns: the raw id padded to the longest listed id, then the
/// title; or the title alone for a model keyed by title (whose ids are its titles), so the title
/// is not written twice.
pub struct ItemColumns {
    title_only: bool,
    width: usize,
}

impl ItemColumns {
    /// The columns for a table of the items `ids`.
    pub fn new<'a>(model: &ModelFile, ids: impl IntoIterator<Item = &'a str>) -> ItemColumns {
        let longest = ids.into_iter().map(|id| id.chars().count()).max();
        ItemColumns {
            title_only: model.keyed_by_title(),
            width: longest.unwrap_or(0).max(2),
        }
    }

    /// The heading of the item columns.
    pub fn header(&self) -> String {
        match self.title_only {
            true => "title".to_string(),
            false => format!("{:<w$}  title", "id", w = self.width),
        }
    }

    /// One row's item columns: `-` for a missing title.
    pub fn cells(&self, id: &str, title: &Option<String>) -> String {
        let title = title.as_deref().unwrap_or("-");
        match self.title_only {
            true => title.to_string(),
            false => format!("{id:<w$}  {title}", w = self.width),
        }
    }
}

/// Each user's and item's rating count and sum, and where they came from (for messages).
pub struct Counts {
    pub counts: RatingCounts,
    /// `the training ratings` or the data set's source.
    pub source: String,
}

/// The rating counts of `--data` when given, else those the model recorded of its training
/// ratings, else `None` (a model written before models kept them, and no `--data`).
pub fn rating_counts(model: &ModelFile, data: Option<&str>) -> anyhow::Result<Option<Counts>> {
    Ok(match data {
        Some(data) => {
            let dataset = load_data_for(model, data, "--data")?;
            Some(Counts {
                counts: RatingCounts::of(model, &dataset),
                source: dataset.source.clone(),
            })
        }
        None => RatingCounts::of_training(model).map(|counts| Counts {
            counts,
            source: "the training ratings".to_string(),
        }),
    })
}
