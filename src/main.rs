//! The `collabgpu` command: clap arguments -> validated configuration -> library calls.
//! `anyhow` lives here only; the library returns typed errors.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train collaborative-filtering recommenders (fastai's DotProductBias) on any Vulkan, Metal or
/// DX12 GPU through hand-written WGSL kernels, or on the CPU reference backend.
#[derive(Debug, Parser)]
#[command(name = "collabgpu", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model (default: fastai's chapter 8 recipe on MovieLens 100K).
    ///
    /// The defaults are the fastai book's chapter 8 run: DotProductBias with K = 50 and y-range
    /// (0, 5.5), adamw with one-cycle to lr 5e-3, wd 0.1, batches of 64, 5 epochs, a random 80/20
    /// split. On the real ML-100K it ends at a validation MSE of about 0.80 (0.798 to 0.821 over
    /// seeds 1, 2, 3 and 42 on the CPU). The book keys items by title, merging the films that
    /// share one: add `--item-key title` to do the same. `--out m.safetensors` saves the model
    /// for `eval`, `recommend`, `similar`, `biases`, `plot` and `fold-in`.
    Train(Box<cli::train::TrainArgs>),
    /// Describe a data set: users, items, ratings, histogram, activity, time range.
    Stats(cli::stats::StatsArgs),
    /// Write a synthetic data set with a planted model, in a MovieLens layout.
    Synth(cli::synth::SynthArgs),
    /// Download a MovieLens data set into the cache and verify it.
    Download(cli::download::DownloadArgs),
    /// List the GPU adapters and what the engine would use of each.
    Info(cli::info::InfoArgs),
    /// MSE, RMSE and MAE of a saved model on a ratings set (unknown ids are counted, not dropped).
    Eval(cli::eval::EvalArgs),
    /// The predicted rating of one user for one item (raw ids, as in the data files).
    Predict(cli::predict::PredictArgs),
    /// The top-N items a user has not rated, with titles and predicted ratings.
    Recommend(cli::recommend::RecommendArgs),
    /// Add users who were not in training to a model, from a CSV of their ratings.
    FoldIn(cli::fold_in::FoldInArgs),
    /// The items nearest to one item by cosine similarity of item factors.
    Similar(cli::similar::SimilarArgs),
    /// The lowest and highest item (or user) biases, beside mean rating and number of ratings.
    Biases(cli::biases::BiasesArgs),
    /// Draw the item factors on two principal components, or a training log's loss, as SVG or PNG.
    Plot(cli::plot::PlotArgs),
    /// Train the same configuration on every backend (CPU, each GPU adapter) and compare speed.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    quiet_wayland_probe();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`| head -1`): it has all it wanted, so stop quietly
        // and successfully, as `head`'s other writers do. Not for `train`, whose error says
        // whether the model was saved.
        Err(error) if is_broken_pipe(&error) && !matches!(cli.command, Command::Train(_)) => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            // Without panicking on a closed stderr.
            let _ = writeln!(std::io::stderr(), "{}", error_report(&error));
            ExitCode::FAILURE
        }
    }
}

/// `Error: ...` and its causes, each once: a cause whose text its parent already quotes (an
/// io::Error inside `PATH: No such file or directory`) is not repeated. A user error is not a
/// crash: `RUST_BACKTRACE=1`, which many Rust users keep set for panics, does not add a stack
/// trace; `RUST_LIB_BACKTRACE=1` does.
fn error_report(error: &anyhow::Error) -> String {
    let mut text = format!("Error: {error}");
    let mut shown = error.to_string();
    let causes: Vec<String> = error
        .chain()
        .skip(1)
        .map(|cause| cause.to_string())
        .filter(|cause| {
            let new = !shown.contains(cause.as_str());
            shown = cause.clone();
            new
        })
        .collect();
    if !causes.is_empty() {
        text.push_str("\n\nCaused by:");
        for cause in causes {
            text.push_str(&format!("\n    {cause}"));
        }
    }
    if std::env::var_os("RUST_LIB_BACKTRACE").is_some_and(|v| v == "1") {
        text.push_str(&format!("\n\nStack backtrace:\n{}", error.backtrace()));
    }
    text
}

/// Whether `error` comes from writing to a pipe whose reader has closed it.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// On a machine without a desktop session, opening a Vulkan instance makes libwayland-client
/// (loaded by the driver stack to probe for a compositor) print "error: XDG_RUNTIME_DIR is
/// invalid or not set in the environment." to stderr, twice, on every GPU command. Without
/// `XDG_RUNTIME_DIR` no compositor can be reached anyway, so point the probe at a display path
/// that does not exist, which libwayland tries without a word. A real session (either variable
/// set) is left alone.
fn quiet_wayland_probe() {
    let session = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !session("XDG_RUNTIME_DIR") && !session("WAYLAND_DISPLAY") {
        // SAFETY: called first thing in `main`, before any thread exists that could read the
        // environment concurrently.
        unsafe { std::env::set_var("WAYLAND_DISPLAY", "/nonexistent/collabgpu-no-session") };
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Train(args) => cli::train::run(args),
        Command::Stats(args) => cli::stats::run(args),
        Command::Synth(args) => cli::synth::run(args),
        Command::Download(args) => cli::download::run(args),
        Command::Info(args) => cli::info::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Predict(args) => cli::predict::run(args),
        Command::Recommend(args) => cli::recommend::run(args),
        Command::FoldIn(args) => cli::fold_in::run(args),
        Command::Similar(args) => cli::similar::run(args),
        Command::Biases(args) => cli::biases::run(args),
        Command::Plot(args) => cli::plot::run(args),
        Command::Bench(args) => cli::bench::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
