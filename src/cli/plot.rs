//! `collabgpu plot`: the item factors on their first two principal components, or the loss per
//! epoch of a training log, as SVG or PNG.

use std::io::Write;

use std::path::PathBuf;

use anyhow::Context;
use collabgpu::atomic_file::check_output;
use collabgpu::inspect::plot::{factor_map, loss_chart, picture_kind, read_log};
use serde_json::json;

use super::model_args::{load_model, rating_counts};

/// Arguments of `collabgpu plot`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["model", "log"])))]
pub struct PlotArgs {
    /// Draw this model's item factors on their first two principal components.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// Draw train and validation loss per epoch from this JSON-lines log (`train --json` output).
    #[arg(long, value_name = "TRAIN.jsonl")]
    pub log: Option<PathBuf>,

    /// The picture to write: FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub out: PathBuf,

    /// Ratings that say which items are most rated (a MovieLens directory or file, or a data-set
    /// name): the axes are fitted to the 1000 most-rated and the --label most-rated get titles.
    /// Default: the model's own record of its training ratings.
    #[arg(long, value_name = "PATH|NAME", requires = "model")]
    pub data: Option<String>,

    /// How many items to label with their titles.
    #[arg(long, default_value_t = 40, requires = "model")]
    pub label: usize,

    /// Print one JSON object describing the picture instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    picture_kind(&args.out)?;
    // Refused before any work: a directory, a device or an unwritable folder.
    check_output(&args.out).context("--out")?;
    let (chart, summary) = match (&args.model, &args.log) {
        (Some(path), _) => {
            let model = load_model(path)?;
            let counts = rating_counts(&model, args.data.as_deref())?;
            let map = factor_map(&model, counts.as_ref().map(|c| &c.counts), args.label)
                .with_context(|| format!("cannot plot --model {}", path.display()))?;
            let summary = json!({
                "kind": "factors",
                "fitted_items": map.fitted.len(),
                "labelled": map.labelled.len(),
                "variance_share": map.pca.variance_shares(),
                "labels_by": if counts.is_some() { "most rated" } else { "farthest from the centre" },
            });
            (map.chart, summary)
        }
        (None, Some(path)) => {
            let read = read_log(path)?;
            if !read.skipped_lines.is_empty() {
                let lines: Vec<String> = read.skipped_lines.iter().map(|n| n.to_string()).collect();
                eprintln!(
                    "warning: {}: skipped line{} {} (not JSON; a run killed while writing leaves a half line, which `train --resume` removes)",
                    path.display(),
                    if lines.len() == 1 { "" } else { "s" },
                    lines.join(", ")
                );
            }
            let epochs = read.epochs;
            let summary_skipped = read.skipped_lines.len();
            let name = path
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            let summary = json!({
                "kind": "loss",
                "epochs": epochs.len(),
                "skipped_lines": summary_skipped,
            });
            (
                loss_chart(&epochs, &format!("Loss per epoch ({name})")),
                summary,
            )
        }
        (None, None) => unreachable!("clap requires --model or --log"),
    };
    chart
        .save(&args.out)
        .with_context(|| format!("writing --out {}", args.out.display()))?;
    if args.json {
        let mut summary = summary;
        summary["out"] = args.out.display().to_string().into();
        writeln!(out, "{summary}")?;
    } else {
        let detail = match summary["kind"].as_str() {
            Some("factors") => format!(
                "{} items, {} labelled ({})",
                summary["fitted_items"],
                summary["labelled"],
                summary["labels_by"].as_str().unwrap_or("")
            ),
            _ => format!("{} epochs", summary["epochs"]),
        };
        writeln!(out, "wrote {} ({detail})", args.out.display())?;
    }
    Ok(())
}
