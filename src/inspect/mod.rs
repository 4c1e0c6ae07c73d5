//! What a user does with a trained model: metrics on a ratings set, predictions, top-N
//! recommendations, similar items, bias tables, and pictures of the item factors and of training.
//!
//! Everything here works on a [`ModelFile`] and talks in raw ids, as the data files write them:
//! a data set read later has its own dense indices (its own `U` and `I`), so every rating is mapped
//! to the model through its raw user and item ids, never through dense indices.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::data::{Dataset, IdMap, canonical_id};
use crate::files::ModelFile;

pub mod fold_in;
pub mod lookup;
pub mod metrics;
pub mod pca;
pub mod plot;
pub mod rank;
pub mod ranking;

pub use fold_in::{NewRatings, fold_in};
pub use lookup::{ItemCandidate, find_item, find_item_exactly, find_user};
pub use metrics::{EvalReport, evaluate};
pub use pca::Pca;
pub use rank::{
    BiasRow, BiasTable, Scored, bias_table, recommend, similar_items, similar_items_where,
};
pub use ranking::{RankingOptions, RankingReport, evaluate_ranking, ranking_metrics};

/// Errors of the inspection commands. Each says what was not found or what is wrong, and what to
/// do about it.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(
        "user {id:?} is not in the model ({users} users, raw ids from {first:?} to {last:?}); give a user id as the training data writes it"
    )]
    UnknownUser {
        id: String,
        users: usize,
        first: String,
        last: String,
    },
    #[error(
        "no item matches {query:?}: it is not a raw item id of the model{titles}; check the spelling or name the item by its id"
    )]
    UnknownItem { query: String, titles: String },
    #[error(
        "{query:?} matches {count} items; name one by its id or by more of its title:\n{}",
        list_candidates(candidates, *count)
    )]
    AmbiguousItem {
        query: String,
        count: usize,
        /// The first few matches (id and title), for the message.
        candidates: Vec<ItemCandidate>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    BadLogLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}, line {line}: {message}")]
    BadRatingsLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot draw the picture: {0}")]
    Draw(String),
}

/// The candidates of an ambiguous item, one per line, and how many more there are.
fn list_candidates(candidates: &[ItemCandidate], count: usize) -> String {
    let mut lines: Vec<String> = candidates
        .iter()
        .map(|c| format!("  id {:<8} {}", c.id, c.title))
        .collect();
    if count > candidates.len() {
        lines.push(format!("  ... and {} more", count - candidates.len()));
    }
    lines.join("\n")
}

/// Raw id ([`canonical_id`], so that a model written before ids were canonical still matches)
/// -> model index, for mapping many ratings at once.
fn index_by_raw(ids: &IdMap) -> HashMap<Cow<'_, str>, u32> {
    ids.raw_ids()
        .iter()
        .enumerate()
        .map(|(index, raw)| (canonical_id(raw), index as u32))
        .collect()
}

/// For each dense index of `data_ids` (a data set's map), the model's index of the same raw id.
fn map_to_model(data_ids: &IdMap, model_ids: &IdMap) -> Vec<Option<u32>> {
    let model = index_by_raw(model_ids);
    data_ids
        .raw_ids()
        .iter()
        .map(|raw| model.get(&canonical_id(raw)).copied())
        .collect()
}

/// Mean rating and number of ratings per model user and per model item, from a data set. An item's
/// count holds all its ratings there, also those of users the model does not know (and likewise
/// for users); users and items the model does not know are not listed.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingCounts {
    /// `(sum of ratings, count)` per model user index.
    pub users: Vec<(f64, usize)>,
    /// `(sum of ratings, count)` per model item index.
    pub items: Vec<(f64, usize)>,
}

impl RatingCounts {
    /// Counts the ratings of `dataset` against the model's ids.
    pub fn of(model: &ModelFile, dataset: &Dataset) -> RatingCounts {
        let user_map = map_to_model(&dataset.users, &model.users);
        let item_map = map_to_model(&dataset.items, &model.items);
        let mut users = vec![(0.0, 0); model.users.len()];
        let mut items = vec![(0.0, 0); model.items.len()];
        let r = &dataset.ratings;
        for n in 0..r.len() {
            let rating = r.ratings[n] as f64;
            if let Some(u) = user_map[r.users[n] as usize] {
                users[u as usize].0 += rating;
                users[u as usize].1 += 1;
            }
            if let Some(i) = item_map[r.items[n] as usize] {
                items[i as usize].0 += rating;
                items[i as usize].1 += 1;
            }
        }
        RatingCounts { users, items }
    }

    /// The counts the model recorded of its own training ratings; `None` when it has no record
    /// (written before models kept one).
    pub fn of_training(model: &ModelFile) -> Option<RatingCounts> {
        let index = model.training.as_ref()?;
        let pair = |sums: &[f64], counts: &[u32]| {
            sums.iter()
                .zip(counts)
                .map(|(&sum, &count)| (sum, count as usize))
                .collect()
        };
        Some(RatingCounts {
            users: pair(&index.user_sums, &index.user_counts),
            items: pair(&index.item_sums, &index.item_counts),
        })
    }

    /// The model item indices, most-rated first (ties by index), with at least one rating.
    pub fn most_rated_items(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.items.len() as u32)
            .filter(|&i| self.items[i as usize].1 > 0)
            .collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(self.items[i as usize].1), i));
        order
    }
}

/// The title of a model item, or its raw id when the model has no titles.
pub fn item_title(model: &ModelFile, item: u32) -> &str {
    match &model.titles {
        Some(titles) => &titles[item as usize],
        None => model.items.raw(item),
    }
}

/// The model item indices that user `user` rated in the model's training ratings; `None` when the
/// model has no record of them.
pub fn rated_in_training(model: &ModelFile, user: u32) -> Option<HashSet<u32>> {
    let index = model.training.as_ref()?;
    Some(index.rated(user).iter().copied().collect())
}

/// The model item indices that user `raw_user` rated in `dataset`; `None` when the data set has
/// no rating of that user.
pub fn rated_by(model: &ModelFile, dataset: &Dataset, raw_user: &str) -> Option<HashSet<u32>> {
    let data_user = dataset.users.index_of(raw_user)?;
    let item_map = map_to_model(&dataset.items, &model.items);
    let r = &dataset.ratings;
    Some(
        (0..r.len())
            .filter(|&n| r.users[n] == data_user)
            .filter_map(|n| item_map[r.items[n] as usize])
            .collect(),
    )
}
