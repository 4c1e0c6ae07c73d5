//! `collabgpu predict`: the model's rating for one user and one item.

use std::io::Write;

use collabgpu::inspect::{find_item, find_user, item_title};
use serde_json::json;

use super::model_args::ModelArgs;

/// Arguments of `collabgpu predict`.
#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The user's raw id, as in the data file.
    #[arg(long)]
    pub user: String,

    /// The item's raw id as in the data file (or a part of its title that names one item).
    #[arg(long)]
    pub item: String,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let user = find_user(&model, &args.user)?;
    let item = find_item(&model, &args.item)?;
    let raw_score = model.params.raw_score(user, item);
    let prediction = model.params.predict(user, item, model.config.y_range);
    if args.json {
        let line = json!({
            "user": model.users.raw(user),
            "item": model.items.raw(item),
            "title": model.titles.as_ref().map(|_| item_title(&model, item)),
            "prediction": prediction,
            "raw_score": raw_score,
        });
        writeln!(out, "{line}")?;
    } else {
        let title = match &model.titles {
            Some(_) => format!(" ({})", item_title(&model, item)),
            None => String::new(),
        };
        writeln!(
            out,
            "user {}, item {}{title}: predicted rating {prediction:.4}",
            model.users.raw(user),
            model.items.raw(item)
        )?;
    }
    Ok(())
}
