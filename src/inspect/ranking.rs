//! Top-K ranking metrics: how well the model's ordering of unseen items finds what a user went on
//! to like. For each user, every item the user did not rate in training is a candidate; the model
//! ranks the candidates by score and the first `K` are its recommendations. A held-out rating at
//! or above the relevance threshold makes its item *relevant* to that user. With `R` a user's
//! relevant items, `L` the top-`K` list and `hits(j)` the relevant items among its first `j`:
//!
//! - `hr@K` (hit rate): 1 when `L` holds at least one relevant item, else 0;
//! - `recall@K`: `|L ∩ R| / |R|`;
//! - `ndcg@K`: `sum over relevant L[j] of 1/log2(j + 2)`, divided by the best possible value,
//!   `sum over j < min(|R|, K) of 1/log2(j + 2)` (binary relevance, `j` from 0);
//! - `map@K`: the mean over users of `AP@K = sum over relevant L[j] of hits(j + 1)/(j + 1)`,
//!   divided by `min(|R|, K)`.
//!
//! Each is averaged over the users with at least one relevant item; users without one are counted
//! apart. Candidates are ranked by the raw score `p_u . q_i + b_u + b_i`: the sigmoid range is
//! increasing, so the order is the prediction's order, without the ties that a saturated f32
//! sigmoid would make. Equal scores rank the lower model index first, so the result does not
//! depend on the thread count. A held-out rating of an item the user also rated in training is
//! not a candidate and is left out of `R`.

use rayon::prelude::*;
use serde::Serialize;

use crate::data::{IdMap, Ratings};
use crate::files::ModelFile;
use crate::model::Params;

use super::map_to_model;

/// What to compute: the list length `K` and the relevance threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankingOptions {
    /// `K`, the length of each user's list; at least 1.
    pub k: usize,
    /// A held-out rating at or above this makes its item relevant.
    pub relevant: f32,
}

/// The four metrics at one `K`, averaged over [`RankingReport::users`] users.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingReport {
    pub k: usize,
    pub relevant: f32,
    /// Users with at least one relevant held-out item: the ones the metrics average over.
    pub users: usize,
    /// Users with held-out ratings of known items but none relevant.
    pub users_without_relevant: usize,
    /// Relevant (user, item) pairs over all users.
    pub relevant_pairs: usize,
    /// Held-out ratings left out because the model does not know their user or item.
    pub skipped: usize,
    /// `None` when no user has a relevant item.
    pub ndcg: Option<f64>,
    pub recall: Option<f64>,
    pub map: Option<f64>,
    pub hit_rate: Option<f64>,
}

/// One user's metrics, before averaging.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct UserMetrics {
    ndcg: f64,
    recall: f64,
    ap: f64,
    hit: f64,
}

/// The metrics of `params` on `heldout`, with `train` (both in the model's indices) deciding
/// which items are candidates for each user.
pub fn ranking_metrics(
    params: &Params,
    train: &Ratings,
    heldout: &Ratings,
    options: RankingOptions,
) -> RankingReport {
    let identity_users: Vec<Option<u32>> = (0..params.users() as u32).map(Some).collect();
    let identity_items: Vec<Option<u32>> = (0..params.items() as u32).map(Some).collect();
    let maps = IndexMaps {
        train_users: &identity_users,
        train_items: &identity_items,
        heldout_users: &identity_users,
        heldout_items: &identity_items,
    };
    rank(params, train, heldout, &maps, options)
}

/// [`ranking_metrics`] for ratings indexed by a data set's own id maps (`users`, `items`): each
/// rating reaches the model through its raw ids; ratings of users or items the model does not
/// know are skipped and counted.
pub fn evaluate_ranking(
    model: &ModelFile,
    users: &IdMap,
    items: &IdMap,
    train: &Ratings,
    heldout: &Ratings,
    options: RankingOptions,
) -> RankingReport {
    let user_map = map_to_model(users, &model.users);
    let item_map = map_to_model(items, &model.items);
    let maps = IndexMaps {
        train_users: &user_map,
        train_items: &item_map,
        heldout_users: &user_map,
        heldout_items: &item_map,
    };
    rank(&model.params, train, heldout, &maps, options)
}

/// Data-set index -> model index, for the users and items of each ratings set.
struct IndexMaps<'a> {
    train_users: &'a [Option<u32>],
    train_items: &'a [Option<u32>],
    heldout_users: &'a [Option<u32>],
    heldout_items: &'a [Option<u32>],
}

fn rank(
    params: &Params,
    train: &Ratings,
    heldout: &Ratings,
    maps: &IndexMaps,
    options: RankingOptions,
) -> RankingReport {
    let k = options.k.max(1);
    let users = params.users();
    // Per model user: the items rated in training, and the held-out (item, rating) pairs.
    let mut rated: Vec<Vec<u32>> = vec![Vec::new(); users];
    for n in 0..train.len() {
        let user = maps.train_users[train.users[n] as usize];
        let item = maps.train_items[train.items[n] as usize];
        if let (Some(user), Some(item)) = (user, item) {
            rated[user as usize].push(item);
        }
    }
    let mut held: Vec<Vec<(u32, f32)>> = vec![Vec::new(); users];
    let mut skipped = 0;
    for n in 0..heldout.len() {
        let user = maps.heldout_users[heldout.users[n] as usize];
        let item = maps.heldout_items[heldout.items[n] as usize];
        match (user, item) {
            (Some(user), Some(item)) => held[user as usize].push((item, heldout.ratings[n])),
            _ => skipped += 1,
        }
    }
    for list in &mut rated {
        list.sort_unstable();
        list.dedup();
    }

    // Users in order, so the sums below are taken in one order whatever the thread count.
    let per_user: Vec<Option<(UserMetrics, usize)>> = (0..users)
        .into_par_iter()
        .map(|user| {
            let rated = &rated[user];
            let mut relevant: Vec<u32> = held[user]
                .iter()
                .filter(|&&(item, rating)| {
                    rating >= options.relevant && rated.binary_search(&item).is_err()
                })
                .map(|&(item, _)| item)
                .collect();
            relevant.sort_unstable();
            relevant.dedup();
            if relevant.is_empty() {
                return None;
            }
            let top = top_k(params, user as u32, rated, k);
            Some((user_metrics(&top, &relevant, k), relevant.len()))
        })
        .collect();

    let users_with_heldout = (0..users)
        .filter(|&u| {
            held[u]
                .iter()
                .any(|&(item, _)| rated[u].binary_search(&item).is_err())
        })
        .count();
    let mut sum = UserMetrics::default();
    let (mut counted, mut relevant_pairs) = (0usize, 0usize);
    for (metrics, relevant) in per_user.into_iter().flatten() {
        sum.ndcg += metrics.ndcg;
        sum.recall += metrics.recall;
        sum.ap += metrics.ap;
        sum.hit += metrics.hit;
        counted += 1;
        relevant_pairs += relevant;
    }
    let mean = |total: f64| (counted > 0).then(|| total / counted as f64);
    RankingReport {
        k,
        relevant: options.relevant,
        users: counted,
        users_without_relevant: users_with_heldout - counted,
        relevant_pairs,
        skipped,
        ndcg: mean(sum.ndcg),
        recall: mean(sum.recall),
        map: mean(sum.ap),
        hit_rate: mean(sum.hit),
    }
}

/// The `k` best-scored items for `user` among those not in `rated` (sorted), best first; equal
/// scores put the lower index first.
fn top_k(params: &Params, user: u32, rated: &[u32], k: usize) -> Vec<u32> {
    let mut scored: Vec<(f32, u32)> = (0..params.items() as u32)
        .filter(|item| rated.binary_search(item).is_err())
        .map(|item| (params.raw_score(user, item), item))
        .collect();
    let better = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, better);
        scored.truncate(k);
    }
    scored.sort_unstable_by(better);
    scored.into_iter().map(|(_, item)| item).collect()
}

/// The four metrics of one user's list `top` against the sorted relevant items.
fn user_metrics(top: &[u32], relevant: &[u32], k: usize) -> UserMetrics {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let (mut hits, mut dcg, mut precision_sum) = (0usize, 0.0, 0.0);
    for (rank, item) in top.iter().enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += discount(rank);
            precision_sum += hits as f64 / (rank + 1) as f64;
        }
    }
    let ideal = relevant.len().min(k);
    let ideal_dcg: f64 = (0..ideal).map(discount).sum();
    UserMetrics {
        ndcg: dcg / ideal_dcg,
        recall: hits as f64 / relevant.len() as f64,
        ap: precision_sum / ideal as f64,
        hit: if hits > 0 { 1.0 } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with `K = 1`, zero biases and user factors of 1, so item `i`'s score is `q[i]`.
    fn scores_model(users: usize, item_scores: &[f32]) -> Params {
        let mut params = Params::zeros(users, item_scores.len(), 1);
        params.user_factors.fill(1.0);
        params.item_factors.copy_from_slice(item_scores);
        params
    }

    fn ratings(triples: &[(u32, u32, f32)]) -> Ratings {
        Ratings {
            users: triples.iter().map(|t| t.0).collect(),
            items: triples.iter().map(|t| t.1).collect(),
            ratings: triples.iter().map(|t| t.2).collect(),
            timestamps: None,
        }
    }

    const AT_3: RankingOptions = RankingOptions {
        k: 3,
        relevant: 4.0,
    };

    #[test]
    fn a_hand_computed_user() {
        // Scores rank the items 5, 4, 3, 2, 1, 0; item 4 was rated in training, so the list at
        // K = 3 is [5, 3, 2]. Relevant: items 3 and 0 (item 1's 3.5 is below the threshold).
        let params = scores_model(1, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let train = ratings(&[(0, 4, 5.0)]);
        let heldout = ratings(&[(0, 3, 4.0), (0, 0, 5.0), (0, 1, 3.5)]);
        let report = ranking_metrics(&params, &train, &heldout, AT_3);
        assert_eq!((report.users, report.relevant_pairs), (1, 2));
        // One hit (item 3) at rank 1 of 0..3: DCG = 1/log2(3); ideal = 1/log2(2) + 1/log2(3).
        let dcg = 1.0 / 3f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((report.ndcg.unwrap() - dcg / ideal).abs() < 1e-12);
        assert_eq!(report.recall, Some(0.5));
        // AP@3 = (hits(2)/2) / min(2, 3) = (1/2)/2.
        assert_eq!(report.map, Some(0.25));
        assert_eq!(report.hit_rate, Some(1.0));
    }

    #[test]
    fn a_perfect_list_scores_one_and_a_missed_one_zero() {
        let params = scores_model(2, &[3.0, 2.0, 1.0, 0.0]);
        // User 0 likes the two best items; user 1 likes only the worst, which K = 3 misses.
        let heldout = ratings(&[(0, 0, 5.0), (0, 1, 4.0), (1, 3, 5.0)]);
        let report = ranking_metrics(&params, &ratings(&[]), &heldout, AT_3);
        assert_eq!(report.users, 2);
        assert_eq!(report.ndcg, Some(0.5));
        assert_eq!(report.recall, Some(0.5));
        assert_eq!(report.map, Some(0.5));
        assert_eq!(report.hit_rate, Some(0.5));
    }

    #[test]
    fn users_without_relevant_items_are_counted_apart() {
        let params = scores_model(3, &[1.0, 0.0]);
        // User 0: only a low rating; user 1: a relevant one; user 2: nothing held out.
        let heldout = ratings(&[(0, 0, 2.0), (1, 1, 4.5)]);
        let report = ranking_metrics(&params, &ratings(&[]), &heldout, AT_3);
        assert_eq!((report.users, report.users_without_relevant), (1, 1));
        // K = 3 over 2 items: the list is both items, the hit at rank 1.
        assert_eq!(report.recall, Some(1.0));
        assert_eq!(report.map, Some(0.5));
    }

    #[test]
    fn no_relevant_item_gives_no_metric() {
        let params = scores_model(1, &[1.0]);
        let report = ranking_metrics(&params, &ratings(&[]), &ratings(&[(0, 0, 1.0)]), AT_3);
        assert_eq!(report.users, 0);
        assert_eq!(report.ndcg, None);
    }

    #[test]
    fn equal_scores_rank_the_lower_index_first() {
        // All scores equal: the list at K = 1 is item 0, so only a user who likes item 0 hits.
        let params = scores_model(2, &[1.0, 1.0, 1.0]);
        let heldout = ratings(&[(0, 0, 5.0), (1, 2, 5.0)]);
        let options = RankingOptions {
            k: 1,
            relevant: 4.0,
        };
        let report = ranking_metrics(&params, &ratings(&[]), &heldout, options);
        assert_eq!(report.hit_rate, Some(0.5));
    }

    #[test]
    fn a_held_out_item_also_rated_in_training_is_not_relevant() {
        let params = scores_model(1, &[2.0, 1.0]);
        let train = ratings(&[(0, 0, 5.0)]);
        let heldout = ratings(&[(0, 0, 5.0), (0, 1, 5.0)]);
        let report = ranking_metrics(&params, &train, &heldout, AT_3);
        assert_eq!(report.relevant_pairs, 1);
        assert_eq!(report.recall, Some(1.0));
        assert_eq!(report.ndcg, Some(1.0));
    }
}
