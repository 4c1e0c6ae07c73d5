//! Issue 12: no input makes a reader panic. A small mutation fuzzer (seeded, so a failure
//! reproduces) feeds every MovieLens layout, the generic CSV reader, model files and checkpoints
//! thousands of damaged variants of a valid file: bytes flipped, inserted, deleted, duplicated
//! and cut off. Each must load or fail with an error; a panic fails the test with the input that
//! caused it saved beside the message. Each reader's round is bounded (iterations and seconds).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use collabgpu::data::{self, Format, ItemKey, LoadOptions};
use collabgpu::files::{Checkpoint, ModelFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "support/hand_model.rs"]
mod hand;

/// Iterations per reader, and the time each round may take at most.
const ROUNDS: usize = 5000;
const BUDGET: Duration = Duration::from_secs(12);

/// One random damage to `bytes`.
fn mutate(bytes: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let edits = rng.random_range(1..=4);
    for _ in 0..edits {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..7) {
            0 if at < out.len() => out[at] ^= 1 << rng.random_range(0..8),
            1 if at < out.len() => out[at] = rng.random(),
            2 => {
                // Bytes that mean something to the parsers.
                let special: &[u8] = b"\t,:;\"\n\r-+.0123456789e \xff\x00\xc3";
                out.insert(at, special[rng.random_range(0..special.len())]);
            }
            3 if at < out.len() => {
                let end = (at + rng.random_range(1..16)).min(out.len());
                out.drain(at..end);
            }
            4 => {
                let start = rng.random_range(0..=at);
                let piece = out[start..at].to_vec();
                out.splice(at..at, piece);
            }
            5 => out.truncate(at),
            _ if at < out.len() => out[at] = out[at].wrapping_add(1),
            _ => out.push(b'9'),
        }
    }
    out
}

/// Writes each of `rounds` mutations of `valid` to `file` and calls `read` on it; a panic is
/// reported with the input, saved to a file the message names.
fn fuzz(name: &str, valid: &[u8], file: &Path, seed: u64, read: impl Fn(&Path)) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    let mut done = 0;
    while done < ROUNDS && started.elapsed() < BUDGET {
        let input = mutate(valid, &mut rng);
        std::fs::write(file, &input).unwrap();
        if catch_unwind(AssertUnwindSafe(|| read(file))).is_err() {
            let kept = std::env::temp_dir().join(format!("collabgpu-fuzz-{name}-{done}.bin"));
            std::fs::write(&kept, &input).unwrap();
            panic!(
                "{name}: input {done} of seed {seed} panicked; saved to {}",
                kept.display()
            );
        }
        done += 1;
    }
    eprintln!(
        "{name}: {done} damaged inputs, no panic, {:?}",
        started.elapsed()
    );
    assert!(done >= 100, "{name}: only {done} inputs in {BUDGET:?}");
}

fn ml100k_text() -> Vec<u8> {
    let mut text = String::new();
    for n in 0..60u32 {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            1 + n % 7,
            1 + n % 11,
            1 + n % 5,
            874965758 + n
        ));
    }
    text.into_bytes()
}

fn in_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn movielens_layouts_never_panic_on_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    // ML-100K: u.data beside a u.item whose titles are damaged too in a second round.
    let ml100k = dir.path().join("ml-100k");
    std::fs::create_dir(&ml100k).unwrap();
    let items: String = (1..=11)
        .map(|i| format!("{i}|Film {i} (199{})|01-Jan-1995||http://x|0|1|0\n", i % 10))
        .collect();
    std::fs::write(ml100k.join("u.item"), &items).unwrap();
    let folder = ml100k.to_str().unwrap().to_string();
    let load = |options: LoadOptions| {
        let folder = folder.clone();
        move |_: &Path| {
            let _ = data::load(&folder, &options);
        }
    };
    fuzz(
        "u.data",
        &ml100k_text(),
        &in_dir(&ml100k, "u.data"),
        1,
        load(LoadOptions::default()),
    );
    std::fs::write(ml100k.join("u.data"), ml100k_text()).unwrap();
    let by_title = LoadOptions {
        item_key: ItemKey::Title,
        ..LoadOptions::default()
    };
    fuzz(
        "u.item",
        items.as_bytes(),
        &in_dir(&ml100k, "u.item"),
        2,
        load(by_title),
    );

    // ML-1M's ratings.dat and ML-25M's ratings.csv (with a quoted movies.csv beside it).
    let ml1m = dir.path().join("ml-1m");
    std::fs::create_dir(&ml1m).unwrap();
    std::fs::write(
        ml1m.join("movies.dat"),
        "1::Toy Story (1995)::Animation\n2::Heat (1995)::Action\n",
    )
    .unwrap();
    let dat: String = (0..40)
        .map(|n| format!("{}::{}::{}::97830{n}\n", 1 + n % 5, 1 + n % 2, 1 + n % 5))
        .collect();
    let ml1m_dir = ml1m.clone();
    fuzz(
        "ratings.dat",
        dat.as_bytes(),
        &ml1m.join("ratings.dat"),
        3,
        move |_| {
            let _ = data::load(ml1m_dir.to_str().unwrap(), &LoadOptions::default());
        },
    );

    let ml25m = dir.path().join("ml-25m");
    std::fs::create_dir(&ml25m).unwrap();
    std::fs::write(
        ml25m.join("movies.csv"),
        "movieId,title,genres\n1,\"Toy Story, The (1995)\",Animation\n2,Heat (1995),Action\n",
    )
    .unwrap();
    let csv: String = std::iter::once("userId,movieId,rating,timestamp\n".to_string())
        .chain((0..40).map(|n| format!("{},{},{}.5,11472{n}\n", 1 + n % 5, 1 + n % 2, n % 5)))
        .collect();
    let ml25m_dir = ml25m.clone();
    fuzz(
        "ratings.csv",
        csv.as_bytes(),
        &ml25m.join("ratings.csv"),
        4,
        move |_| {
            let _ = data::load(ml25m_dir.to_str().unwrap(), &LoadOptions::default());
        },
    );
}

#[test]
fn the_generic_csv_reader_never_panics_on_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ratings.txt");
    let text: String = std::iter::once("user;item;stars\n".to_string())
        .chain((0..50).map(|n| format!("u{};\"item {}\";{}\n", n % 6, n % 9, n % 10)))
        .collect();
    for (seed, skip_bad_lines) in [(5, false), (6, true)] {
        let options = LoadOptions {
            format: Format::Csv,
            delimiter: Some(b';'),
            columns: Some(vec!["user".into(), "item".into(), "stars".into()]),
            skip_bad_lines,
            ..LoadOptions::default()
        };
        fuzz("csv", text.as_bytes(), &file, seed, |path| {
            let _ = data::load(path.to_str().unwrap(), &options);
        });
    }
}

#[test]
fn model_files_and_checkpoints_never_panic_on_damaged_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hand.safetensors");
    hand::hand_model(Some((0.0, 5.5))).save(&model).unwrap();
    let valid = std::fs::read(&model).unwrap();
    let target = dir.path().join("damaged.safetensors");
    fuzz("model", &valid, &target, 7, |path| {
        let _ = ModelFile::load(path);
    });

    let data = dir.path().join("u.data");
    std::fs::write(&data, ml100k_text()).unwrap();
    let checkpoint = dir.path().join("run.ckpt");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_collabgpu"))
        .args([
            "train",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "2",
            "--factors",
            "2",
        ])
        .args([
            "--bs",
            "8",
            "--quiet",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let valid = std::fs::read(&checkpoint).unwrap();
    fuzz(
        "checkpoint",
        &valid,
        &dir.path().join("damaged.ckpt"),
        8,
        |path| {
            let _ = Checkpoint::load(path);
        },
    );
}
