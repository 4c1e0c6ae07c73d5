//! `collabgpu train`.

/// Arguments of `collabgpu train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {}

pub fn run(_args: &TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`collabgpu train` is not implemented yet")
}
