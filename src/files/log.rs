//! The training log: one JSON object per line and epoch, written by `collabgpu train --log FILE`
//! (and, among other lines, by `train --json`), read by `collabgpu plot --log FILE`. One type,
//! [`EpochLine`], is both the writer's and the reader's, so the two cannot drift apart.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::train::EpochReport;

/// One epoch of a run, as a log line:
/// `{"type":"epoch","epoch":0,"train_loss":…,"valid_loss":…,"valid_rmse":…,"seconds":…,…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "epoch")]
pub struct EpochLine {
    /// Counted from 0, as fastai prints it.
    pub epoch: usize,
    /// The mean of the epoch's batch losses.
    pub train_loss: f64,
    /// The validation MSE after the epoch; `null` without validation ratings.
    #[serde(default)]
    pub valid_loss: Option<f64>,
    #[serde(default)]
    pub valid_rmse: Option<f64>,
    /// Training plus evaluation, in seconds.
    #[serde(default)]
    pub seconds: f64,
    /// The training steps alone, in seconds.
    #[serde(default)]
    pub train_seconds: f64,
    /// Training ratings per second of the epoch's steps.
    #[serde(default)]
    pub ratings_per_second: f64,
    /// On synthetic data: the planted model's MSE on the validation ratings, and `valid_loss`
    /// over it ([`EpochLine::with_noise_floor`]); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor_ratio: Option<f64>,
}

impl From<&EpochReport> for EpochLine {
    fn from(epoch: &EpochReport) -> Self {
        EpochLine {
            epoch: epoch.epoch,
            train_loss: epoch.train_loss,
            valid_loss: epoch.valid_loss,
            valid_rmse: epoch.valid_rmse(),
            seconds: epoch.seconds + epoch.eval_seconds,
            train_seconds: epoch.seconds,
            ratings_per_second: epoch.ratings_per_second,
            noise_floor: None,
            noise_floor_ratio: None,
        }
    }
}

impl EpochLine {
    /// The line with the data's noise floor and the validation loss's ratio to it.
    pub fn with_noise_floor(self, floor: Option<f64>) -> EpochLine {
        EpochLine {
            noise_floor: floor,
            noise_floor_ratio: floor.zip(self.valid_loss).map(|(f, l)| l / f),
            ..self
        }
    }

    /// The line, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("plain numbers always serialise")
    }
}

/// The largest log [`read_log_text`] reads: some 300,000 epoch lines, far beyond any run, and
/// small enough that a wrong path (a device such as `/dev/zero`, a huge unrelated file) is refused
/// at once instead of filling memory.
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// The text of a log file, at most [`MAX_LOG_BYTES`]: a regular file is refused by its size before
/// reading, anything else (a pipe, a device) is read only up to the bound.
pub fn read_log_text(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    let too_big = || {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, which no training log is; pass the file that `collabgpu train --log FILE` wrote",
                MAX_LOG_BYTES >> 20
            ),
        )
    };
    if metadata.is_dir() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a directory, not a log file; pass the file that `collabgpu train --log FILE` wrote",
        ));
    }
    if metadata.is_file() && metadata.len() > MAX_LOG_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(MAX_LOG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_LOG_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (byte {}); a training log is JSON lines",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// What reading a log found: the epoch lines in order; each line that looked like an epoch (an
/// object of `"type":"epoch"`, or without a type but with `epoch` and `train_loss`) but could not
/// be read, as `(line number from 1, reason)`; and the lines that are not JSON at all. Other JSON
/// lines (the summary of `train --json`) and blank lines are skipped without a word.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadLog {
    pub epochs: Vec<EpochLine>,
    pub unreadable: Vec<(usize, String)>,
    pub not_json: Vec<usize>,
}

/// Reads the epoch lines of a log's text.
pub fn read_epoch_lines(text: &str) -> ReadLog {
    let mut read = ReadLog::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(line) else {
            read.not_json.push(n + 1);
            continue;
        };
        let Some(object) = value.as_object_mut() else {
            continue;
        };
        match object.get("type") {
            Some(kind) if kind != "epoch" => continue,
            Some(_) => {}
            // A line written by hand or by another tool: an epoch if it says what one says.
            None if object.contains_key("epoch") && object.contains_key("train_loss") => {
                object.insert("type".into(), "epoch".into());
            }
            None => continue,
        }
        match serde_json::from_value::<EpochLine>(value) {
            Ok(epoch) => read.epochs.push(epoch),
            Err(e) => read.unreadable.push((n + 1, format!("{e}: {line:.80}"))),
        }
    }
    read
}

/// The `--log` file of a run, open for appending: one `write` per line, synced at each epoch, so
/// that a kill leaves whole lines only (at worst one half line, which the next
/// [`LogFile::resume`] removes), and a failed write is undone rather than left half-written.
#[derive(Debug)]
pub struct LogFile {
    file: std::fs::File,
    /// The length of the whole lines written so far.
    len: u64,
}

/// What [`LogFile::resume`] removed from the log to match the checkpoint.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogCut {
    /// Epoch lines of the checkpoint's epoch or later: written after the checkpoint, they are
    /// written again by the resumed run.
    pub later_epochs: usize,
    /// Lines that are not whole JSON (a half line left by a kill), by line number from 1.
    pub broken_lines: Vec<usize>,
}

impl LogCut {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.later_epochs == 0 && self.broken_lines.is_empty()
    }
}

impl LogFile {
    /// Starts the log of a fresh run: an empty file at `path` (created, or emptied).
    pub fn create(path: &Path) -> std::io::Result<LogFile> {
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Self::open_append(path)
    }

    /// Continues the log of a run resumed at `epoch` (the checkpoint's position): keeps the whole
    /// lines before it and removes every epoch line of `epoch` or later (a kill between a log line
    /// and its checkpoint would otherwise repeat them) and every line that is not whole JSON. When
    /// something goes, the kept lines are written back atomically ([`crate::atomic_file`]). A
    /// missing log is started afresh.
    pub fn resume(path: &Path, epoch: usize) -> std::io::Result<(LogFile, LogCut)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::create(path)?, LogCut::default()));
            }
            Err(e) => return Err(e),
        };
        let (kept, cut) = cut_log(&bytes, epoch);
        if !cut.is_empty() {
            crate::atomic_file::write_bytes_atomically(path, &kept)?;
        }
        Ok((Self::open_append(path)?, cut))
    }

    fn open_append(path: &Path) -> std::io::Result<LogFile> {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(LogFile { file, len })
    }

    /// Appends `line` and its newline in one write and syncs the file. On an error (a full disk)
    /// the file is cut back to its whole lines before the error is returned.
    pub fn append(&mut self, line: &EpochLine) -> std::io::Result<()> {
        let mut text = line.to_line();
        text.push('\n');
        let written = self
            .file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += text.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

/// The lines of a log `bytes` that a run resumed at `epoch` keeps, and what it drops.
fn cut_log(bytes: &[u8], epoch: usize) -> (Vec<u8>, LogCut) {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut cut = LogCut::default();
    for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let whole = line.ends_with(b"\n");
        let keep = match std::str::from_utf8(line) {
            Ok(text) if whole => {
                let read = read_epoch_lines(text);
                if !read.not_json.is_empty() || !read.unreadable.is_empty() {
                    cut.broken_lines.push(n + 1);
                    false
                } else if read.epochs.iter().any(|e| e.epoch >= epoch) {
                    cut.later_epochs += 1;
                    false
                } else {
                    true
                }
            }
            _ => {
                cut.broken_lines.push(n + 1);
                false
            }
        };
        if keep {
            kept.extend_from_slice(line);
        }
    }
    (kept, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(epoch: usize, valid_loss: Option<f64>) -> EpochLine {
        EpochLine {
            epoch,
            train_loss: 0.9,
            valid_loss,
            valid_rmse: valid_loss.map(f64::sqrt),
            seconds: 1.5,
            train_seconds: 1.25,
            ratings_per_second: 64000.0,
            noise_floor: None,
            noise_floor_ratio: None,
        }
    }

    #[test]
    fn a_written_line_reads_back_exactly_and_names_its_type() {
        let text = line(3, Some(0.81)).to_line();
        assert!(text.starts_with(r#"{"type":"epoch","epoch":3,"#), "{text}");
        let read = read_epoch_lines(&text);
        assert_eq!(read.epochs, vec![line(3, Some(0.81))]);
        assert!(read.unreadable.is_empty());
    }

    #[test]
    fn summaries_are_skipped_and_broken_epoch_lines_are_named() {
        let text = format!(
            "{}\n\n{}\n{{\"type\":\"summary\",\"valid_loss\":0.8}}\n{{\"type\":\"epoch\",\"epoch\":2,\"train_lo\n{{\"type\":\"epoch\",\"epoch\":\"two\"}}\n",
            line(0, None).to_line(),
            line(1, Some(0.9)).to_line()
        );
        let read = read_epoch_lines(&text);
        assert_eq!(read.epochs, vec![line(0, None), line(1, Some(0.9))]);
        let lines: Vec<usize> = read.unreadable.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, vec![6]);
        assert_eq!(read.not_json, vec![5]);
    }

    #[test]
    fn resume_cuts_half_lines_and_epochs_after_the_checkpoint() {
        let text = format!(
            "{}\n{}\n{{\"type\":\"epoch\",\"epo\n{}\n{}\n{{\"type\":\"ep",
            line(0, Some(1.0)).to_line(),
            line(1, Some(0.9)).to_line(),
            line(2, Some(0.8)).to_line(),
            line(3, Some(0.7)).to_line(),
        );
        let (kept, cut) = cut_log(text.as_bytes(), 2);
        let kept = String::from_utf8(kept).unwrap();
        assert_eq!(
            kept,
            format!(
                "{}\n{}\n",
                line(0, Some(1.0)).to_line(),
                line(1, Some(0.9)).to_line()
            )
        );
        assert_eq!(cut.later_epochs, 2);
        assert_eq!(cut.broken_lines, vec![3, 6]);
        let (same, cut) = cut_log(kept.as_bytes(), 2);
        assert_eq!(same, kept.as_bytes());
        assert!(cut.is_empty());
    }

    #[test]
    fn the_log_file_appends_whole_lines_and_resumes_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.jsonl");
        std::fs::write(&path, "old run\n").unwrap();
        let mut log = LogFile::create(&path).unwrap();
        for epoch in 0..3 {
            log.append(&line(epoch, None)).unwrap();
        }
        drop(log);
        // A kill in the middle of a line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"type\":\"epoch\",\"epoch\":3,\"tra")
            .unwrap();
        drop(file);
        let (mut log, cut) = LogFile::resume(&path, 2).unwrap();
        assert_eq!(cut.later_epochs, 1);
        assert_eq!(cut.broken_lines, vec![4]);
        log.append(&line(2, Some(0.5))).unwrap();
        let read = read_epoch_lines(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(
            read.epochs,
            vec![line(0, None), line(1, None), line(2, Some(0.5))]
        );
        assert!(read.not_json.is_empty());
        let (_, cut) = LogFile::resume(&dir.path().join("missing.jsonl"), 1).unwrap();
        assert!(cut.is_empty());
    }
}
