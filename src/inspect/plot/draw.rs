//! Lays out a [`Chart`] with `plotters`, on its SVG backend or on an RGB bitmap encoded as PNG.
//!
//! plotters picks ticks itself, but on a float axis it would tick epochs at 0.5; the ticks here
//! come from [`nice_ticks`] instead, so both axes step by 1, 2 or 5 and epochs stay whole.
//!
//! plotters 0.3.7 puts each bitmap glyph on a whole pixel, so PNG letter spacing is a little
//! uneven; the SVG leaves text to the viewer and is exact.

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Chart, Rgb, Style};
use crate::inspect::InspectError;

/// The font every text is drawn in. plotters writes this name into the SVG's `font-family` as it
/// stands, so it doubles as a CSS list with a generic fallback.
const FONT: &str = "DejaVu Sans, sans-serif";

/// DejaVu Sans cut down to Latin text (see `fonts/README.md` beside this file): plotters needs the glyphs
/// to draw bitmap text and the advances to measure any text, labels included.
static FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans-subset.ttf");

const TITLE_SIZE: f64 = 26.0;
const AXIS_TITLE_SIZE: f64 = 19.0;
const TICK_SIZE: f64 = 16.0;
const LABEL_SIZE: f64 = 15.0;
/// Radius of the dots on a line; smaller ones come out square in the bitmap.
const MARKER_RADIUS: f64 = 4.0;
/// Width of a series' sample in the legend, and the legend's inner margin.
const LEGEND_MARK: i32 = 22;
const LEGEND_MARGIN: i32 = 10;

const BLACK_TEXT: RGBColor = RGBColor(20, 20, 20);
const GRID: RGBColor = RGBColor(228, 228, 228);
const FRAME: RGBColor = RGBColor(110, 110, 110);

fn color(rgb: Rgb) -> RGBColor {
    RGBColor(rgb.0, rgb.1, rgb.2)
}

/// Registers [`FONT_BYTES`] under [`FONT`] once per process.
fn register_font() -> Result<(), InspectError> {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let loaded = *LOADED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if loaded {
        Ok(())
    } else {
        Err(InspectError::Draw(
            "the bundled font does not parse; the build is broken".into(),
        ))
    }
}

fn draw_error(error: impl std::fmt::Display) -> InspectError {
    InspectError::Draw(error.to_string())
}

/// The chart as an SVG document.
pub(super) fn svg(chart: &Chart) -> Result<String, InspectError> {
    register_font()?;
    let mut text = String::new();
    {
        let root =
            SVGBackend::with_string(&mut text, (chart.width, chart.height)).into_drawing_area();
        draw(chart, &root).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(text)
}

/// The chart as PNG bytes.
pub(super) fn png(chart: &Chart) -> Result<Vec<u8>, InspectError> {
    register_font()?;
    let (width, height) = (chart.width, chart.height);
    let bytes = (width as usize)
        .checked_mul(height as usize)
        .and_then(|pixels| pixels.checked_mul(3))
        .filter(|&bytes| bytes > 0 && bytes <= 1 << 30)
        .ok_or_else(|| {
            InspectError::Draw(format!("a {width}x{height} picture is empty or too large"))
        })?;
    let mut rgb = vec![0u8; bytes];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(chart, &root).map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&rgb))
        .map_err(draw_error)?;
    Ok(png)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let ((x0, x1), (y0, y1)) = data_range(chart);
    let x_ticks = nice_ticks(x0, x1, 8, chart.integer_x);
    let y_ticks = nice_ticks(y0, y1, 8, false);
    let (x_step, y_step) = (tick_step(&x_ticks), tick_step(&y_ticks));

    let mut plot = ChartBuilder::on(root)
        .caption(
            &chart.title,
            (FONT, TITLE_SIZE).into_font().color(&BLACK_TEXT),
        )
        .margin(12)
        .margin_right(28)
        .x_label_area_size(56)
        .y_label_area_size(76)
        .build_cartesian_2d(
            TickedAxis::new(x0..x1, x_ticks),
            TickedAxis::new(y0..y1, y_ticks),
        )?;
    plot.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style((FONT, AXIS_TITLE_SIZE).into_font().color(&BLACK_TEXT))
        .label_style((FONT, TICK_SIZE).into_font().color(&BLACK_TEXT))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(FRAME)
        .x_label_formatter(&|x| tick_text(*x, x_step))
        .y_label_formatter(&|y| tick_text(*y, y_step))
        .draw()?;
    let (columns, rows) = plot.plotting_area().get_pixel_range();
    // The mesh draws only the left and bottom axes; close the frame.
    root.draw(&Rectangle::new(
        [(columns.start, rows.start), (columns.end, rows.end)],
        FRAME.stroke_width(1),
    ))?;

    for series in &chart.series {
        let paint = color(series.color);
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let drawn = match series.style {
            Style::Points { radius, opacity } => plot.draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, radius, paint.mix(opacity).filled())),
            )?,
            Style::Line => {
                plot.draw_series(LineSeries::new(
                    points.iter().copied(),
                    paint.stroke_width(2),
                ))?;
                plot.draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, MARKER_RADIUS, paint.filled())),
                )?
            }
        };
        if series.name.is_empty() {
            continue;
        }
        drawn.label(&series.name);
        match series.style {
            // The legend's dot is opaque and a little larger than the data's, so its colour reads.
            Style::Points { radius, .. } => drawn.legend(move |(x, y)| {
                Circle::new((x + LEGEND_MARK / 2, y), radius.max(4.0), paint.filled())
            }),
            Style::Line => drawn.legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (LEGEND_MARK, 0)], paint.stroke_width(2))
                    + Circle::new((LEGEND_MARK / 2, 0), MARKER_RADIUS, paint.filled())
            }),
        };
    }

    let legend = legend_box(chart, &plot)?;
    draw_point_labels(chart, &plot, root, legend)?;
    if let Some((x, y, _, _)) = legend {
        let (columns, rows) = plot.plotting_area().get_pixel_range();
        plot.configure_series_labels()
            .position(SeriesLabelPosition::Coordinate(
                x - columns.start,
                y - rows.start,
            ))
            .margin(LEGEND_MARGIN as u32)
            .legend_area_size(LEGEND_MARK as u32 + LEGEND_MARGIN as u32)
            .label_font((FONT, LABEL_SIZE).into_font().color(&BLACK_TEXT))
            .background_style(WHITE.mix(0.9))
            .border_style(FRAME)
            .draw()?;
    }
    Ok(())
}

/// A box as left, top, width and height in pixels.
type PixelBox = (i32, i32, i32, i32);

/// Where the legend goes, in the top right corner of the plot area: worked out here rather than
/// left to plotters so that point labels can keep clear of it. `None` when no series has a name.
fn legend_box<DB: DrawingBackend, X: Ranged, Y: Ranged>(
    chart: &Chart,
    plot: &ChartContext<DB, Cartesian2d<X, Y>>,
) -> Result<Option<PixelBox>, DrawingAreaErrorKind<DB::ErrorType>> {
    let font = (FONT, LABEL_SIZE).into_font();
    let mut lines = MultiLineText::<_, &str>::new((0, 0), font);
    let mut any = false;
    for series in chart.series.iter().filter(|s| !s.name.is_empty()) {
        lines.push_line(series.name.as_str());
        any = true;
    }
    if !any {
        return Ok(None);
    }
    // The font loaded before anything was drawn, so measuring cannot fail here.
    let (text_width, text_height) = lines
        .estimate_dimension()
        .map_err(|_| DrawingAreaErrorKind::LayoutError)?;
    let width = text_width + LEGEND_MARK + 3 * LEGEND_MARGIN;
    let height = text_height + 2 * LEGEND_MARGIN;
    let (columns, rows) = plot.plotting_area().get_pixel_range();
    Ok(Some((
        columns.end - width - 10,
        rows.start + 10,
        width,
        height,
    )))
}

/// How much two boxes overlap, in square pixels.
fn overlap((ax, ay, aw, ah): PixelBox, (bx, by, bw, bh): PixelBox) -> i64 {
    let across = ((ax + aw).min(bx + bw) - ax.max(bx)).max(0) as i64;
    let down = ((ay + ah).min(by + bh) - ay.max(by)).max(0) as i64;
    across * down
}

/// Labels beside their points, each at the first of several spots, nearest first, that stays in
/// the plot area and overlaps neither the legend nor a label already placed; when every spot
/// overlaps, at the one that overlaps least. A label more than a line away from its point gets a
/// thin leader line. Labels sit on a pale backing so grid lines and dots do not cross the letters.
fn draw_point_labels<DB: DrawingBackend, X, Y>(
    chart: &Chart,
    plot: &ChartContext<DB, Cartesian2d<X, Y>>,
    root: &DrawingArea<DB, Shift>,
    legend: Option<PixelBox>,
) -> DrawResult<DB>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (columns, rows) = plot.plotting_area().get_pixel_range();
    let (left, right, top, bottom) = (columns.start, columns.end, rows.start, rows.end);
    let font = (FONT, LABEL_SIZE).into_font().color(&BLACK_TEXT);
    let obstacles: Vec<PixelBox> = legend.into_iter().collect();
    let mut placed: Vec<(PixelBox, (i32, i32))> = Vec::new();
    for label in &chart.labels {
        let point = plot.backend_coord(&(label.x, label.y));
        let (x, y) = point;
        let (text_width, _) = root.estimate_text_size(&label.text, &font)?;
        let (width, height) = (text_width as i32 + 4, LABEL_SIZE as i32 + 1);
        // Right of the point, then left, then above or below it, each a line farther off.
        let mut spots = Vec::new();
        for lines in [0, -1, 1, -2, 2, -3, 3, -4, 4] {
            let sy = y - height / 2 + lines * height;
            spots.push((x + 6, sy));
            spots.push((x - 6 - width, sy));
            spots.push((x - width / 2, sy - height / 2 - 6 * lines.signum()));
        }
        let cost = |&(sx, sy): &(i32, i32)| -> i64 {
            let candidate = (sx, sy, width, height);
            let outside = sx < left || sx + width > right || sy < top || sy + height > bottom;
            let crowded: i64 = obstacles
                .iter()
                .copied()
                .chain(placed.iter().map(|&(b, _)| b))
                .map(|other| overlap(candidate, other))
                .sum();
            if outside { i64::MAX } else { crowded }
        };
        let spot = spots
            .iter()
            .copied()
            .find(|spot| cost(spot) == 0)
            .or_else(|| {
                spots
                    .iter()
                    .copied()
                    .min_by_key(cost)
                    .filter(|s| cost(s) < i64::MAX)
            })
            .unwrap_or((
                (x + 6).min(right - width).max(left),
                (y - height / 2).clamp(top, (bottom - height).max(top)),
            ));
        placed.push(((spot.0, spot.1, width, height), point));
    }
    for &((sx, sy, width, height), (x, y)) in &placed {
        if y < sy - height / 2 || y > sy + height + height / 2 {
            let edge = if y < sy { sy } else { sy + height };
            let to_x = x.clamp(sx, sx + width);
            root.draw(&PathElement::new([(x, y), (to_x, edge)], FRAME.mix(0.6)))?;
        }
    }
    for (label, &((sx, sy, width, height), _)) in chart.labels.iter().zip(&placed) {
        root.draw(&Rectangle::new(
            [(sx, sy), (sx + width, sy + height)],
            WHITE.mix(0.75).filled(),
        ))?;
        let anchored = font.pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            label.text.as_str(),
            (sx + 2, sy + height / 2),
            anchored,
        ))?;
    }
    Ok(())
}

/// A float axis ticked at given values. plotters' own `with_key_points` would do, but its axis
/// cannot take a label formatter, and the mesh needs one.
struct TickedAxis {
    scale: RangedCoordf64,
    ticks: Vec<f64>,
}

impl TickedAxis {
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Self {
            scale: range.into(),
            ticks,
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.scale.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.scale.range()
    }
}

/// Tick positions covering `[lo, hi]` at a 1-2-5 step, about `target` of them.
fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
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

fn tick_step(ticks: &[f64]) -> f64 {
    if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    }
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
