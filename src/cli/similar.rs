//! `collabgpu similar`: the items nearest to one item by cosine similarity of item factors.

use std::io::Write;

use collabgpu::inspect::{RatingCounts, find_item, item_title, similar_items_where};
use serde_json::json;

use super::model_args::{ModelArgs, load_data_for, title_or_dash};

/// Arguments of `collabgpu similar`.
#[derive(Debug, clap::Args)]
pub struct SimilarArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The item: its raw id, or a part of its title in any case ("silence of the lambs"). When
    /// several titles match, the candidates are listed.
    #[arg(long)]
    pub item: String,

    /// How many items to list.
    #[arg(long, default_value_t = 10)]
    pub n: usize,

    /// Ratings (a MovieLens directory or file, or a data-set name) to count each item's ratings
    /// in, so that rarely rated items, whose factors are mostly noise, can be left out.
    #[arg(long, value_name = "PATH|NAME")]
    pub data: Option<String>,

    /// With --data: list only items with at least this many ratings there.
    #[arg(long, default_value_t = 20, requires = "data")]
    pub min_ratings: usize,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &SimilarArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let item = find_item(&model, &args.item)?;
    let counts = match &args.data {
        Some(data) => Some(RatingCounts::of(
            &model,
            &load_data_for(&model, data, "--data")?,
        )),
        None => None,
    };
    let neighbours = similar_items_where(&model, item, args.n, &|other| {
        counts
            .as_ref()
            .is_none_or(|c| c.items[other as usize].1 >= args.min_ratings)
    });
    if args.json {
        let line = json!({
            "item": model.items.raw(item),
            "title": model.titles.as_ref().map(|_| item_title(&model, item)),
            "min_ratings": counts.as_ref().map(|_| args.min_ratings),
            "similar": neighbours,
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "Items most similar to {} (id {}), by cosine similarity of item factors{}:",
        item_title(&model, item),
        model.items.raw(item),
        match &counts {
            Some(_) => format!(", among items with at least {} ratings", args.min_ratings),
            None => String::new(),
        }
    )?;
    writeln!(
        out,
        "{:>4}  {:>10}  {:<8}  title",
        "rank", "similarity", "id"
    )?;
    for (rank, other) in neighbours.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:>10.4}  {:<8}  {}",
            rank + 1,
            other.score,
            other.id,
            title_or_dash(&other.title)
        )?;
    }
    Ok(())
}
