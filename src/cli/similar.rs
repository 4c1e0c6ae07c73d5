//! `collabgpu similar`: the items nearest to one item by cosine similarity of item factors.

use collabgpu::inspect::{find_item, item_title, similar_items};
use serde_json::json;

use super::model_args::{ModelArgs, title_or_dash};

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

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &SimilarArgs) -> anyhow::Result<()> {
    let model = args.model.load()?;
    let item = find_item(&model, &args.item)?;
    let neighbours = similar_items(&model, item, args.n);
    if args.json {
        let line = json!({
            "item": model.items.raw(item),
            "title": model.titles.as_ref().map(|_| item_title(&model, item)),
            "similar": neighbours,
        });
        println!("{line}");
        return Ok(());
    }
    println!(
        "Items most similar to {} (id {}), by cosine similarity of item factors:",
        item_title(&model, item),
        model.items.raw(item)
    );
    println!("{:>4}  {:>10}  {:<8}  title", "rank", "similarity", "id");
    for (rank, other) in neighbours.iter().enumerate() {
        println!(
            "{:>4}  {:>10.4}  {:<8}  {}",
            rank + 1,
            other.score,
            other.id,
            title_or_dash(&other.title)
        );
    }
    Ok(())
}
