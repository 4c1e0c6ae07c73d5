//! `collabgpu recommend`: a user's top-N items among those they have not rated.

use std::io::Write;

use std::collections::HashSet;

use collabgpu::inspect::{find_user, rated_by, recommend};
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
    /// data-set name), usually the training data.
    #[arg(long, value_name = "PATH|NAME")]
    pub exclude_rated: Option<String>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RecommendArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let user = find_user(&model, &args.user)?;
    let (rated, excluded_note) = match &args.exclude_rated {
        Some(data) => {
            let dataset = load_data_for(&model, data, "--exclude-rated")?;
            match rated_by(&model, &dataset, model.users.raw(user)) {
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
            }
        }
        None => (
            HashSet::new(),
            "items they rated are included; give --exclude-rated DATA to leave them out"
                .to_string(),
        ),
    };
    let top = recommend(&model, user, &rated, args.n);
    if args.json {
        let line = json!({
            "user": model.users.raw(user),
            "excluded": rated.len(),
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
