//! Charts for people: a scatter of the item factors on their first two principal components, and
//! train and validation loss per epoch.
//!
//! A [`Chart`] says what a picture shows; `draw` lays it out with `plotters`, once for SVG and
//! once for PNG. PNG text is drawn from a small bundled font (`src/inspect/plot/fonts`), so no system font
//! is needed; SVG names the same font and lets the viewer draw it.

mod draw;
mod factors;
mod log;

use std::path::Path;

use super::InspectError;

pub use factors::{FACTOR_MAP_ITEMS, FactorMap, factor_map};
pub use log::{LogEpochs, loss_chart, parse_log, parse_log_lines, read_log};

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Matplotlib's first two colours, which people read as "train" and "valid".
pub const BLUE: Rgb = Rgb(31, 119, 180);
pub const ORANGE: Rgb = Rgb(255, 127, 14);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Dots of this radius in pixels, with this opacity.
    Points { radius: f64, opacity: f64 },
    /// A line through the points, with a dot at each.
    Line,
}

/// A named set of points in data coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend; an empty name keeps the series out of it.
    pub name: String,
    pub color: Rgb,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
}

/// A text placed next to a point, in data coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct PointLabel {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

/// Everything a picture shows; [`Chart::to_svg`] and [`Chart::to_png`] draw the same layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub labels: Vec<PointLabel>,
    /// Ticks on whole numbers only (epochs).
    pub integer_x: bool,
    /// Pixels.
    pub width: u32,
    pub height: u32,
}

impl Chart {
    /// The chart as an SVG document.
    pub fn to_svg(&self) -> Result<String, InspectError> {
        draw::svg(self)
    }

    /// The chart as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, InspectError> {
        draw::png(self)
    }

    /// Writes the chart as SVG or PNG, chosen by the extension of `path`, whole or not at all
    /// ([`crate::atomic_file`]): a full disk leaves the previous picture, not an empty one.
    pub fn save(&self, path: &Path) -> Result<(), InspectError> {
        let bytes = match picture_kind(path)? {
            PictureKind::Svg => self.to_svg()?.into_bytes(),
            PictureKind::Png => self.to_png()?,
        };
        crate::atomic_file::write_bytes_atomically(path, &bytes).map_err(|source| {
            InspectError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// The picture formats `plot` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    Svg,
    Png,
}

/// The format an output path asks for, by its extension.
pub fn picture_kind(path: &Path) -> Result<PictureKind, InspectError> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("svg") => Ok(PictureKind::Svg),
        Some("png") => Ok(PictureKind::Png),
        _ => Err(InspectError::Invalid(format!(
            "--out {}: the picture's name must end in .svg or .png",
            path.display()
        ))),
    }
}
