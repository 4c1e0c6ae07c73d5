//! Pictures: the training-log reader, the loss chart and the factor map, in SVG and PNG.

use std::path::Path;

use collabgpu::data::IdMap;
use collabgpu::files::ModelFile;
use collabgpu::inspect::plot::{BLUE, Chart, ORANGE, Rgb, factor_map, loss_chart, parse_log};
use collabgpu::inspect::{InspectError, RatingCounts};
use collabgpu::model::Params;
use collabgpu::train::TrainConfig;

/// What an SVG shows, read back with an XML parser (so it must be well-formed).
struct SvgSummary {
    size: (u32, u32),
    /// Every `<text>`, trimmed, in document order.
    texts: Vec<String>,
    circles: usize,
}

fn read_svg(svg: &str) -> SvgSummary {
    let document = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let number = |name: &str| root.attribute(name).unwrap().parse().unwrap();
    let elements = || root.descendants().filter(|n| n.is_element());
    SvgSummary {
        size: (number("width"), number("height")),
        texts: elements()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect(),
        circles: elements().filter(|n| n.has_tag_name("circle")).count(),
    }
}

/// A decoded PNG: width, height and RGB pixels.
struct Picture {
    size: (u32, u32),
    rgb: Vec<u8>,
}

impl Picture {
    fn decode(bytes: &[u8]) -> Self {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a PNG header");
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).expect("PNG pixels");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        rgb.truncate(info.buffer_size());
        Picture {
            size: (info.width, info.height),
            rgb,
        }
    }

    /// How many pixels have exactly this colour.
    fn count(&self, color: Rgb) -> usize {
        self.rgb
            .chunks_exact(3)
            .filter(|p| p == &[color.0, color.1, color.2])
            .count()
    }

    /// How many pixels are nearly black: text, since axes and frames are grey.
    fn dark(&self) -> usize {
        self.rgb
            .chunks_exact(3)
            .filter(|p| p.iter().all(|&c| c < 60))
            .count()
    }
}

/// The PNG of `chart` has its size, its series' colours and text.
fn assert_png_draws(chart: &Chart, colors: &[Rgb]) {
    let picture = Picture::decode(&chart.to_png().unwrap());
    assert_eq!(picture.size, (chart.width, chart.height));
    for &color in colors {
        assert!(
            picture.count(color) > 20,
            "{color:?} is missing from the PNG"
        );
    }
    // A title, axis titles and ticks in the bundled font come to a few thousand dark pixels.
    assert!(picture.dark() > 1000, "{} dark pixels", picture.dark());
}

const LOG: &str = r#"{"type":"epoch","epoch":1,"train_loss":0.9,"valid_loss":0.95}
not json at all
{"type":"epoch","epoch":2,"train_loss":0.7,"valid_loss":0.85}
{"type":"epoch","epoch":3,"train_loss":0.6,"valid_loss":null}
{"type":"summary","valid_loss":0.85}
"#;

#[test]
fn log_reader_keeps_epoch_lines_and_ignores_the_rest() {
    let epochs = parse_log(LOG, Path::new("train.jsonl")).unwrap();
    let got: Vec<(usize, f64, Option<f64>)> = epochs
        .iter()
        .map(|e| (e.epoch, e.train_loss, e.valid_loss))
        .collect();
    assert_eq!(
        got,
        [(1, 0.9, Some(0.95)), (2, 0.7, Some(0.85)), (3, 0.6, None)]
    );
}

#[test]
fn log_reader_names_the_bad_line_and_the_empty_log() {
    let text = "{\"epoch\":1,\"train_loss\":0.9}\n{\"epoch\":2,\"train_loss\":\"high\"}\n";
    let err = parse_log(text, Path::new("t.jsonl")).unwrap_err();
    assert!(
        matches!(err, InspectError::BadLogLine { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("t.jsonl, line 2"), "{err}");
    let err = parse_log("hello\n", Path::new("t.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("train --json"), "{err}");
}

#[test]
fn loss_chart_draws_both_curves_with_legend_and_axes() {
    let epochs = parse_log(LOG, Path::new("train.jsonl")).unwrap();
    let chart = loss_chart(&epochs, "Loss per epoch");
    assert_eq!(chart.series.len(), 2);
    assert_eq!(chart.series[1].points, [(1.0, 0.95), (2.0, 0.85)]);
    let svg = read_svg(&chart.to_svg().unwrap());
    assert_eq!(svg.size, (chart.width, chart.height));
    for text in [
        "Loss per epoch",
        "train loss",
        "validation loss",
        "epoch",
        "loss (MSE)",
    ] {
        assert!(
            svg.texts.iter().any(|t| t == text),
            "{text:?} missing: {:?}",
            svg.texts
        );
    }
    // Whole-epoch ticks only: 1, 2, 3, and no 1.5.
    assert!(svg.texts.iter().any(|t| t == "2") && !svg.texts.iter().any(|t| t == "1.5"));
    // A dot per epoch of each curve (3 train, 2 valid), and one beside each legend line.
    assert_eq!(svg.circles, 3 + 2 + 2);
    assert_png_draws(&chart, &[BLUE, ORANGE]);
}

/// Items on a line through the origin along (1, 1), plus small noise, so PC1 is that line.
fn line_model(items: usize) -> ModelFile {
    let k = 2;
    let item_factors: Vec<f32> = (0..items)
        .flat_map(|i| {
            let t = i as f32 - items as f32 / 2.0;
            let wobble = if i % 2 == 0 { 0.05 } else { -0.05 };
            [t + wobble, t - wobble]
        })
        .collect();
    ModelFile {
        params: Params {
            factors: k,
            user_factors: vec![0.0; 2],
            item_factors,
            user_bias: vec![0.0],
            item_bias: vec![0.0; items],
        },
        users: IdMap::from_raw_ids(vec!["u".into()]),
        items: IdMap::from_raw_ids((0..items).map(|i| i.to_string()).collect()),
        titles: Some((0..items).map(|i| format!("Movie <{i}> & Co")).collect()),
        config: TrainConfig {
            factors: k,
            ..TrainConfig::default()
        },
        split: None,
        training: None,
    }
}

#[test]
fn factor_map_labels_the_most_rated_and_fits_the_main_axis() {
    let model = line_model(6);
    let counts = RatingCounts {
        users: vec![(0.0, 0)],
        // Items 4, 1 and 5 are the most rated; item 3 has no rating.
        items: vec![
            (3.0, 1),
            (20.0, 5),
            (6.0, 2),
            (0.0, 0),
            (40.0, 9),
            (12.0, 3),
        ],
    };
    let map = factor_map(&model, Some(&counts), 2).unwrap();
    assert_eq!(map.fitted, [4, 1, 5, 2, 0]);
    assert_eq!(map.labelled, [4, 1]);
    let axis = &map.pca.components[0];
    let half = 0.5f64.sqrt();
    // The wobble leans a little with t on this subset, so the axis is near, not at, the diagonal.
    assert!(
        (axis[0] - half).abs() < 0.02 && (axis[1] - half).abs() < 0.02,
        "{axis:?}"
    );
    assert!(
        map.chart.title.contains("the 5 most-rated items"),
        "{}",
        map.chart.title
    );
    assert!(
        map.chart.x_label.starts_with("PC1 (99."),
        "{}",
        map.chart.x_label
    );
    let raw = map.chart.to_svg().unwrap();
    // Titles are escaped, and only the labelled ones appear.
    assert!(raw.contains("Movie &lt;4&gt; &amp; Co"), "labels missing");
    let svg = read_svg(&raw);
    assert!(svg.texts.iter().any(|t| t == "Movie <1> & Co"));
    assert!(!svg.texts.iter().any(|t| t.starts_with("Movie <5>")));
    // The legend says what the two colours mean.
    for text in ["other item", "titled item: the 2 most rated"] {
        assert!(
            svg.texts.iter().any(|t| t == text),
            "{text:?} missing: {:?}",
            svg.texts
        );
    }
    // One dot per fitted item, and one per legend line.
    assert_eq!(svg.circles, 5 + 2);
    assert_eq!(map.chart.series[1].points.len(), 2);
    assert_png_draws(&map.chart, &[ORANGE]);
    assert_eq!((map.chart.width, map.chart.height), (1100, 800));
}

#[test]
fn factor_map_without_counts_labels_the_extremes() {
    let map = factor_map(&line_model(7), None, 2).unwrap();
    assert_eq!(map.fitted.len(), 7);
    // Items 0 and 6 lie at the two ends of the line, equally far from its centre.
    let mut labelled = map.labelled.clone();
    labelled.sort();
    assert_eq!(labelled, [0, 6]);
    let svg = read_svg(&map.chart.to_svg().unwrap());
    assert!(
        svg.texts
            .iter()
            .any(|t| t == "titled item: the 2 farthest from the centre"),
        "{:?}",
        svg.texts
    );
    assert_eq!(svg.circles, 7 + 2);
}

#[test]
fn charts_are_written_by_extension_and_other_names_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chart = loss_chart(&parse_log(LOG, Path::new("x")).unwrap(), "t");
    chart.save(&dir.path().join("a.svg")).unwrap();
    chart.save(&dir.path().join("a.PNG")).unwrap();
    let svg = read_svg(&std::fs::read_to_string(dir.path().join("a.svg")).unwrap());
    assert_eq!(svg.size, (chart.width, chart.height));
    let png = Picture::decode(&std::fs::read(dir.path().join("a.PNG")).unwrap());
    assert_eq!(png.size, (chart.width, chart.height));
    let err = chart
        .save(&dir.path().join("a.jpg"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(".svg or .png"), "{err}");
}
