//! `collabgpu download`.

/// Arguments of `collabgpu download`.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {}

pub fn run(_args: &DownloadArgs) -> anyhow::Result<()> {
    anyhow::bail!("`collabgpu download` is not implemented yet")
}
