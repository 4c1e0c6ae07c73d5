//! `collabgpu recommend`: a user's top-N items among those they have not rated.

use std::io::Write;

use std::collections::HashSet;

use std::path::PathBuf;

use anyhow::{Context, bail};
use collabgpu::data::canonical_id;
use collabgpu::files::ModelFile;
use collabgpu::inspect::fold_in::{DEFAULT_LAMBDA, NewRatings, fold_in};
use collabgpu::inspect::{RatingCounts, find_user, rated_by, rated_in_training, recommend};
use serde_json::json;

use super::model_args::{ItemColumns, ModelArgs, load_data_for};

/// Arguments of `collabgpu recommend`.
#[derive(Debug, clap::Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The user's raw id, as in the data file (or in --ratings). May be left out when --ratings
    /// holds one user.
    #[arg(long, required_unless_present = "ratings")]
    pub user: Option<String>,

    /// Recommend for users who were not in training, from their ratings: a CSV file with a header
    /// naming `user`, `item` and `rating` (items as raw ids or whole titles), as `fold-in` reads.
    /// They are folded in for this command only; their rated items are left out.
    #[arg(long, value_name = "NEW.csv", conflicts_with = "exclude_rated")]
    pub ratings: Option<PathBuf>,

    /// With --ratings: the fold-in's ridge penalty (see `fold-in --help`).
    #[arg(long, default_value_t = DEFAULT_LAMBDA, requires = "ratings", allow_negative_numbers = true)]
    pub lambda: f64,

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
    let (model, user, new_rated) = match &args.ratings {
        Some(path) => {
            let new = NewRatings::read(path, &model)
                .with_context(|| format!("cannot read --ratings {}", path.display()))?;
            let raw = match (&args.user, new.users.as_slice()) {
                (Some(user), _) => canonical_id(user).into_owned(),
                (None, [one]) => one.clone(),
                (None, many) => bail!(
                    "--ratings {} holds {} users; name one with --user",
                    path.display(),
                    many.len()
                ),
            };
            if !new.users.contains(&raw) {
                bail!(
                    "user {raw:?} has no ratings in --ratings {}",
                    path.display()
                );
            }
            let folded = fold_in(&model, &new, args.lambda)?;
            let user = find_user(&folded, &raw)?;
            let slot = new.users.iter().position(|u| *u == raw).expect("checked");
            let rated: HashSet<u32> = new.ratings[slot].iter().map(|&(item, _)| item).collect();
            (folded, user, Some(rated))
        }
        None => {
            let user = find_user(&model, args.user.as_deref().expect("clap requires --user"))?;
            (model, user, None)
        }
    };
    let (rated, excluded_note) = match new_rated {
        Some(rated) if !args.include_rated => {
            let note = format!(
                "folded in from --ratings; leaving out the {} items they rated there",
                rated.len()
            );
            (rated, note)
        }
        _ => excluded(args, &model, user)?,
    };
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
    let columns = ItemColumns::new(&model, top.iter().map(|item| item.id.as_str()));
    writeln!(
        out,
        "{:>4}  {:>9}  {}",
        "rank",
        "predicted",
        columns.header()
    )?;
    for (rank, item) in top.iter().enumerate() {
        writeln!(
            out,
            "{:>4}  {:>9.4}  {}",
            rank + 1,
            item.score,
            columns.cells(&item.id, &item.title)
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
