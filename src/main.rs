//! The `collabgpu` command: clap arguments -> validated configuration -> library calls.
//! `anyhow` lives here only; the library returns typed errors.

mod cli;

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
    Train(cli::train::TrainArgs),
    /// Describe a data set: users, items, ratings, histogram, activity, time range.
    Stats(cli::stats::StatsArgs),
    /// Write a synthetic data set with a planted model, in a MovieLens layout.
    Synth(cli::synth::SynthArgs),
    /// Download a MovieLens data set into the cache and verify it.
    Download(cli::download::DownloadArgs),
    /// List the GPU adapters and what the engine would use of each.
    Info(cli::info::InfoArgs),
    /// Train the same configuration on every backend (CPU, each GPU adapter) and compare speed.
    Bench(cli::bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Train(args) => cli::train::run(args),
        Command::Stats(args) => cli::stats::run(args),
        Command::Synth(args) => cli::synth::run(args),
        Command::Download(args) => cli::download::run(args),
        Command::Info(args) => cli::info::run(args),
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
