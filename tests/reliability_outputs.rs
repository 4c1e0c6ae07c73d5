//! Issue 12, the outputs: no trained model is lost and no file outside the outputs is touched.
//! Through the binary: output paths are checked before any work (devices, FIFOs and directories
//! refused, links followed); a closed or full stdout, a log or a checkpoint that cannot be written
//! cost no model; SIGTERM and SIGHUP stop a run as Ctrl-C does; the log holds whole lines and no
//! repeated epoch after `--resume`; `plot` writes whole pictures and names the lines it skips; and
//! `kill -9` at random moments leaves whole files that `--resume` continues from.
//!
//! Disk-full cases use a file-size limit (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored, so writes past
//! it fail with `EFBIG` as they would with `ENOSPC`), set in the child only.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cli.rs"]
mod cli;

use cli::{bin, json_lines, run_ok, tiny_ml100k};
use collabgpu::files::{Checkpoint, ModelFile};

/// About a second per epoch (as ML-100K at `--bs 8` in tests/cli_train_ops.rs): long enough to
/// be signalled inside a run.
const SLOW: [&str; 10] = [
    "--data",
    "synthetic:ml-100k",
    "--factors",
    "64",
    "--bs",
    "8",
    "--threads",
    "1",
    "--seed",
    "5",
];

/// `train` on the tiny data set (a few milliseconds per epoch) with `--factors K`.
fn tiny_train(dir: &Path, factors: &str) -> Command {
    let data = tiny_ml100k(dir);
    let mut command = bin();
    command
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .args(["train", "--data"])
        .arg(data)
        .args(["--bs", "16", "--seed", "3", "--factors", factors]);
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The names in `dir` that are temporary files of the atomic writes.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
        .collect()
}

/// Runs `command` with writes beyond `bytes` per file failing (`EFBIG`), as on a full disk.
#[cfg(target_os = "linux")]
fn with_file_size_limit(command: &mut Command, bytes: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn file_type(path: &Path) -> std::fs::FileType {
    std::fs::symlink_metadata(path).unwrap().file_type()
}

#[cfg(unix)]
#[test]
fn devices_fifos_directories_and_missing_folders_are_refused_before_training() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    // As root, `mknod c 1 3` makes a null device; otherwise a FIFO stands in for it.
    let device = dir.path().join("mynull");
    let made = Command::new("mknod")
        .args([device.to_str().unwrap(), "c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        assert!(
            Command::new("mkfifo")
                .arg(&device)
                .status()
                .unwrap()
                .success()
        );
    }
    let special = |path: &Path| {
        let t = file_type(path);
        t.is_char_device() || t.is_fifo()
    };
    for flag in ["--out", "--checkpoint", "--log"] {
        let output = tiny_train(dir.path(), "2")
            .args(["--epochs", "2", flag])
            .arg(&device)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{flag}: {err}");
        assert!(
            err.contains(flag) && err.contains("not a regular file"),
            "{flag}: {err}"
        );
        // Refused before the data is even read: not one line of the table.
        assert!(output.stdout.is_empty(), "{flag} trained first");
        assert!(special(&device), "{flag} replaced the device");
    }
    // A link to the device is followed, and refused as well.
    let link = dir.path().join("link-to-null");
    std::os::unix::fs::symlink(&device, &link).unwrap();
    let output = tiny_train(dir.path(), "2")
        .args(["--epochs", "1", "--out"])
        .arg(&link)
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("not a regular file"),
        "{}",
        stderr(&output)
    );
    assert!(file_type(&link).is_symlink() && special(&device));

    let folder = dir.path().join("models");
    std::fs::create_dir(&folder).unwrap();
    let output = tiny_train(dir.path(), "2")
        .args(["--epochs", "1", "--out"])
        .arg(&folder)
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("is a directory"),
        "{}",
        stderr(&output)
    );
    assert!(folder.is_dir() && std::fs::read_dir(&folder).unwrap().next().is_none());

    let output = tiny_train(dir.path(), "2")
        .args(["--epochs", "1", "--log", "no/such/dir/train.jsonl"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("does not exist") && err.contains("mkdir"),
        "{err}"
    );

    let output = tiny_train(dir.path(), "2")
        .args(["--epochs", "1", "--out", "same.st", "--log", "./same.st"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(err.contains("are the same file"), "{err}");
    assert!(!dir.path().join("same.st").exists());

    // The implicit checkpoint of an interrupted run (beside --out) is checked as well.
    std::fs::create_dir(dir.path().join("m.st.ckpt")).unwrap();
    let output = tiny_train(dir.path(), "2")
        .args(["--epochs", "1", "--out", "m.st"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("m.st.ckpt") && err.contains("is a directory") && err.contains("--checkpoint"),
        "{err}"
    );

    // plot refuses the same way, before drawing.
    let log = dir.path().join("t.jsonl");
    std::fs::write(&log, "{\"epoch\":0,\"train_loss\":1.0}\n").unwrap();
    let picture = dir.path().join("pic.svg");
    std::os::unix::fs::symlink(&device, &picture).unwrap();
    let output = bin()
        .args(["plot", "--log"])
        .arg(&log)
        .arg("--out")
        .arg(&picture)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(err.contains("not a regular file"), "{err}");
    assert!(special(&device));
    assert!(temporaries(dir.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn a_linked_output_keeps_the_link_and_its_target_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    let real = dir.path().join("store/model.st");
    std::fs::write(&real, b"an old, unreadable model").unwrap();
    let link = dir.path().join("current.st");
    std::os::unix::fs::symlink("store/model.st", &link).unwrap();
    run_ok(tiny_train(dir.path(), "2").args(["--epochs", "2", "--quiet", "--out", "current.st"]));
    assert!(file_type(&link).is_symlink(), "the link stays a link");
    let model = ModelFile::load(&real).expect("the link's target is the new model");
    assert_eq!(model.params.factors, 2);
    assert!(
        temporaries(dir.path()).is_empty() && temporaries(&dir.path().join("store")).is_empty()
    );
}

#[test]
fn a_closed_stdout_stops_the_printing_not_the_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tiny_train(dir.path(), "2")
        .args(["--epochs", "3", "--out", "m.st", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -0`: the reader is gone before the first line.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    ModelFile::load(&dir.path().join("m.st")).expect("the model is saved");

    // `| head -3` through a shell, as a user types it.
    let data = tiny_ml100k(dir.path());
    let script = format!(
        "'{}' train --data '{}' --factors 2 --bs 16 --epochs 30 --out m2.st | head -3",
        env!("CARGO_BIN_EXE_collabgpu"),
        data.display()
    );
    let output = Command::new("sh")
        .current_dir(dir.path())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);
    ModelFile::load(&dir.path().join("m2.st")).expect("the model is saved after `| head -3`");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_is_reported_after_the_model_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = tiny_train(dir.path(), "2")
        .args(["--epochs", "2", "--out", "m.st"])
        .stdout(full)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stdout") && err.contains("the model was saved to m.st"),
        "{err}"
    );
    ModelFile::load(&dir.path().join("m.st")).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_log_that_cannot_grow_costs_no_model_and_keeps_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(tiny_train(dir.path(), "2").args(["--epochs", "1", "--quiet", "--out", "probe.st"]));
    let model_bytes = std::fs::metadata(dir.path().join("probe.st"))
        .unwrap()
        .len();
    // Room for the model, and for the log's first dozen lines or so only.
    let limit = model_bytes + 2000;
    let epochs = (limit / 100 + 10).to_string();
    let output = with_file_size_limit(
        tiny_train(dir.path(), "2").args([
            "--epochs", &epochs, "--quiet", "--out", "m.st", "--log", "t.jsonl",
        ]),
        limit,
    )
    .output()
    .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warning: cannot write epoch") && err.contains("training goes on"),
        "{err}"
    );
    assert!(
        err.contains("--log t.jsonl") && err.contains("the model was saved to m.st"),
        "{err}"
    );
    let model = ModelFile::load(&dir.path().join("m.st")).expect("the model is saved");
    assert_eq!(model.config.epochs.to_string(), epochs);
    // The log is cut back to its whole lines, epochs 0, 1, ... without a gap.
    let text = std::fs::read(dir.path().join("t.jsonl")).unwrap();
    assert!(text.ends_with(b"\n"), "a half line was left");
    let lines = json_lines(&text);
    assert!(lines.len() >= 3 && lines.len() < epochs.parse().unwrap());
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["epoch"], n);
    }
    assert!(temporaries(dir.path()).is_empty());
}

#[cfg(target_os = "linux")]
#[test]
fn a_checkpoint_that_cannot_be_written_warns_and_keeps_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--epochs", "3", "--json", "--checkpoint", "run.ckpt"];
    run_ok(
        tiny_train(dir.path(), "24")
            .args(flags)
            .args(["--out", "first.st"]),
    );
    let checkpoint = dir.path().join("run.ckpt");
    let before = std::fs::read(&checkpoint).unwrap();
    let model_bytes = std::fs::metadata(dir.path().join("first.st"))
        .unwrap()
        .len();
    assert!(before.len() as u64 > model_bytes + 4096);
    // The model fits, a checkpoint (three times the parameters) does not.
    let output = with_file_size_limit(
        tiny_train(dir.path(), "24")
            .args(flags)
            .args(["--out", "second.st"]),
        model_bytes + 1024,
    )
    .output()
    .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert_eq!(
        err.matches("warning: cannot write the checkpoint").count(),
        3,
        "one warning per epoch: {err}"
    );
    assert!(err.contains("training goes on"), "{err}");
    assert!(err.contains("the model was saved to second.st"), "{err}");
    let epochs = json_lines(&output.stdout)
        .iter()
        .filter(|l| l["type"] == "epoch")
        .count();
    assert_eq!(epochs, 3, "the run went on to the end");
    ModelFile::load(&dir.path().join("second.st")).unwrap();
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the previous checkpoint stays"
    );
    assert!(temporaries(dir.path()).is_empty());
}

/// Starts a slow run, waits for its epoch-0 line on stdout and returns it running (the caller
/// waits for it).
#[allow(clippy::zombie_processes)]
fn start_slow(dir: &Path, extra: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = bin()
        .current_dir(dir)
        .args(["train", "--json"])
        .args(SLOW)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            let output = child.wait_with_output().unwrap();
            panic!("no epoch line: {}", stderr(&output));
        }
        if serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v["epoch"] == 0) {
            return (child, stdout);
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn finish(child: Child, mut stdout: BufReader<std::process::ChildStdout>) -> (Output, Vec<u8>) {
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    (child.wait_with_output().unwrap(), rest)
}

#[test]
fn sigterm_stops_like_ctrl_c_and_the_resumed_log_repeats_no_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = [
        "--epochs",
        "3",
        "--checkpoint",
        "run.ckpt",
        "--log",
        "t.jsonl",
    ];
    let (child, stdout) = start_slow(dir.path(), &outputs);
    signal(&child, "TERM");
    let (output, rest) = finish(child, stdout);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("saved a checkpoint to run.ckpt"), "{err}");
    let last = json_lines(&rest).pop().expect("an `interrupted` line");
    assert_eq!(last["type"], "interrupted", "{last}");
    let stopped_at = last["epoch"].as_u64().unwrap() as usize;
    assert!(stopped_at >= 1);
    Checkpoint::load(&dir.path().join("run.ckpt")).unwrap();

    // As if a kill had come between an epoch's log line and its checkpoint, in the middle of the
    // next line: the resumed run removes both.
    let log = dir.path().join("t.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(json_lines(text.as_bytes()).len(), stopped_at);
    text.push_str(&format!(
        "{{\"type\":\"epoch\",\"epoch\":{stopped_at},\"train_loss\":9.0}}\n{{\"type\":\"epoch\",\"ep"
    ));
    std::fs::write(&log, text).unwrap();
    let resumed = run_ok(
        bin()
            .current_dir(dir.path())
            .args(["train", "--quiet"])
            .args(SLOW)
            .args(outputs)
            .args(["--resume", "run.ckpt", "--out", "m.st"]),
    );
    let err = stderr(&resumed);
    assert!(err.contains("--log t.jsonl: removed"), "{err}");
    let lines = json_lines(&std::fs::read(&log).unwrap());
    let epochs: Vec<u64> = lines.iter().map(|l| l["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [0, 1, 2]);
    assert!(lines.iter().all(|l| l["train_loss"] != 9.0));
    ModelFile::load(&dir.path().join("m.st")).unwrap();
}

#[test]
fn sighup_stops_too_and_a_second_signal_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let (child, stdout) = start_slow(dir.path(), &["--epochs", "3", "--out", "m.st"]);
    signal(&child, "HUP");
    let (output, _) = finish(child, stdout);
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    Checkpoint::load(&dir.path().join("m.st.ckpt")).expect("SIGHUP checkpoints beside --out");

    let (child, stdout) = start_slow(dir.path(), &["--epochs", "3", "--out", "n.st"]);
    signal(&child, "HUP");
    signal(&child, "TERM");
    let (output, _) = finish(child, stdout);
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        temporaries(dir.path()).is_empty(),
        "{:?}",
        temporaries(dir.path())
    );
    assert!(!dir.path().join("n.st").exists());
}

#[cfg(target_os = "linux")]
#[test]
fn plot_names_the_lines_it_skips_and_writes_whole_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.jsonl");
    std::fs::write(
        &log,
        "{\"type\":\"epoch\",\"epoch\":0,\"train_loss\":1.0}\n{\"type\":\"epoch\",\"epoch\":1,\"train_loss\":0.9}\n{\"type\":\"epoch\",\"ep\n",
    )
    .unwrap();
    let picture = dir.path().join("loss.png");
    let plot = || {
        let mut command = bin();
        command
            .env_remove("RUST_BACKTRACE")
            .args(["plot", "--log"])
            .arg(&log)
            .arg("--out")
            .arg(&picture);
        command
    };
    let output = run_ok(&mut plot());
    let err = stderr(&output);
    assert!(
        err.contains("warning") && err.contains("skipped line 3"),
        "{err}"
    );
    let whole = std::fs::read(&picture).unwrap();
    assert!(whole.starts_with(b"\x89PNG"));
    // On a full disk the previous picture stays, not a 0-byte one.
    let output = with_file_size_limit(&mut plot(), 100).output().unwrap();
    assert!(!output.status.success());
    assert_eq!(std::fs::read(&picture).unwrap(), whole);
    assert!(temporaries(dir.path()).is_empty());
}

/// What a killed run may leave must be whole: the checkpoint loads, the log is whole JSON lines of
/// consecutive epochs from 0, the model (if any) loads.
fn assert_whole(dir: &Path) {
    let checkpoint = dir.join("run.ckpt");
    if checkpoint.exists() {
        Checkpoint::load(&checkpoint).expect("a whole checkpoint");
    }
    let log = dir.join("t.jsonl");
    if log.exists() {
        let text = std::fs::read(&log).unwrap();
        assert!(text.is_empty() || text.ends_with(b"\n"), "a half log line");
        for (n, line) in json_lines(&text).iter().enumerate() {
            assert_eq!(line["epoch"], n, "log epochs in order");
        }
    }
    let model = dir.join("m.st");
    if model.exists() {
        ModelFile::load(&model).expect("a whole model");
    }
}

#[test]
fn kill_9_at_random_moments_leaves_whole_files_and_resume_finishes_the_same_model() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let recipe = ["--epochs", "4"];
    let outputs = [
        "--checkpoint",
        "run.ckpt",
        "--log",
        "t.jsonl",
        "--out",
        "m.st",
        "--quiet",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let started = Instant::now();
    let mut kills = 0;
    // Kills come later and later, and after the eighth the run is let finish: bounded whatever
    // the machine's speed.
    let finished = loop {
        let resume = dir.path().join("run.ckpt").exists();
        let mut command = bin();
        command
            .current_dir(dir.path())
            .arg("train")
            .args(SLOW)
            .args(recipe)
            .args(outputs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if resume {
            command.args(["--resume", "run.ckpt"]);
        }
        let mut child = command.spawn().unwrap();
        let wait = match kills {
            0..8 => rng.random_range(100..1500) + 300 * kills as u64,
            _ => u64::MAX / 2,
        };
        let deadline = Instant::now() + Duration::from_millis(wait);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match status {
            Some(status) => {
                let output = child.wait_with_output().unwrap();
                assert!(status.success(), "{}", stderr(&output));
                break output;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                assert_whole(dir.path());
            }
        }
    };
    eprintln!(
        "{kills} kills, finished after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 1, "no run was killed: nothing tested");
    assert!(!stderr(&finished).contains("panicked"));
    assert_whole(dir.path());
    let lines = json_lines(&std::fs::read(dir.path().join("t.jsonl")).unwrap());
    assert_eq!(lines.len(), 4, "each epoch logged exactly once");
    assert!(
        temporaries(dir.path()).is_empty(),
        "{:?}",
        temporaries(dir.path())
    );

    // The very model of a run that was never killed.
    let straight = dir.path().join("straight.st");
    run_ok(
        bin()
            .current_dir(dir.path())
            .args(["train", "--quiet"])
            .args(SLOW)
            .args(recipe)
            .arg("--out")
            .arg(&straight),
    );
    let (a, b) = (
        ModelFile::load(&dir.path().join("m.st")).unwrap(),
        ModelFile::load(&straight).unwrap(),
    );
    assert_eq!(a.params.user_factors, b.params.user_factors);
    assert_eq!(a.params.item_bias, b.params.item_bias);
}

#[cfg(unix)]
#[test]
fn synth_refuses_a_non_regular_target_before_generating() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ml");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(out.join("u.data")).unwrap();
    let output = bin()
        .args(["synth", "--preset", "ml-100k", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("u.data") && err.contains("is a directory"),
        "{err}"
    );
    assert!(!out.join("u.item").exists(), "nothing written");
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let output = bin()
        .args(["synth", "--preset", "ml-100k", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("is not a directory"),
        "{}",
        stderr(&output)
    );
}
