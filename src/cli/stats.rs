//! `collabgpu stats`.

/// Arguments of `collabgpu stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {}

pub fn run(_args: &StatsArgs) -> anyhow::Result<()> {
    anyhow::bail!("`collabgpu stats` is not implemented yet")
}
