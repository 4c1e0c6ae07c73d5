//! The factor map: the item factors on their first two principal components.

use super::{BLUE, Chart, ORANGE, PointLabel, Series, Style};
use crate::files::ModelFile;
use crate::inspect::pca::Pca;
use crate::inspect::{InspectError, RatingCounts, item_title};

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
/// farthest from the centre titled. A model without factors (K = 0) or without items has no
/// map, and says so.
pub fn factor_map(
    model: &ModelFile,
    counts: Option<&RatingCounts>,
    labels: usize,
) -> Result<FactorMap, InspectError> {
    let k = model.params.factors;
    if k == 0 || model.items.is_empty() || model.params.item_factors.len() != model.items.len() * k
    {
        return Err(InspectError::Invalid(format!(
            "the model has K = {k} factors for {} items: a factor map needs at least one factor \
             and one item; plot a model trained with --factors 1 or more",
            model.items.len()
        )));
    }
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
    let shares = pca.variance_shares();
    let share = |axis: usize| 100.0 * shares.get(axis).copied().unwrap_or(0.0);
    let (what, titled) = match counts {
        Some(_) => (
            format!("the {} most-rated items", fitted.len()),
            format!("the {} most rated", labelled.len()),
        ),
        None => (
            format!("all {} items", fitted.len()),
            format!("the {} farthest from the centre", labelled.len()),
        ),
    };
    let is_labelled = {
        let mut flags = vec![false; fitted.len()];
        for &n in &labelled {
            flags[n] = true;
        }
        flags
    };
    // Titled items get their own colour, so the legend can say why those were picked.
    let untitled_points = (0..fitted.len())
        .filter(|&n| !is_labelled[n])
        .map(|n| coordinates[n])
        .collect();
    let titled_points = labelled.iter().map(|&n| coordinates[n]).collect();
    let chart = Chart {
        title: format!("Item factors of {what}"),
        x_label: format!("PC1 ({:.1}% of the variance)", share(0)),
        y_label: format!("PC2 ({:.1}% of the variance)", share(1)),
        series: vec![
            Series {
                name: "other item".into(),
                color: BLUE,
                style: Style::Points {
                    radius: 2.5,
                    opacity: 0.35,
                },
                points: untitled_points,
            },
            Series {
                name: format!("titled item: {titled}"),
                color: ORANGE,
                style: Style::Points {
                    radius: 3.5,
                    opacity: 1.0,
                },
                points: titled_points,
            },
        ],
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
    Ok(FactorMap {
        chart,
        labelled: labelled.iter().map(|&n| fitted[n]).collect(),
        pca,
        fitted,
    })
}
