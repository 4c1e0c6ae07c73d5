//! The training log (`train --json` lines) and its loss-per-epoch chart.

use std::path::{Path, PathBuf};

use crate::files::log::{EpochLine, read_epoch_lines, read_log_text};

use super::{BLUE, Chart, ORANGE, Series, Style};
use crate::inspect::InspectError;

/// The epochs of a log, and the lines that were skipped because they are not JSON at all (a half
/// line left by a killed run, say), by line number from 1, for a warning.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEpochs {
    pub epochs: Vec<EpochLine>,
    pub skipped_lines: Vec<usize>,
}

/// Reads the epochs of a JSON-lines training log (`train --log FILE`, or the lines of
/// `train --json`; see [`crate::files::log`]), at most [`crate::files::log::MAX_LOG_BYTES`]. Other
/// JSON lines, such as the summary, are ignored; lines that are not JSON are named in
/// [`LogEpochs::skipped_lines`].
pub fn read_log(path: &Path) -> Result<LogEpochs, InspectError> {
    let text = read_log_text(path).map_err(|source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_log_lines(&text, path)
}

/// [`parse_log_lines`] without the skipped lines.
pub fn parse_log(text: &str, path: &Path) -> Result<Vec<EpochLine>, InspectError> {
    parse_log_lines(text, path).map(|read| read.epochs)
}

/// [`read_log`] on text already read; `path` is for messages. An epoch line that cannot be read
/// is an error naming it.
pub fn parse_log_lines(text: &str, path: &Path) -> Result<LogEpochs, InspectError> {
    let read = read_epoch_lines(text);
    if let Some((line, message)) = read.unreadable.into_iter().next() {
        return Err(InspectError::BadLogLine {
            path: PathBuf::from(path),
            line,
            message,
        });
    }
    if read.epochs.is_empty() {
        return Err(InspectError::Invalid(format!(
            "{}: no line has `epoch` and `train_loss`; write the log with `collabgpu train --log FILE` (or `train --json > FILE`)",
            path.display()
        )));
    }
    Ok(LogEpochs {
        epochs: read.epochs,
        skipped_lines: read.not_json,
    })
}

/// The loss-per-epoch chart of a training log.
pub fn loss_chart(epochs: &[EpochLine], title: &str) -> Chart {
    let train = epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    let valid: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| e.valid_loss.map(|v| (e.epoch as f64, v)))
        .collect();
    let mut series = vec![Series {
        name: "train loss".into(),
        color: BLUE,
        style: Style::Line,
        points: train,
    }];
    if !valid.is_empty() {
        series.push(Series {
            name: "validation loss".into(),
            color: ORANGE,
            style: Style::Line,
            points: valid,
        });
    }
    Chart {
        title: title.to_string(),
        x_label: "epoch".into(),
        y_label: "loss (MSE)".into(),
        series,
        labels: Vec::new(),
        integer_x: true,
        width: 800,
        height: 500,
    }
}
