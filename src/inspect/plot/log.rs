//! The training log (`train --json` lines) and its loss-per-epoch chart.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{BLUE, Chart, ORANGE, Series, Style};
use crate::inspect::InspectError;

/// One epoch of a training log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEpoch {
    pub epoch: f64,
    pub train_loss: f64,
    pub valid_loss: Option<f64>,
}

/// Reads the epochs of a JSON-lines training log (the lines of `train --json` with `epoch` and
/// `train_loss`; a `valid_loss` may be null). Other lines, such as the summary, are ignored.
pub fn read_log(path: &Path) -> Result<Vec<LogEpoch>, InspectError> {
    let text = std::fs::read_to_string(path).map_err(|source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_log(&text, path)
}

/// [`read_log`] on text already read; `path` is for messages.
pub fn parse_log(text: &str, path: &Path) -> Result<Vec<LogEpoch>, InspectError> {
    let bad = |line: usize, message: String| InspectError::BadLogLine {
        path: PathBuf::from(path),
        line,
        message,
    };
    let mut epochs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        let (Some(epoch), Some(train)) = (object.get("epoch"), object.get("train_loss")) else {
            continue;
        };
        let number = |value: &Value, key: &str| {
            value.as_f64().ok_or_else(|| {
                bad(
                    n + 1,
                    format!("`{key}` is {value}, expected a number: {line:.120}"),
                )
            })
        };
        let valid_loss = match object.get("valid_loss") {
            None | Some(Value::Null) => None,
            Some(value) => Some(number(value, "valid_loss")?),
        };
        epochs.push(LogEpoch {
            epoch: number(epoch, "epoch")?,
            train_loss: number(train, "train_loss")?,
            valid_loss,
        });
    }
    if epochs.is_empty() {
        return Err(InspectError::Invalid(format!(
            "{}: no line has `epoch` and `train_loss`; write the log with `collabgpu train --json > FILE`",
            path.display()
        )));
    }
    Ok(epochs)
}

/// The loss-per-epoch chart of a training log.
pub fn loss_chart(epochs: &[LogEpoch], title: &str) -> Chart {
    let train = epochs.iter().map(|e| (e.epoch, e.train_loss)).collect();
    let valid: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| e.valid_loss.map(|v| (e.epoch, v)))
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
