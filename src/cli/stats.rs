//! `collabgpu stats`: describe a data set.

use std::io::Write;

use anyhow::Context;
use collabgpu::data::{self, stats::DatasetStats};

use super::data_args::DataArgs;

/// Arguments of `collabgpu stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Print one JSON object (users, items, ratings, rating_histogram, ...) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let options = args.data.load_options()?;
    let dataset = data::load(&args.data.data, &options)
        .with_context(|| format!("cannot read --data {}", args.data.data))?;
    let stats = DatasetStats::of(&dataset);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
    } else {
        writeln!(out, "{stats}")?;
    }
    Ok(())
}
