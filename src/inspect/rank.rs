//! Rankings read off a model: a user's top-N unrated items, an item's nearest neighbours by cosine
//! similarity of item factors, and the lowest and highest biases.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde::Serialize;

use crate::files::ModelFile;

use super::{RatingCounts, item_title};

/// An item (or a user, in bias tables) with the number it was ranked by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// The model's index.
    pub index: u32,
    /// The raw id.
    pub id: String,
    /// The title (items of a model with titles), else `None`.
    pub title: Option<String>,
    /// The predicted rating (recommend) or the cosine similarity (similar).
    pub score: f32,
}

fn scored_item(model: &ModelFile, index: u32, score: f32) -> Scored {
    Scored {
        index,
        id: model.items.raw(index).to_string(),
        title: model.titles.as_ref().map(|t| t[index as usize].clone()),
        score,
    }
}

/// Highest score first; equal scores by ascending index, so the order is reproducible.
fn by_score_descending(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The `n` items with the highest predicted rating for model user `user`, leaving out `rated`
/// (model item indices).
pub fn recommend(model: &ModelFile, user: u32, rated: &HashSet<u32>, n: usize) -> Vec<Scored> {
    let y_range = model.config.y_range;
    let mut scores: Vec<(u32, f32)> = (0..model.items.len() as u32)
        .filter(|item| !rated.contains(item))
        .map(|item| (item, model.params.predict(user, item, y_range)))
        .collect();
    scores.sort_by(by_score_descending);
    scores
        .into_iter()
        .take(n)
        .map(|(item, score)| scored_item(model, item, score))
        .collect()
}

/// The `n` items whose factor rows `Q[j]` have the highest cosine similarity to `Q[item]`, the
/// item itself left out. A zero row has similarity 0 to everything.
pub fn similar_items(model: &ModelFile, item: u32, n: usize) -> Vec<Scored> {
    similar_items_where(model, item, n, &|_| true)
}

/// [`similar_items`] among the items for which `keep` is true (e.g. those with enough ratings:
/// rarely rated items keep near-random factors that can point anywhere).
pub fn similar_items_where(
    model: &ModelFile,
    item: u32,
    n: usize,
    keep: &dyn Fn(u32) -> bool,
) -> Vec<Scored> {
    let k = model.params.factors;
    let q = &model.params.item_factors;
    let row = |i: u32| &q[i as usize * k..][..k];
    let norm = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let target = row(item);
    let target_norm = norm(target);
    let mut scores: Vec<(u32, f32)> = (0..model.items.len() as u32)
        .filter(|&other| other != item && keep(other))
        .map(|other| {
            let v = row(other);
            let dot: f64 = target
                .iter()
                .zip(v)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let denominator = target_norm * norm(v);
            let cosine = if denominator > 0.0 {
                dot / denominator
            } else {
                0.0
            };
            (other, cosine as f32)
        })
        .collect();
    scores.sort_by(by_score_descending);
    scores
        .into_iter()
        .take(n)
        .map(|(other, score)| scored_item(model, other, score))
        .collect()
}

/// One row of a bias table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BiasRow {
    pub index: u32,
    pub id: String,
    /// The item's title; `None` for users and for models without titles.
    pub title: Option<String>,
    pub bias: f32,
    /// Mean rating in the data given with `--data`; `None` without data or without ratings there.
    pub mean_rating: Option<f64>,
    /// Number of ratings in that data; `None` without data.
    pub ratings: Option<usize>,
}

/// The lowest and the highest biases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BiasTable {
    /// `users` or `items`.
    pub of: &'static str,
    /// Lowest bias first.
    pub lowest: Vec<BiasRow>,
    /// Highest bias first.
    pub highest: Vec<BiasRow>,
}

/// The `n` lowest and `n` highest item biases (`bi`), or user biases (`bu`) when `users`, with
/// each one's mean rating and count when `counts` are given, among those with at least
/// `min_ratings` ratings there (all when `counts` is `None`).
pub fn bias_table(
    model: &ModelFile,
    users: bool,
    counts: Option<&RatingCounts>,
    min_ratings: usize,
    n: usize,
) -> BiasTable {
    let biases = match users {
        true => &model.params.user_bias,
        false => &model.params.item_bias,
    };
    let enough = |index: usize| {
        counts.is_none_or(|c| {
            let per = if users { &c.users } else { &c.items };
            per[index].1 >= min_ratings
        })
    };
    let mut order: Vec<(u32, f32)> = biases
        .iter()
        .enumerate()
        .filter(|&(index, _)| enough(index))
        .map(|(index, &bias)| (index as u32, bias))
        .collect();
    order.sort_by(by_score_descending);
    let row = |&(index, bias): &(u32, f32)| {
        let stats = counts.map(|c| match users {
            true => c.users[index as usize],
            false => c.items[index as usize],
        });
        BiasRow {
            index,
            id: match users {
                true => model.users.raw(index).to_string(),
                false => model.items.raw(index).to_string(),
            },
            title: (!users && model.titles.is_some()).then(|| item_title(model, index).to_string()),
            bias,
            mean_rating: stats.and_then(|(sum, count)| (count > 0).then(|| sum / count as f64)),
            ratings: stats.map(|(_, count)| count),
        }
    };
    BiasTable {
        of: if users { "users" } else { "items" },
        highest: order.iter().take(n).map(row).collect(),
        lowest: order.iter().rev().take(n).map(row).collect(),
    }
}
