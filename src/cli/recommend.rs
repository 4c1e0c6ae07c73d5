//! `collabgpu recommend`: a user's top-N items among those they have not rated.

use std::io::Write;

use std::collections::HashSet;

use anyhow::bail;
use collabgpu::files::ModelFile;
use collabgpu::inspect::{RatingCounts, find_user, rated_by, rated_in_training, recommend};
use serde_json::json;

use super::model_args::{ModelArgs, load_data_for, title_or_dash};

/// Arguments of `collabgpu recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The user's raw id, as in the data file.
    #[arg(long)]
    pub user: String,

    /// How many items to list.
    #[arg(long, default_value_t = 10)]
    pub n: usize,

    /// Leave out the items this user rated in these ratings (a MovieLens directory or file, or a
    /// data-set name). Default: the items they rated in the model's training ratings.
    #[arg(long, value_name = "PATH|NAME", conflicts_with = "include_rated")]
    pub exclude_rated: Option<String>,

    /// List items the user already rated too.
    #[arg(long)]
    pub include_rated: bool,

    /// Recommend only items with at least this many training ratings (0: any item).
    #[arg(long, default_value_t = 0)]
    pub min_ratings: usize,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RecommendArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let user = find_user(&model, &args.user)?;
    let (rated, excluded_note) = excluded(args, &model, user)?;
    let mut skip = rated.clone();
    if args.min_ratings > 0 {
        let Some(counts) = RatingCounts::of_training(&model) else {
            bail!(
                "--min-ratings needs the model's training rating counts, which {} does not \
                 record (it was written before models kept them); retrain with --out",
                args.model.model.display()
            );
        };
        skip.extend(
            (0..model.items.len() as u32)
                .filter(|&i| counts.items[i as usize].1 < args.min_ratings),
        );
    }
    let top = recommend(&model, user, &skip, args.n);
    if args.json {
        let line = json!({
            "user": model.users.raw(user),
            "excluded": rated.len(),
            "min_ratings": args.min_ratings,
            "recommendations": top,
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "Top {} items for user {} ({excluded_note}):",
        top.len(),
        model.users.raw(user)
    )?;
    writeln!(out, "{:>4}  {:>9}  {:<8}  title", "rank", "predicted", "id")?;
    for (rank, item) in top.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:>9.4}  {:<8}  {}",
            rank + 1,
            item.score,
            item.id,
            title_or_dash(&item.title)
        )?;
    }
    Ok(())
}

/// The items to leave out as already rated, and a note saying which and why.
fn excluded(
    args: &RecommendArgs,
    model: &ModelFile,
    user: u32,
) -> anyhow::Result<(HashSet<u32>, String)> {
    if args.include_rated {
        return Ok((HashSet::new(), "items they rated are included".to_string()));
    }
    if let Some(data) = &args.exclude_rated {
        let dataset = load_data_for(model, data, "--exclude-rated")?;
        return Ok(match rated_by(model, &dataset, model.users.raw(user)) {
            Some(rated) => {
                let note = format!(
                    "leaving out the {} items they rated in {}",
                    rated.len(),
                    dataset.source
                );
                (rated, note)
            }
            None => (
                HashSet::new(),
                format!(
                    "they have no ratings in {}, so nothing is left out",
                    dataset.source
                ),
            ),
        });
    }
    Ok(match rated_in_training(model, user) {
        Some(rated) => {
            let note = format!(
                "leaving out the {} items they rated in training",
                rated.len()
            );
            (rated, note)
        }
        None => (
            HashSet::new(),
            "items they rated are included: the model records no training ratings; give \
             --exclude-rated DATA to leave them out"
                .to_string(),
        ),
    })
}
