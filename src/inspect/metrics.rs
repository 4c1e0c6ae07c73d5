//! Error metrics of a model on a ratings set, mapped through raw ids.

use std::collections::HashSet;

use serde::Serialize;

use crate::data::Dataset;
use crate::files::ModelFile;

use super::map_to_model;

/// MSE, RMSE and MAE over the ratings the model can predict, and what it could not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Ratings in the data set.
    pub ratings: usize,
    /// Ratings whose user and item the model knows: the ones the metrics average over.
    pub evaluated: usize,
    /// Ratings left out because the model has never seen their user, their item, or both.
    pub skipped: usize,
    /// Ratings whose user the model has never seen.
    pub unknown_user_ratings: usize,
    /// Ratings whose item the model has never seen.
    pub unknown_item_ratings: usize,
    /// Distinct raw user ids of the data that the model has never seen.
    pub unknown_users: usize,
    /// Distinct raw item ids of the data that the model has never seen.
    pub unknown_items: usize,
    /// `(1/N) * sum (pred - r)^2` over the evaluated ratings; `None` when there are none.
    pub mse: Option<f64>,
    pub rmse: Option<f64>,
    /// `(1/N) * sum |pred - r|`.
    pub mae: Option<f64>,
}

/// Evaluates `model` on every rating of `dataset` whose raw user and item ids the model knows,
/// and counts the others (the data set's dense indices are its own: ids are matched by raw id).
pub fn evaluate(model: &ModelFile, dataset: &Dataset) -> EvalReport {
    let user_map = map_to_model(&dataset.users, &model.users);
    let item_map = map_to_model(&dataset.items, &model.items);
    let y_range = model.config.y_range;
    let r = &dataset.ratings;
    let (mut squared, mut absolute, mut evaluated) = (0.0f64, 0.0f64, 0usize);
    let (mut unknown_user_ratings, mut unknown_item_ratings, mut skipped) = (0, 0, 0);
    let mut unknown_users = HashSet::new();
    let mut unknown_items = HashSet::new();
    for n in 0..r.len() {
        let (data_user, data_item) = (r.users[n], r.items[n]);
        let user = user_map[data_user as usize];
        let item = item_map[data_item as usize];
        if user.is_none() {
            unknown_user_ratings += 1;
            unknown_users.insert(data_user);
        }
        if item.is_none() {
            unknown_item_ratings += 1;
            unknown_items.insert(data_item);
        }
        let (Some(user), Some(item)) = (user, item) else {
            skipped += 1;
            continue;
        };
        let error = model.params.predict(user, item, y_range) as f64 - r.ratings[n] as f64;
        squared += error * error;
        absolute += error.abs();
        evaluated += 1;
    }
    let mean = |sum: f64| (evaluated > 0).then(|| sum / evaluated as f64);
    let mse = mean(squared);
    EvalReport {
        ratings: r.len(),
        evaluated,
        skipped,
        unknown_user_ratings,
        unknown_item_ratings,
        unknown_users: unknown_users.len(),
        unknown_items: unknown_items.len(),
        mse,
        rmse: mse.map(f64::sqrt),
        mae: mean(absolute),
    }
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let metric = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.6}"));
        writeln!(f, "ratings           {}", self.ratings)?;
        writeln!(f, "evaluated         {}", self.evaluated)?;
        writeln!(
            f,
            "skipped           {} (unknown user: {} ratings of {} users; unknown item: {} ratings of {} items)",
            self.skipped,
            self.unknown_user_ratings,
            self.unknown_users,
            self.unknown_item_ratings,
            self.unknown_items
        )?;
        writeln!(f, "MSE               {}", metric(self.mse))?;
        writeln!(f, "RMSE              {}", metric(self.rmse))?;
        write!(f, "MAE               {}", metric(self.mae))
    }
}
