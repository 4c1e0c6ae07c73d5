//! `collabgpu eval`: MSE, RMSE and MAE of a model on a ratings set.

use std::io::Write;

use anyhow::Context;
use collabgpu::inspect::evaluate;

use super::data_args::DataArgs;
use super::model_args::{ModelArgs, keyed_by_title, options_for};

/// Arguments of `collabgpu eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub data: DataArgs,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let options = options_for(&model, args.data.load_options()?);
    let dataset = collabgpu::data::load(&args.data.data, &options)
        .with_context(|| format!("cannot read --data {}", args.data.data))?;
    let report = evaluate(&model, &dataset);
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        json["data"] = dataset.source.clone().into();
        json["model"] = args.model.model.display().to_string().into();
        writeln!(out, "{json}")?;
    } else {
        writeln!(
            out,
            "{}: model {}",
            dataset.source,
            args.model.model.display()
        )?;
        writeln!(out, "{report}")?;
        if report.evaluated == 0 && report.ratings > 0 {
            let hint = match keyed_by_title(&model) {
                true => "the model keys items by title; does this data set have titles?",
                false => "are these the same kind of ids the model was trained on?",
            };
            writeln!(
                out,
                "note: the model knows none of these ratings' users or items; {hint}"
            )?;
        }
    }
    Ok(())
}
