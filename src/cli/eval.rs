//! `collabgpu eval`: MSE, RMSE and MAE of a model on its held-out ratings (or its training ratings,
//! or a whole ratings set), and ranking metrics on the held-out ratings.

use std::io::Write;

use anyhow::{Context, bail};
use collabgpu::cpu::backend::mean_squared_error;
use collabgpu::data::split::Fold;
use collabgpu::data::{Dataset, Ratings, split_dataset, split_dataset_fold};
use collabgpu::files::{ModelFile, fold_path};
use collabgpu::inspect::{EvalReport, RankingOptions, RankingReport, evaluate, evaluate_ranking};
use serde_json::json;

use super::data_args::DataArgs;
use super::folds::{self, FoldMetric};
use super::model_args::{ModelArgs, load_model, options_for};

/// Arguments of `collabgpu eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub data: DataArgs,

    /// Which ratings to score. `valid`: the held-out ratings, split again exactly as `train` split
    /// them (the model file records how; the data must be the same, which its fingerprint checks),
    /// so the MSE equals train's last `valid_loss`. `train`: the ratings it trained on. `all`:
    /// every rating of --data. Default: `valid` when the model records its split, else `all`.
    #[arg(long, value_enum)]
    pub split: Option<EvalSplit>,

    /// Ranking metrics on the held-out ratings, comma-separated: ndcg@K, recall@K, map@K, hr@K
    /// (e.g. ndcg@10,recall@20). Each user's list ranks every item they did not rate in training.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub metrics: Vec<String>,

    /// A held-out rating at or above this makes its item relevant to the user (ranking metrics).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub relevant: f32,

    /// Score the K models of `train --folds K --out M`: M.fold1 ... M.foldK, each on the fold it
    /// held out, and report each metric's mean and spread over the folds.
    #[arg(long, value_name = "K", conflicts_with = "split")]
    pub folds: Option<usize>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalSplit {
    Valid,
    Train,
    All,
}

impl EvalSplit {
    fn name(self) -> &'static str {
        match self {
            EvalSplit::Valid => "valid",
            EvalSplit::Train => "train",
            EvalSplit::All => "all",
        }
    }
}

/// One requested ranking metric.
#[derive(Debug, Clone, PartialEq)]
struct Metric {
    name: &'static str,
    k: usize,
}

impl Metric {
    fn parse(text: &str) -> anyhow::Result<Metric> {
        let usage = "a ranking metric is ndcg@K, recall@K, map@K or hr@K with K >= 1, e.g. ndcg@10";
        let Some((name, k)) = text.trim().split_once('@') else {
            bail!("--metrics {text:?}: {usage}");
        };
        let name = match name.to_ascii_lowercase().as_str() {
            "ndcg" => "ndcg",
            "recall" => "recall",
            "map" => "map",
            "hr" | "hit" | "hit_rate" => "hr",
            _ => bail!("--metrics {text:?}: unknown metric {name:?}; {usage}"),
        };
        let k = match k.trim().parse::<usize>() {
            Ok(k) if k >= 1 => k,
            _ => bail!("--metrics {text:?}: K must be a whole number of at least 1; {usage}"),
        };
        Ok(Metric { name, k })
    }

    fn label(&self) -> String {
        format!("{}@{}", self.name, self.k)
    }

    fn value(&self, report: &RankingReport) -> Option<f64> {
        match self.name {
            "ndcg" => report.ndcg,
            "recall" => report.recall,
            "map" => report.map,
            _ => report.hit_rate,
        }
    }
}

/// What `eval` scored: the ratings, how they were chosen, and the training ratings beside them
/// when the model's split was recreated.
struct Scored {
    dataset: Dataset,
    split: EvalSplit,
    /// The split's training ratings (`None` for `--split all`).
    train: Option<Ratings>,
    /// Whether `dataset.ratings` is exactly a split the model was trained with.
    exact_split: bool,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let metrics = args
        .metrics
        .iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| Metric::parse(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !args.relevant.is_finite() {
        bail!("--relevant must be a number, got {}", args.relevant);
    }
    if let Some(count) = args.folds {
        return eval_folds(args, count, &metrics);
    }
    let model = args.model.load()?;
    let split = args.split.unwrap_or(match model.split {
        Some(_) => EvalSplit::Valid,
        None => EvalSplit::All,
    });
    if !metrics.is_empty() && split != EvalSplit::Valid {
        bail!(
            "--metrics ranks each user's held-out items, so it needs --split valid (got --split {})",
            split.name()
        );
    }
    let options = options_for(&model, args.data.load_options()?);
    let dataset = collabgpu::data::load(&args.data.data, &options)
        .with_context(|| format!("cannot read --data {}", args.data.data))?;
    let scored = choose(&model, &args.model.model, args, dataset, split)?;
    let report = score(&model, &scored)?;
    let ranking = ranking_reports(&model, &scored, &metrics, args.relevant);
    print(args, &model, &scored, &report, &metrics, &ranking)
}

/// MSE, RMSE and MAE of `model` on the chosen ratings; on an exact split the MSE is the very sum
/// the CPU trainer computes for `valid_loss`, so the two agree bit for bit.
fn score(model: &ModelFile, scored: &Scored) -> anyhow::Result<EvalReport> {
    let mut report = evaluate(model, &scored.dataset);
    if scored.exact_split && report.skipped == 0 && report.evaluated > 0 {
        let mse = mean_squared_error(&model.params, &scored.dataset.ratings, model.config.y_range)
            .context("starting the evaluation threads")?;
        report.mse = mse;
        report.rmse = mse.map(f64::sqrt);
    }
    Ok(report)
}

/// `eval --folds K`: each fold's model on the ratings it held out, then each metric's mean and
/// spread (the population standard deviation, as `train --folds` and Surprise report it).
fn eval_folds(args: &EvalArgs, count: usize, metrics: &[Metric]) -> anyhow::Result<()> {
    if !(2..=100).contains(&count) {
        bail!("--folds must be 2 to 100, as train --folds takes, got {count}");
    }
    let mut data: Option<Dataset> = None;
    let mut rows: Vec<FoldMetric> = ["mse", "rmse", "mae"]
        .iter()
        .map(|name| name.to_string())
        .chain(metrics.iter().map(Metric::label))
        .map(|name| FoldMetric {
            name,
            values: Vec::new(),
        })
        .collect();
    let mut paths = Vec::with_capacity(count);
    for index in 0..count {
        let path = fold_path(&args.model.model, index);
        let model = load_model(&path).with_context(|| {
            format!(
                "--folds {count} reads the models `train --folds {count} --out {}` writes",
                args.model.model.display()
            )
        })?;
        let recorded = model.split.as_ref().and_then(|s| s.fold);
        if recorded != Some(Fold { index, count }) {
            let got = match recorded {
                Some(f) => format!("fold {} of {}", f.index + 1, f.count),
                None => "no fold".to_string(),
            };
            bail!(
                "{} records {got}, not fold {} of {count}; was it written by `train --folds {count}`?",
                path.display(),
                index + 1
            );
        }
        if data.is_none() {
            let options = options_for(&model, args.data.load_options()?);
            data = Some(
                collabgpu::data::load(&args.data.data, &options)
                    .with_context(|| format!("cannot read --data {}", args.data.data))?,
            );
        }
        let dataset = data.clone().expect("read above");
        let scored = choose(&model, &path, args, dataset, EvalSplit::Valid)?;
        let report = score(&model, &scored)?;
        let ranking = ranking_reports(&model, &scored, metrics, args.relevant);
        let at = |k: usize| ranking.iter().find(|r| r.k == k);
        let values = [report.mse, report.rmse, report.mae]
            .into_iter()
            .chain(metrics.iter().map(|m| at(m.k).and_then(|r| m.value(r))));
        for (row, value) in rows.iter_mut().zip(values) {
            row.values.push(value);
        }
        paths.push(path.display().to_string());
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let line = json!({"folds": count, "models": paths, "metrics": folds::metrics_json(&rows)});
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{count} fold models of {}, each on the ratings it held out of {}:",
        args.model.model.display(),
        args.data.data
    )?;
    folds::write_table(&mut out, &rows)?;
    Ok(())
}

/// The ratings `split` names: recreated from the model's record for `valid` and `train`.
fn choose(
    model: &ModelFile,
    model_path: &std::path::Path,
    args: &EvalArgs,
    dataset: Dataset,
    split: EvalSplit,
) -> anyhow::Result<Scored> {
    if split == EvalSplit::All {
        return Ok(Scored {
            dataset,
            split,
            train: None,
            exact_split: false,
        });
    }
    let Some(record) = &model.split else {
        bail!(
            "{} does not record how its training data was split (it was written before models \
             recorded it, or not by `collabgpu train`), so its held-out ratings cannot be found \
             again; score every rating with --split all, or retrain with --out",
            model_path.display()
        );
    };
    let data = match record.fold {
        Some(fold) => split_dataset_fold(dataset, fold, record.seed),
        None => split_dataset(dataset, record.kind, record.valid_pct, record.seed),
    }
    .with_context(|| {
        format!(
            "splitting --data {} as the model's training run did",
            args.data.data
        )
    })?;
    if data.fingerprint != record.data {
        let shape = |f: &collabgpu::data::DataFingerprint| {
            format!(
                "{} users, {} items, {} training and {} held-out ratings, hash {:016x}",
                f.users, f.items, f.train_ratings, f.valid_ratings, f.hash
            )
        };
        bail!(
            "--data {} does not give the split the model was trained on: the model records {} \
             ({}), this data gives {}. Pass the --data (and --format, --columns, --item-key) of \
             the training run, or score every rating with --split all",
            args.data.data,
            record.source,
            shape(&record.data),
            shape(&data.fingerprint)
        );
    }
    let (chosen, train) = match split {
        EvalSplit::Valid => (data.valid, data.train),
        _ => (data.train.clone(), data.train),
    };
    let mut dataset = data.dataset;
    dataset.ratings = chosen;
    Ok(Scored {
        dataset,
        split,
        train: Some(train),
        exact_split: true,
    })
}

/// One ranking report per distinct `K` asked for.
fn ranking_reports(
    model: &ModelFile,
    scored: &Scored,
    metrics: &[Metric],
    relevant: f32,
) -> Vec<RankingReport> {
    let Some(train) = &scored.train else {
        return Vec::new();
    };
    let mut ks: Vec<usize> = metrics.iter().map(|m| m.k).collect();
    ks.sort_unstable();
    ks.dedup();
    ks.into_iter()
        .map(|k| {
            evaluate_ranking(
                model,
                &scored.dataset.users,
                &scored.dataset.items,
                train,
                &scored.dataset.ratings,
                RankingOptions { k, relevant },
            )
        })
        .collect()
}

fn print(
    args: &EvalArgs,
    model: &ModelFile,
    scored: &Scored,
    report: &EvalReport,
    metrics: &[Metric],
    ranking: &[RankingReport],
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let at = |k: usize| ranking.iter().find(|r| r.k == k);
    let dataset = &scored.dataset;
    if args.json {
        let mut value = serde_json::to_value(report)?;
        value["data"] = dataset.source.clone().into();
        value["model"] = args.model.model.display().to_string().into();
        value["split"] = scored.split.name().into();
        if !metrics.is_empty() {
            let values: serde_json::Map<String, serde_json::Value> = metrics
                .iter()
                .map(|m| (m.label(), json!(at(m.k).and_then(|r| m.value(r)))))
                .collect();
            value["metrics"] = values.into();
            value["ranking"] = serde_json::to_value(ranking)?;
        }
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let which = match (scored.split, &model.split) {
        (EvalSplit::Valid, Some(s)) => format!(
            "the held-out {}% the model was trained without ({} ratings)",
            s.valid_pct * 100.0,
            dataset.ratings.len()
        ),
        (EvalSplit::Train, _) => format!(
            "the {} ratings the model was trained on",
            dataset.ratings.len()
        ),
        _ => match model.split {
            Some(_) => "every rating, the training ones included".to_string(),
            None => "every rating (the model does not record its split, so this includes the \
                     ratings it was trained on)"
                .to_string(),
        },
    };
    writeln!(
        out,
        "{}: {which}; model {}",
        dataset.source,
        args.model.model.display()
    )?;
    writeln!(out, "{report}")?;
    for metric in metrics {
        let value = at(metric.k).and_then(|r| metric.value(r));
        let shown = value.map_or("n/a".to_string(), |v| format!("{v:.6}"));
        writeln!(out, "{:<18}{shown}", metric.label())?;
    }
    if let Some(first) = ranking.first() {
        writeln!(
            out,
            "ranked for {} users with a held-out rating >= {} ({} relevant pairs; {} users had \
             held-out ratings but none relevant)",
            first.users, first.relevant, first.relevant_pairs, first.users_without_relevant
        )?;
    }
    if report.evaluated == 0 && report.ratings > 0 {
        let hint = match model.keyed_by_title() {
            true => "the model keys items by title; does this data set have titles?",
            false => "are these the same kind of ids the model was trained on?",
        };
        writeln!(
            out,
            "note: the model knows none of these ratings' users or items; {hint}"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_parse_with_their_cutoff() {
        assert_eq!(
            Metric::parse("ndcg@10").unwrap(),
            Metric {
                name: "ndcg",
                k: 10
            }
        );
        assert_eq!(Metric::parse(" HR@5").unwrap().label(), "hr@5");
        for bad in ["ndcg", "ndcg@0", "ndcg@x", "auc@10", "@10"] {
            assert!(Metric::parse(bad).is_err(), "{bad}");
        }
    }
}
