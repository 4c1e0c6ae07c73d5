//! `collabgpu similar`: the items nearest to one item by cosine similarity of item factors.

use std::io::Write;

use collabgpu::inspect::{find_item, item_title, similar_items_where};
use serde_json::json;

use super::model_args::{ItemColumns, ModelArgs, rating_counts};

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
    /// in. Default: the model's own record of its training ratings.
    #[arg(long, value_name = "PATH|NAME")]
    pub data: Option<String>,

    /// List only items with at least this many ratings (in training, or in --data): rarely rated
    /// items keep factors that are mostly noise. 0 lists every item.
    #[arg(long, default_value_t = 20)]
    pub min_ratings: usize,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &SimilarArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let item = find_item(&model, &args.item)?;
    let counts = rating_counts(&model, args.data.as_deref())?;
    let neighbours = similar_items_where(&model, item, args.n, &|other| {
        counts
            .as_ref()
            .is_none_or(|c| c.counts.items[other as usize].1 >= args.min_ratings)
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
        "Items most similar to {}{}, by cosine similarity of item factors{}:",
        item_title(&model, item),
        match model.keyed_by_title() {
            true => String::new(),
            false => format!(" (id {})", model.items.raw(item)),
        },
        match &counts {
            Some(c) if args.min_ratings > 0 => format!(
                ", among items with at least {} ratings in {}",
                args.min_ratings, c.source
            ),
            Some(_) => String::new(),
            None => ", among all items (the model records no rating counts: give --data to \
                      leave out rarely rated ones)"
                .to_string(),
        }
    )?;
    let columns = ItemColumns::new(&model, neighbours.iter().map(|n| n.id.as_str()));
    writeln!(
        out,
        "{:>4}  {:>10}  {}",
        "rank",
        "similarity",
        columns.header()
    )?;
    for (rank, other) in neighbours.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:>10.4}  {}",
            rank + 1,
            other.score,
            columns.cells(&other.id, &other.title)
        )?;
    }
    Ok(())
}
