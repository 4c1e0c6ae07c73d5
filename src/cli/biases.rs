//! `collabgpu biases`: the lowest and highest learned biases, beside the mean rating and count.

use std::io::Write;

use collabgpu::inspect::{BiasRow, bias_table};

use super::model_args::{ItemColumns, ModelArgs, rating_counts};

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
    /// file, or a data-set name). Default: the model's own record of its training ratings.
    #[arg(long, value_name = "PATH|NAME")]
    pub data: Option<String>,

    /// List only those with at least this many ratings (in training, or in --data). 0, the
    /// default, lists all, as fastai's chapter 8 does.
    #[arg(long, default_value_t = 0)]
    pub min_ratings: usize,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BiasesArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let model = args.model.load()?;
    let counts = rating_counts(&model, args.data.as_deref())?;
    let table = bias_table(
        &model,
        args.users,
        counts.as_ref().map(|c| &c.counts),
        args.min_ratings,
        args.n,
    );
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&table)?)?;
        return Ok(());
    }
    let what = if args.users { "user" } else { "item" };
    match &counts {
        None => writeln!(
            out,
            "(biases only: the model records no rating counts; give --data DATA for each \
             {what}'s mean rating and number of ratings)"
        )?,
        Some(c) => {
            let among = match args.min_ratings {
                0 => String::new(),
                n => format!(", among {what}s with at least {n}"),
            };
            writeln!(
                out,
                "(mean rating and number of ratings in {}{among})",
                c.source
            )?
        }
    }
    let listed = table.lowest.iter().chain(&table.highest);
    let columns = ItemColumns::new(&model, listed.map(|row| row.id.as_str()));
    for (heading, rows) in [("Lowest", &table.lowest), ("Highest", &table.highest)] {
        writeln!(out, "{heading} {what} biases:")?;
        let ids = match args.users {
            true => "id".to_string(),
            false => columns.header(),
        };
        writeln!(out, "{:>8}  {:>6}  {:>7}  {ids}", "bias", "mean", "ratings")?;
        for row in rows {
            writeln!(out, "{}", format_row(row, &columns, args.users))?;
        }
    }
    Ok(())
}

fn format_row(row: &BiasRow, columns: &ItemColumns, users: bool) -> String {
    let mean = row
        .mean_rating
        .map_or("-".to_string(), |m| format!("{m:.2}"));
    let count = row.ratings.map_or("-".to_string(), |c| c.to_string());
    let who = match users {
        true => row.id.clone(),
        false => columns.cells(&row.id, &row.title),
    };
    format!("{:>8.4}  {:>6}  {:>7}  {who}", row.bias, mean, count)
        .trim_end()
        .to_string()
}
