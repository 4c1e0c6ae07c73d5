//! `collabgpu info`.

/// Arguments of `collabgpu info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {}

pub fn run(_args: &InfoArgs) -> anyhow::Result<()> {
    anyhow::bail!("`collabgpu info` is not implemented yet")
}
