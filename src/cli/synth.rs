//! `collabgpu synth`: write a synthetic data set with a planted model, in a MovieLens layout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use collabgpu::atomic_file::check_output;
use collabgpu::data::synth::{self, Preset};

/// Arguments of `collabgpu synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Which MovieLens release to imitate: its exact shape (ratings, users, items), rating scale
    /// and file layout.
    #[arg(long, value_enum)]
    pub preset: PresetArg,
    /// Seed of the planted model and the ratings; the same seed writes the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Directory to write into (created if missing); existing files of the same names are
    /// replaced.
    #[arg(long)]
    pub out: PathBuf,
}

/// The presets, as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PresetArg {
    /// 100,000 ratings, 943 users, 1,682 items: `u.data` + `u.item`.
    #[value(name = "ml-100k")]
    Ml100k,
    /// 1,000,209 ratings, 6,040 users, 3,706 items: `ratings.dat` + `movies.dat`.
    #[value(name = "ml-1m")]
    Ml1m,
    /// 25,000,095 ratings, 162,541 users, 59,047 items: `ratings.csv` + `movies.csv`.
    #[value(name = "ml-25m")]
    Ml25m,
}

impl From<PresetArg> for Preset {
    fn from(arg: PresetArg) -> Preset {
        match arg {
            PresetArg::Ml100k => Preset::Ml100k,
            PresetArg::Ml1m => Preset::Ml1m,
            PresetArg::Ml25m => Preset::Ml25m,
        }
    }
}

pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let preset = Preset::from(args.preset);
    check_outputs(&args.out, preset)?;
    let started = Instant::now();
    let synthetic = synth::generate(preset, args.seed)
        .with_context(|| format!("generating the synthetic {} data set", preset.name()))?;
    let generated = started.elapsed();
    let files = synthetic
        .write_to(&args.out)
        .with_context(|| format!("writing the synthetic data set into {}", args.out.display()))?;
    let shape = preset.shape();
    eprintln!(
        "wrote {} ({} ratings, {} users, {} items), {} and {} in {:.1} s (generation {:.1} s)",
        files.ratings.display(),
        shape.ratings,
        shape.users,
        shape.items,
        files.titles.display(),
        files.truth.display(),
        started.elapsed().as_secs_f64(),
        generated.as_secs_f64(),
    );
    eprintln!(
        "planted model: K = {}, noise std {}, noise floor MSE {:.4} (the best a trainer can expect)",
        synthetic.truth.factors, synthetic.truth.noise_std, synthetic.truth.noise_floor_mse
    );
    Ok(())
}

/// Refuses, before generating (minutes for ml-25m), an `--out` that is not a directory and files
/// in it that are not regular files (see [`collabgpu::atomic_file`]). A missing `--out` is
/// created when the files are written.
fn check_outputs(out: &Path, preset: Preset) -> anyhow::Result<()> {
    match std::fs::metadata(out) {
        Ok(meta) if !meta.is_dir() => {
            bail!(
                "--out {} is not a directory; synth writes several files into a directory (created if missing)",
                out.display()
            )
        }
        Ok(_) => {
            let (ratings, titles) = preset.file_names();
            for name in [ratings, titles, "truth.json"] {
                check_output(&out.join(name))
                    .with_context(|| format!("--out {}", out.display()))?;
            }
            Ok(())
        }
        Err(_) => Ok(()),
    }
}
