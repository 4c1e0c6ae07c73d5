//! `collabgpu synth`.

/// Arguments of `collabgpu synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {}

pub fn run(_args: &SynthArgs) -> anyhow::Result<()> {
    anyhow::bail!("`collabgpu synth` is not implemented yet")
}
