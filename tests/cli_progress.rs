//! The progress bar as a person sees it, through a pseudo-terminal (`script` from util-linux):
//! it never shows an empty `0/0`, and once an epoch's row is printed no frame shows that epoch's
//! loss again (on ML-100K an epoch is one or two backend calls, so the bar used to show the
//! previous epoch's loss at 0/1250 for the whole of the next epoch).

use std::process::Command;

#[path = "support/cli.rs"]
mod cli;

#[test]
fn the_bar_shows_only_the_current_epoch() {
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: no `script` (util-linux) to run the binary in a pseudo-terminal");
        return;
    }
    let command = format!(
        "{} train --data synthetic:ml-100k --epochs 3 --bs 512 --factors 8",
        env!("CARGO_BIN_EXE_collabgpu")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("COLUMNS", "120")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    // Frames are separated by carriage returns and erase-line codes; rows end in newlines.
    let frames: Vec<&str> = text
        .split(['\r', '\n'])
        .flat_map(|part| part.split("\u{1b}[2K"))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    assert!(
        frames.iter().any(|f| f.contains("batches")),
        "no progress bar was drawn: {text:?}"
    );
    let mut finished: Option<usize> = None;
    for frame in &frames {
        assert!(!frame.contains(" 0/0 batches"), "{frame:?}");
        let fields: Vec<&str> = frame.split_whitespace().collect();
        // An epoch row: the epoch, four numbers, and on synthetic data the ratio to the floor.
        if (5..=6).contains(&fields.len())
            && fields[0].parse::<usize>().is_ok()
            && fields[1..5].iter().all(|f| f.parse::<f64>().is_ok())
        {
            finished = fields[0].parse().ok();
            continue;
        }
        if let (Some(done), Some(rest)) = (finished, frame.strip_prefix("epoch ")) {
            let shown: usize = rest.split(':').next().unwrap().parse().unwrap();
            assert!(
                shown > done,
                "epoch {done} is finished, yet a frame shows {frame:?}"
            );
        }
    }
    assert_eq!(finished, Some(2), "{frames:?}");
}
