//! `collabgpu biases`: the lowest and highest learned biases, beside the mean rating and count.

use std::io::Write;

use collabgpu::inspect::{BiasRow, RatingCounts, bias_table};

use super::model_args::{ModelArgs, load_data_for, title_or_dash};

/// Arguments of `collabgpu biases`.
#[derive(Debug, clap::Args)]
pub struct BiasesArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// How many of the lowest and of the highest to list.
    #[arg(long, default_value_t = 10)]
    pub n: usize,

    /// User biases instead of item biases.
    #[arg(long)]
    pub users: bool,

    /// Ratings to show each one's mean rating and number of ratings from (a MovieLens directory or
    /// file, or a data-set name), usually the training data.
    #[arg(long, value_name = "PATH|NAME")]
    pub data: Option<String>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BiasesArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let counts = match &args.data {
        Some(data) => {
            let dataset = load_data_for(&model, data, "--data")?;
            Some(RatingCounts::of(&model, &dataset))
        }
        None => None,
    };
    let table = bias_table(&model, args.users, counts.as_ref(), args.n);
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&table)?)?;
        return Ok(());
    }
    let what = if args.users { "user" } else { "item" };
    if counts.is_none() {
        writeln!(
            out,
            "(biases only: give --data DATA for each {what}'s mean rating and number of ratings)"
        )?;
    }
    for (heading, rows) in [("Lowest", &table.lowest), ("Highest", &table.highest)] {
        writeln!(out, "{heading} {what} biases:")?;
        writeln!(
            out,
            "{:>8}  {:>6}  {:>7}  {:<8}  {}",
            "bias",
            "mean",
            "ratings",
            "id",
            if args.users { "" } else { "title" }
        )?;
        for row in rows {
            writeln!(out, "{}", format_row(row))?;
        }
    }
    Ok(())
}

fn format_row(row: &BiasRow) -> String {
    let mean = row
        .mean_rating
        .map_or("-".to_string(), |m| format!("{m:.2}"));
    let count = row.ratings.map_or("-".to_string(), |c| c.to_string());
    format!(
        "{:>8.4}  {:>6}  {:>7}  {:<8}  {}",
        row.bias,
        mean,
        count,
        row.id,
        if row.title.is_some() {
            title_or_dash(&row.title)
        } else {
            ""
        }
    )
    .trim_end()
    .to_string()
}
