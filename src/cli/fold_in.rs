//! `collabgpu fold-in`: add users who were not in training to a model, from a CSV of their ratings.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use collabgpu::atomic_file::check_output;
use collabgpu::inspect::fold_in::{DEFAULT_LAMBDA, NewRatings, fold_in};
use serde_json::json;

use super::model_args::ModelArgs;

/// Arguments of `collabgpu fold-in`.
#[derive(Debug, clap::Args)]
pub struct FoldInArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The new users' ratings: a CSV file whose header names `user`, `item` and `rating` columns
    /// (others are ignored). Users are new raw ids; items are the model's raw ids or whole titles
    /// (quote titles with commas: "Silence of the Lambs, The (1991)").
    #[arg(long, value_name = "NEW.csv")]
    pub ratings: PathBuf,

    /// The model to write: the input model with the new users added.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Ridge penalty on each new user's factors and bias; larger keeps users with few ratings
    /// nearer to the average user.
    #[arg(long, default_value_t = DEFAULT_LAMBDA, allow_negative_numbers = true)]
    pub lambda: f64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &FoldInArgs) -> anyhow::Result<()> {
    check_output(&args.out).context("--out")?;
    let model = args.model.load()?;
    let new = NewRatings::read(&args.ratings, &model)
        .with_context(|| format!("cannot read --ratings {}", args.ratings.display()))?;
    let folded = fold_in(&model, &new, args.lambda)?;
    folded
        .save(&args.out)
        .with_context(|| format!("saving --out {}", args.out.display()))?;
    let mut out = std::io::stdout().lock();
    let users: Vec<_> = new
        .users
        .iter()
        .zip(&new.ratings)
        .map(|(user, ratings)| {
            let index = folded.users.index_of(user).expect("a folded-in user");
            json!({
                "user": user,
                "ratings": ratings.len(),
                "bias": folded.params.user_bias[index as usize],
            })
        })
        .collect();
    if args.json {
        let line = json!({
            "out": args.out.display().to_string(),
            "users": users,
            "model_users": folded.users.len(),
            "lambda": args.lambda,
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "folded {} new user{} ({} ratings, lambda {}) into {} ({} users)",
        new.users.len(),
        if new.users.len() == 1 { "" } else { "s" },
        new.len(),
        args.lambda,
        args.out.display(),
        folded.users.len()
    )?;
    for user in &users {
        writeln!(
            out,
            "  user {:<10} {:>5} ratings  bias {:>8.4}",
            user["user"].as_str().unwrap_or(""),
            user["ratings"],
            user["bias"].as_f64().unwrap_or(0.0)
        )?;
    }
    Ok(())
}
