//! `collabgpu download`: fetch a MovieLens data set into the cache and verify it.

use std::io::Write;

use anyhow::Context;
use clap::builder::PossibleValuesParser;
use collabgpu::data::download::{self, KNOWN};

/// Arguments of `collabgpu download`.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The data set, as GroupLens names its zip. It lands in `$COLLABGPU_DATA/NAME` (else the
    /// user cache directory's `collabgpu/NAME`); `$COLLABGPU_DOWNLOAD_URL` replaces the base URL.
    #[arg(value_parser = PossibleValuesParser::new(KNOWN.map(|k| k.name)))]
    pub name: String,
    /// Download again even when the data set is already in the cache.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &DownloadArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let name = args.name.as_str();
    let dataset = download::known(name).context("clap only lets known names through")?;
    let cache = download::cache_dir()?;
    if !args.force {
        if let Some(dir) = download::cached(name, &cache) {
            eprintln!("{name} is already in the cache: {}", dir.display());
            writeln!(out, "{}", dir.display())?;
            return Ok(());
        }
    }
    let url = download::zip_url(&download::base_url(), name);
    eprintln!("downloading {url} into {}", cache.display());
    let dir = download::fetch_into(&url, name, &dataset.checksum(), &cache, true)?;
    eprintln!("{name} verified and unpacked into {}", dir.display());
    writeln!(out, "{}", dir.display())?;
    Ok(())
}
