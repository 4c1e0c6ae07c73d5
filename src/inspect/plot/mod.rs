//! Charts for people: a scatter of the item factors on their first two principal components, and
//! train and validation loss per epoch. One layout is drawn twice: as SVG text written by hand, and
//! as a PNG rasterised with `tiny-skia`, with labels from the `font8x8` bitmap font, so no system
//! font is needed.

use std::path::{Path, PathBuf};

use font8x8::UnicodeFonts;
use serde_json::Value;

use super::pca::Pca;
use super::{InspectError, RatingCounts, item_title};
use crate::model::ModelFile;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

const BLACK: Rgb = Rgb(0, 0, 0);
const GREY: Rgb = Rgb(110, 110, 110);
const GRID: Rgb = Rgb(228, 228, 228);
/// Matplotlib's first two colours, which people read as "train" and "valid".
pub const BLUE: Rgb = Rgb(31, 119, 180);
pub const ORANGE: Rgb = Rgb(255, 127, 14);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Dots of this radius, with this opacity.
    Points { radius: f64, opacity: f64 },
    /// A line through the points, with a dot at each.
    Line,
}

/// A named set of points in data coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend.
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

/// Width of one character of the bitmap font, in pixels; the SVG uses a monospace font of the
/// same advance so both pictures lay out alike.
const CHAR_WIDTH: f64 = 8.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 24.0;
const MARGIN_TOP: f64 = 48.0;
const MARGIN_BOTTOM: f64 = 56.0;

/// Where text is anchored horizontally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    Middle,
    End,
}

/// The drawing operations a chart needs, in pixel coordinates (y grows downwards).
trait Canvas {
    fn line(&mut self, from: (f64, f64), to: (f64, f64), color: Rgb, width: f64);
    fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64);
    fn circle(&mut self, centre: (f64, f64), radius: f64, color: Rgb, opacity: f64);
    /// A filled rectangle, optionally outlined.
    fn rect(
        &mut self,
        corner: (f64, f64),
        size: (f64, f64),
        fill: Rgb,
        opacity: f64,
        outline: Option<Rgb>,
    );
    /// Text whose baseline-ish bottom is at `at.1`; `scale` 1 is the 8-pixel font.
    fn text(&mut self, at: (f64, f64), text: &str, anchor: Anchor, scale: u32, color: Rgb);
    /// Text turned a quarter left, centred on `at` (the y-axis title).
    fn vertical_text(&mut self, at: (f64, f64), text: &str, color: Rgb);
}

fn text_width(text: &str, scale: u32) -> f64 {
    text.chars().count() as f64 * CHAR_WIDTH * scale as f64
}

/// Tick positions covering `[lo, hi]` at a 1-2-5 step, about `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
    let span = (hi - lo).abs().max(f64::EPSILON);
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    if integer {
        step = step.max(1.0).round();
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|t| t as f64 * step).collect()
}

/// A tick value written as short as its step allows.
fn tick_text(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
        text[1..].to_string()
    } else {
        text
    }
}

/// Data range of the chart, padded so no point sits on the frame.
fn data_range(chart: &Chart) -> ((f64, f64), (f64, f64)) {
    let all = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .chain(chart.labels.iter().map(|l| (l.x, l.y)))
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |lo: f64, hi: f64| {
        let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
        (lo - 0.05 * span, hi + 0.05 * span)
    };
    (pad(x0, x1), pad(y0, y1))
}

impl Chart {
    fn draw(&self, canvas: &mut dyn Canvas) {
        let (w, h) = (self.width as f64, self.height as f64);
        let (left, right, top, bottom) =
            (MARGIN_LEFT, w - MARGIN_RIGHT, MARGIN_TOP, h - MARGIN_BOTTOM);
        let ((x0, x1), (y0, y1)) = data_range(self);
        let px = |x: f64| left + (x - x0) / (x1 - x0) * (right - left);
        let py = |y: f64| bottom - (y - y0) / (y1 - y0) * (bottom - top);

        canvas.rect((0.0, 0.0), (w, h), Rgb(255, 255, 255), 1.0, None);
        let x_ticks = nice_ticks(x0, x1, 8, self.integer_x);
        let y_ticks = nice_ticks(y0, y1, 8, false);
        let step = |ticks: &[f64]| {
            if ticks.len() > 1 {
                ticks[1] - ticks[0]
            } else {
                1.0
            }
        };
        for &t in &x_ticks {
            canvas.line((px(t), top), (px(t), bottom), GRID, 1.0);
            canvas.line((px(t), bottom), (px(t), bottom + 5.0), BLACK, 1.0);
            let text = tick_text(t, step(&x_ticks));
            canvas.text((px(t), bottom + 18.0), &text, Anchor::Middle, 1, BLACK);
        }
        for &t in &y_ticks {
            canvas.line((left, py(t)), (right, py(t)), GRID, 1.0);
            canvas.line((left - 5.0, py(t)), (left, py(t)), BLACK, 1.0);
            let text = tick_text(t, step(&y_ticks));
            canvas.text((left - 8.0, py(t) + 4.0), &text, Anchor::End, 1, BLACK);
        }
        canvas.rect(
            (left, top),
            (right - left, bottom - top),
            BLACK,
            0.0,
            Some(BLACK),
        );

        for series in &self.series {
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| (px(x), py(y)))
                .collect();
            match series.style {
                Style::Points { radius, opacity } => {
                    for &p in &points {
                        canvas.circle(p, radius, series.color, opacity);
                    }
                }
                Style::Line => {
                    canvas.polyline(&points, series.color, 2.0);
                    for &p in &points {
                        canvas.circle(p, 3.5, series.color, 1.0);
                    }
                }
            }
        }

        self.draw_point_labels(canvas, (left, right, top, bottom), &px, &py);
        self.draw_legend(canvas, right, top);

        // The title in double size when it fits the width, else in the normal size.
        let title_scale = if text_width(&self.title, 2) <= w - 20.0 {
            2
        } else {
            1
        };
        canvas.text(
            (w / 2.0, 30.0),
            &self.title,
            Anchor::Middle,
            title_scale,
            BLACK,
        );
        canvas.text(
            ((left + right) / 2.0, h - 14.0),
            &self.x_label,
            Anchor::Middle,
            1,
            BLACK,
        );
        canvas.vertical_text((22.0, (top + bottom) / 2.0), &self.y_label, BLACK);
    }

    /// Labels beside their points, each moved to the first of a few spots where it overlaps no
    /// label already placed (and kept at the first spot when none is free), on a pale backing so
    /// grid lines and dots do not cross the letters.
    fn draw_point_labels(
        &self,
        canvas: &mut dyn Canvas,
        (left, right, top, bottom): (f64, f64, f64, f64),
        px: &dyn Fn(f64) -> f64,
        py: &dyn Fn(f64) -> f64,
    ) {
        let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
        let height = 10.0;
        for label in &self.labels {
            let (x, y) = (px(label.x), py(label.y));
            let width = text_width(&label.text, 1) + 2.0;
            // Right of the point first, then left, then above or below it, each nearest first.
            let mut spots = Vec::new();
            for dy in [-5.0, -17.0, 7.0, -29.0, 19.0] {
                spots.push((x + 6.0, y + dy));
                spots.push((x - 6.0 - width, y + dy));
            }
            spots.push((x - width / 2.0, y - 20.0));
            spots.push((x - width / 2.0, y + 10.0));
            let fits = |&(sx, sy): &(f64, f64)| {
                sx >= left
                    && sx + width <= right
                    && sy >= top
                    && sy + height <= bottom
                    && placed.iter().all(|&(px0, py0, pw, ph)| {
                        sx + width <= px0 || px0 + pw <= sx || sy + height <= py0 || py0 + ph <= sy
                    })
            };
            let (sx, sy) = spots.iter().copied().find(|spot| fits(spot)).unwrap_or((
                (x + 6.0).min(right - width).max(left),
                (y - 5.0).clamp(top, bottom - height),
            ));
            placed.push((sx, sy, width, height));
            canvas.circle((x, y), 3.0, ORANGE, 1.0);
        }
        // Texts after every dot, so no dot is drawn over a title.
        for (label, &(sx, sy, width, height)) in self.labels.iter().zip(&placed) {
            canvas.rect((sx, sy), (width, height), Rgb(255, 255, 255), 0.75, None);
            canvas.text((sx + 1.0, sy + 9.0), &label.text, Anchor::Start, 1, BLACK);
        }
    }

    /// A boxed legend in the top right corner of the plot area, one line per named series.
    fn draw_legend(&self, canvas: &mut dyn Canvas, right: f64, top: f64) {
        let named: Vec<&Series> = self.series.iter().filter(|s| !s.name.is_empty()).collect();
        if named.is_empty() {
            return;
        }
        let longest = named
            .iter()
            .map(|s| text_width(&s.name, 1))
            .fold(0.0, f64::max);
        let (width, height) = (longest + 44.0, named.len() as f64 * 18.0 + 8.0);
        let corner = (right - width - 10.0, top + 10.0);
        canvas.rect(corner, (width, height), Rgb(255, 255, 255), 0.9, Some(GREY));
        for (row, series) in named.iter().enumerate() {
            let y = corner.1 + 13.0 + row as f64 * 18.0;
            let x = corner.0 + 8.0;
            match series.style {
                Style::Line => {
                    canvas.line((x, y), (x + 22.0, y), series.color, 2.0);
                    canvas.circle((x + 11.0, y), 3.5, series.color, 1.0);
                }
                Style::Points { .. } => canvas.circle((x + 11.0, y), 4.0, series.color, 1.0),
            }
            canvas.text((x + 30.0, y + 4.0), &series.name, Anchor::Start, 1, BLACK);
        }
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let mut svg = SvgCanvas {
            body: String::new(),
        };
        self.draw(&mut svg);
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\">\n{}</svg>\n",
            svg.body,
            w = self.width,
            h = self.height
        )
    }

    /// The chart as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, InspectError> {
        let pixmap = tiny_skia::Pixmap::new(self.width, self.height).ok_or_else(|| {
            InspectError::Png(format!(
                "a {}x{} picture is empty or too large",
                self.width, self.height
            ))
        })?;
        let mut png = PngCanvas { pixmap };
        self.draw(&mut png);
        png.pixmap
            .encode_png()
            .map_err(|e| InspectError::Png(e.to_string()))
    }

    /// Writes the chart as SVG or PNG, chosen by the extension of `path`.
    pub fn save(&self, path: &Path) -> Result<(), InspectError> {
        let bytes = match picture_kind(path)? {
            PictureKind::Svg => self.to_svg().into_bytes(),
            PictureKind::Png => self.to_png()?,
        };
        std::fs::write(path, bytes).map_err(|source| InspectError::Io {
            path: path.to_path_buf(),
            source,
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

struct SvgCanvas {
    body: String,
}

/// Text made safe inside SVG markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Canvas for SvgCanvas {
    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), color: Rgb, width: f64) {
        self.body += &format!(
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"{width}\"/>\n",
            color.hex()
        );
    }

    fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64) {
        let list: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        self.body += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"/>\n",
            list.join(" "),
            color.hex()
        );
    }

    fn circle(&mut self, (cx, cy): (f64, f64), radius: f64, color: Rgb, opacity: f64) {
        self.body += &format!(
            "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{radius}\" fill=\"{}\" fill-opacity=\"{opacity}\"/>\n",
            color.hex()
        );
    }

    fn rect(
        &mut self,
        (x, y): (f64, f64),
        (w, h): (f64, f64),
        fill: Rgb,
        opacity: f64,
        outline: Option<Rgb>,
    ) {
        let stroke = outline.map_or("none".to_string(), Rgb::hex);
        self.body += &format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\" fill-opacity=\"{opacity}\" stroke=\"{stroke}\"/>\n",
            fill.hex()
        );
    }

    fn text(&mut self, (x, y): (f64, f64), text: &str, anchor: Anchor, scale: u32, color: Rgb) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        // 13.3 px of a monospace font advances about 8 px per character, like the bitmap font.
        self.body += &format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>\n",
            13.3 * scale as f64,
            color.hex(),
            escape(text)
        );
    }

    fn vertical_text(&mut self, (x, y): (f64, f64), text: &str, color: Rgb) {
        self.body += &format!(
            "<text x=\"0\" y=\"0\" font-size=\"13.3\" text-anchor=\"middle\" fill=\"{}\" transform=\"translate({x:.1},{y:.1}) rotate(-90)\">{}</text>\n",
            color.hex(),
            escape(text)
        );
    }
}

struct PngCanvas {
    pixmap: tiny_skia::Pixmap,
}

fn paint(color: Rgb, opacity: f64) -> tiny_skia::Paint<'static> {
    let mut paint = tiny_skia::Paint::default();
    paint.set_color_rgba8(
        color.0,
        color.1,
        color.2,
        (opacity.clamp(0.0, 1.0) * 255.0).round() as u8,
    );
    paint.anti_alias = true;
    paint
}

/// The 8x8 glyph of `c`: ASCII, then Latin-1 (MovieLens titles have accents), else `?`.
fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

impl PngCanvas {
    /// Sets one pixel (opaque), ignoring positions outside the picture.
    fn dot(&mut self, x: i64, y: i64, color: Rgb) {
        let (w, h) = (self.pixmap.width() as i64, self.pixmap.height() as i64);
        if (0..w).contains(&x) && (0..h).contains(&y) {
            let pixel = tiny_skia::PremultipliedColorU8::from_rgba(color.0, color.1, color.2, 255)
                .expect("opaque colours are valid premultiplied colours");
            self.pixmap.pixels_mut()[(y * w + x) as usize] = pixel;
        }
    }
}

impl Canvas for PngCanvas {
    fn line(&mut self, from: (f64, f64), to: (f64, f64), color: Rgb, width: f64) {
        self.polyline(&[from, to], color, width);
    }

    fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64) {
        let mut builder = tiny_skia::PathBuilder::new();
        for (n, &(x, y)) in points.iter().enumerate() {
            // Whole-pixel lines of odd width sit on pixel centres, so they are crisp, not blurred.
            let (x, y) = ((x.round() + 0.5) as f32, (y.round() + 0.5) as f32);
            if n == 0 {
                builder.move_to(x, y);
            } else {
                builder.line_to(x, y);
            }
        }
        if let Some(path) = builder.finish() {
            let stroke = tiny_skia::Stroke {
                width: width as f32,
                ..tiny_skia::Stroke::default()
            };
            self.pixmap.stroke_path(
                &path,
                &paint(color, 1.0),
                &stroke,
                tiny_skia::Transform::identity(),
                None,
            );
        }
    }

    fn circle(&mut self, (cx, cy): (f64, f64), radius: f64, color: Rgb, opacity: f64) {
        if let Some(path) = tiny_skia::PathBuilder::from_circle(cx as f32, cy as f32, radius as f32)
        {
            self.pixmap.fill_path(
                &path,
                &paint(color, opacity),
                tiny_skia::FillRule::Winding,
                tiny_skia::Transform::identity(),
                None,
            );
        }
    }

    fn rect(
        &mut self,
        (x, y): (f64, f64),
        (w, h): (f64, f64),
        fill: Rgb,
        opacity: f64,
        outline: Option<Rgb>,
    ) {
        if opacity > 0.0
            && let Some(rect) = tiny_skia::Rect::from_xywh(x as f32, y as f32, w as f32, h as f32)
        {
            self.pixmap.fill_rect(
                rect,
                &paint(fill, opacity),
                tiny_skia::Transform::identity(),
                None,
            );
        }
        if let Some(color) = outline {
            let (x1, y1) = (x + w, y + h);
            self.polyline(&[(x, y), (x1, y), (x1, y1), (x, y1), (x, y)], color, 1.0);
        }
    }

    fn text(&mut self, (x, y): (f64, f64), text: &str, anchor: Anchor, scale: u32, color: Rgb) {
        let width = text_width(text, scale);
        let start = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        };
        let (left, top) = (
            start.round() as i64,
            (y - 8.0 * scale as f64).round() as i64,
        );
        let scale = scale as i64;
        for (n, c) in text.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for column in 0..8 {
                    if bits & (1 << column) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                let gx = left + (n as i64 * 8 + column) * scale + dx;
                                self.dot(gx, top + row as i64 * scale + dy, color);
                            }
                        }
                    }
                }
            }
        }
    }

    fn vertical_text(&mut self, (x, y): (f64, f64), text: &str, color: Rgb) {
        // Turned a quarter left: glyph column c goes up the picture, glyph row r goes right.
        let length = text_width(text, 1);
        let (left, bottom) = ((x - 4.0).round() as i64, (y + length / 2.0).round() as i64);
        for (n, c) in text.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for column in 0..8 {
                    if bits & (1 << column) != 0 {
                        self.dot(left + row as i64, bottom - (n as i64 * 8 + column), color);
                    }
                }
            }
        }
    }
}

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

/// How many of the most-rated items the factor map fits its axes to, as the fastai chapter does:
/// rarely rated items keep factors near their initial noise and would only blur the axes.
pub const FACTOR_MAP_ITEMS: usize = 1000;

/// The item factors on their first two principal components, and what went into the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorMap {
    pub chart: Chart,
    pub pca: Pca,
    /// The model item indices the axes were fitted to and that are drawn.
    pub fitted: Vec<u32>,
    /// The model item indices that carry a title, in drawing order.
    pub labelled: Vec<u32>,
}

/// The factor map of `model`: with `counts`, fitted to the [`FACTOR_MAP_ITEMS`] most-rated items
/// with the `labels` most-rated titled; without, fitted to every item with the `labels` items
/// farthest from the centre titled.
pub fn factor_map(model: &ModelFile, counts: Option<&RatingCounts>, labels: usize) -> FactorMap {
    let k = model.params.factors;
    let fitted: Vec<u32> = match counts {
        Some(counts) => counts
            .most_rated_items()
            .into_iter()
            .take(FACTOR_MAP_ITEMS)
            .collect(),
        None => (0..model.items.len() as u32).collect(),
    };
    let pca = Pca::fit(&model.params.item_factors, k, &fitted, 2);
    let q = &model.params.item_factors;
    let coordinates: Vec<(f64, f64)> = fitted
        .iter()
        .map(|&i| {
            let c = pca.project(&q[i as usize * k..][..k]);
            (c[0], c.get(1).copied().unwrap_or(0.0))
        })
        .collect();
    let labelled: Vec<usize> = match counts {
        // `fitted` is already most-rated first.
        Some(_) => (0..fitted.len().min(labels)).collect(),
        None => {
            let mut order: Vec<usize> = (0..fitted.len()).collect();
            let distance = |n: usize| coordinates[n].0.hypot(coordinates[n].1);
            order.sort_by(|&a, &b| distance(b).total_cmp(&distance(a)).then(a.cmp(&b)));
            order.truncate(labels);
            order
        }
    };
    let share = |axis: usize| {
        let variance = pca.variances.get(axis).copied().unwrap_or(0.0);
        100.0 * variance / pca.total_variance.max(f64::MIN_POSITIVE)
    };
    let what = match counts {
        Some(_) => format!("the {} most-rated items", fitted.len()),
        None => format!("all {} items", fitted.len()),
    };
    let chart = Chart {
        title: format!("Item factors of {what}"),
        x_label: format!("PC1 ({:.1}% of the variance)", share(0)),
        y_label: format!("PC2 ({:.1}% of the variance)", share(1)),
        series: vec![Series {
            name: String::new(),
            color: BLUE,
            style: Style::Points {
                radius: 2.5,
                opacity: 0.35,
            },
            points: coordinates.clone(),
        }],
        labels: labelled
            .iter()
            .map(|&n| PointLabel {
                x: coordinates[n].0,
                y: coordinates[n].1,
                text: item_title(model, fitted[n]).to_string(),
            })
            .collect(),
        integer_x: false,
        width: 1100,
        height: 800,
    };
    FactorMap {
        chart,
        labelled: labelled.iter().map(|&n| fitted[n]).collect(),
        pca,
        fitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_step_by_one_two_five() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5, false),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice_ticks(0.8, 5.2, 8, true), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            nice_ticks(-12.0, 37.0, 5, false),
            vec![-10.0, 0.0, 10.0, 20.0, 30.0]
        );
        assert_eq!(tick_text(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_text(-0.0, 0.5), "0.0");
    }
}
