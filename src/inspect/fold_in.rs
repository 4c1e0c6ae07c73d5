//! Fold-in: a user who was not in training gets factors and a bias from their ratings alone, with
//! every item's factors and bias held fixed, by closed-form ridge regression.
//!
//! With `y_range = (lo, hi)` the model predicts `lo + (hi - lo) * sigmoid(p . q_i + b_u + b_i)`.
//! Each rating `r_i` becomes a target for the raw score through the inverse of that range,
//! `t_i = logit(s_i)` with `s_i = (r_i - lo) / (hi - lo)` clamped to `[EDGE, 1 - EDGE]` (a
//! rating at or past an end of the range has no finite logit), or `t_i = r_i` without a y-range.
//! With `x = (p, b_u)` (`K + 1` numbers), `a_i = (q_i, 1)` and `y_i = t_i - b_i`, the fold-in
//! minimises
//!
//! ```text
//! sum over the user's ratings of (a_i . x - y_i)^2 + lambda * |x|^2
//! ```
//!
//! whose minimiser is `x = (A^T A + lambda I)^-1 A^T y` = `A^T (A A^T + lambda I)^-1 y`: the first
//! form when the user has more than `K + 1` ratings (a `(K + 1)`-square system), the second
//! otherwise (an `n`-square one), both solved by Cholesky in `f64`. `lambda > 0` makes either
//! system positive definite. The bias-only fit (`p = 0`) is `b_u = sum y_i / (n + lambda)`.

use std::collections::HashMap;
use std::path::Path;

use crate::data::{IdMap, RatingIndex, Ratings, canonical_id};
use crate::files::ModelFile;
use crate::model::Params;

use super::{InspectError, find_item_exactly};

/// How close to the ends of the y-range a rating's share is clamped before its logit:
/// `logit(1e-3)` is about -6.9, a raw score the sigmoid range maps to within 0.1% of `lo`.
pub const EDGE: f64 = 1e-3;

/// The default `lambda`, measured on MovieLens 100K with the default recipe (docs/MATH.md):
/// every tenth user held out of training, folded in from every other rating in time order,
/// scored on the rest. Fold-in MSE by lambda: 0.3: 0.919, 1: 0.788, 3: 0.729, 10: 0.720,
/// 20: 0.736, 40: 0.773; the bias-only fit's best is 0.826 (also at 10).
pub const DEFAULT_LAMBDA: f64 = 10.0;

/// New users' ratings, read from a `user,item,rating` file against a model's items.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRatings {
    /// Each new user's raw id (canonical), in order of first appearance.
    pub users: Vec<String>,
    /// Per user (same order), `(model item index, rating)` in file order.
    pub ratings: Vec<Vec<(u32, f32)>>,
}

impl NewRatings {
    /// Reads `path`: a CSV file with a header naming `user`, `item` and `rating` columns (in any
    /// order; other columns are ignored). Items are the model's raw item ids or whole titles.
    /// Users must be new to the model. Errors name the file and the line.
    pub fn read(path: &Path, model: &ModelFile) -> Result<NewRatings, InspectError> {
        let text = std::fs::read_to_string(path).map_err(|source| InspectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        NewRatings::parse(&text, path, model)
    }

    /// [`NewRatings::read`] on the file's text; `path` is for messages.
    pub fn parse(text: &str, path: &Path, model: &ModelFile) -> Result<NewRatings, InspectError> {
        let at = |line: usize, message: String| InspectError::BadRatingsLine {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .map_err(|e| at(1, format!("cannot read the header: {e}")))?
            .clone();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    at(
                        1,
                        format!(
                            "the header {:?} has no `{name}` column; the first line must name \
                             the columns user,item,rating",
                            header.iter().collect::<Vec<_>>().join(",")
                        ),
                    )
                })
        };
        let (user_col, item_col, rating_col) =
            (column("user")?, column("item")?, column("rating")?);
        let mut users: Vec<String> = Vec::new();
        let mut ratings: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                at(line, e.to_string())
            })?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let field = |col: usize, name: &str| {
                record
                    .get(col)
                    .filter(|f| !f.is_empty())
                    .ok_or_else(|| at(line, format!("no {name} (column {})", col + 1)))
            };
            let user = canonical_id(field(user_col, "user")?).into_owned();
            let item_text = field(item_col, "item")?;
            let rating_text = field(rating_col, "rating")?;
            let rating: f32 = rating_text
                .parse()
                .ok()
                .filter(|r: &f32| r.is_finite())
                .ok_or_else(|| at(line, format!("rating {rating_text:?} is not a number")))?;
            let item = find_item_exactly(model, item_text).map_err(|e| at(line, e.to_string()))?;
            let index = match slot.get(&user) {
                Some(&index) => index,
                None => {
                    if let Some(known) = model.users.index_of(&user) {
                        let trained = model
                            .training
                            .as_ref()
                            .map(|t| {
                                format!(" with {} training ratings", t.user_counts[known as usize])
                            })
                            .unwrap_or_default();
                        return Err(at(
                            line,
                            format!(
                                "user {user:?} is already in the model{trained}; fold-in adds new \
                                 users: give them ids the model does not have"
                            ),
                        ));
                    }
                    slot.insert(user.clone(), users.len());
                    users.push(user);
                    ratings.push(Vec::new());
                    users.len() - 1
                }
            };
            ratings[index].push((item, rating));
        }
        if users.is_empty() {
            return Err(at(1, "no ratings after the header".into()));
        }
        Ok(NewRatings { users, ratings })
    }

    /// The number of ratings over all users.
    pub fn len(&self) -> usize {
        self.ratings.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One folded-in user: factors `p`, bias `b_u`.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedUser {
    pub factors: Vec<f32>,
    pub bias: f32,
}

/// The target `t` of the raw score for a rating `r` (see the module docs).
pub fn raw_target(rating: f32, y_range: Option<(f32, f32)>) -> f64 {
    match y_range {
        Some((lo, hi)) => {
            let share =
                ((rating as f64 - lo as f64) / (hi as f64 - lo as f64)).clamp(EDGE, 1.0 - EDGE);
            (share / (1.0 - share)).ln()
        }
        None => rating as f64,
    }
}

/// The ridge solution for one user's `(item, rating)` pairs (see the module docs).
pub fn solve_user(
    params: &Params,
    y_range: Option<(f32, f32)>,
    ratings: &[(u32, f32)],
    lambda: f64,
) -> FoldedUser {
    let k = params.factors;
    let d = k + 1;
    let n = ratings.len();
    let row = |item: u32| -> Vec<f64> {
        let q = &params.item_factors[item as usize * k..][..k];
        q.iter().map(|&x| x as f64).chain([1.0]).collect()
    };
    let a: Vec<Vec<f64>> = ratings.iter().map(|&(item, _)| row(item)).collect();
    let y: Vec<f64> = ratings
        .iter()
        .map(|&(item, r)| raw_target(r, y_range) - params.item_bias[item as usize] as f64)
        .collect();
    let x: Vec<f64> = if n > d {
        // (A^T A + lambda I) x = A^T y
        let mut m = vec![0.0; d * d];
        let mut rhs = vec![0.0; d];
        for (ai, &yi) in a.iter().zip(&y) {
            for r in 0..d {
                rhs[r] += ai[r] * yi;
                for c in 0..=r {
                    m[r * d + c] += ai[r] * ai[c];
                }
            }
        }
        for r in 0..d {
            m[r * d + r] += lambda;
            for c in 0..r {
                m[c * d + r] = m[r * d + c];
            }
        }
        cholesky_solve(&mut m, d, &mut rhs);
        rhs
    } else {
        // x = A^T (A A^T + lambda I)^-1 y
        let mut m = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..=r {
                let dot: f64 = a[r].iter().zip(&a[c]).map(|(u, v)| u * v).sum();
                m[r * n + c] = dot;
                m[c * n + r] = dot;
            }
            m[r * n + r] += lambda;
        }
        let mut w = y.clone();
        cholesky_solve(&mut m, n, &mut w);
        (0..d)
            .map(|j| a.iter().zip(&w).map(|(ai, wi)| ai[j] * wi).sum())
            .collect()
    };
    FoldedUser {
        factors: x[..k].iter().map(|&v| v as f32).collect(),
        bias: x[k] as f32,
    }
}

/// The bias-only fit (`p = 0`): `b_u = sum y_i / (n + lambda)`, the baseline fold-in must beat.
pub fn solve_bias_only(
    params: &Params,
    y_range: Option<(f32, f32)>,
    ratings: &[(u32, f32)],
    lambda: f64,
) -> FoldedUser {
    let sum: f64 = ratings
        .iter()
        .map(|&(item, r)| raw_target(r, y_range) - params.item_bias[item as usize] as f64)
        .sum();
    FoldedUser {
        factors: vec![0.0; params.factors],
        bias: (sum / (ratings.len() as f64 + lambda)) as f32,
    }
}

/// Solves `m x = b` in place (`x` replaces `b`) for a symmetric positive definite `m` (`n x n`,
/// row-major; overwritten by its Cholesky factor).
fn cholesky_solve(m: &mut [f64], n: usize, b: &mut [f64]) {
    for j in 0..n {
        let mut diag = m[j * n + j];
        for p in 0..j {
            diag -= m[j * n + p] * m[j * n + p];
        }
        let diag = diag.max(f64::MIN_POSITIVE).sqrt();
        m[j * n + j] = diag;
        for i in j + 1..n {
            let mut v = m[i * n + j];
            for p in 0..j {
                v -= m[i * n + p] * m[j * n + p];
            }
            m[i * n + j] = v / diag;
        }
    }
    for i in 0..n {
        let mut v = b[i];
        for p in 0..i {
            v -= m[i * n + p] * b[p];
        }
        b[i] = v / m[i * n + i];
    }
    for i in (0..n).rev() {
        let mut v = b[i];
        for p in i + 1..n {
            v -= m[p * n + i] * b[p];
        }
        b[i] = v / m[i * n + i];
    }
}

/// The model with `new`'s users added: each solved by [`solve_user`], the users re-sorted by raw
/// id as a data set orders them, the training record (when the model has one) extended by their
/// ratings. Items, the configuration and the split record stay.
pub fn fold_in(
    model: &ModelFile,
    new: &NewRatings,
    lambda: f64,
) -> Result<ModelFile, InspectError> {
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(InspectError::Invalid(format!(
            "--lambda must be a positive number, got {lambda}"
        )));
    }
    let k = model.params.factors;
    let y_range = model.config.y_range;
    let folded: Vec<FoldedUser> = new
        .ratings
        .iter()
        .map(|ratings| solve_user(&model.params, y_range, ratings, lambda))
        .collect();
    let old_users = model.users.len();
    let mut raw: Vec<String> = model.users.raw_ids().to_vec();
    raw.extend(new.users.iter().cloned());
    let merged = IdMap::from_raw_ids(raw.clone());
    if merged.len() != raw.len() {
        return Err(InspectError::Invalid(
            "two new users have the same id once integer spellings are made one".into(),
        ));
    }
    // order[new index] = index in `raw` (old users first, then the folded ones).
    let position: HashMap<&str, u32> = raw
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n as u32))
        .collect();
    let order: Vec<u32> = merged
        .raw_ids()
        .iter()
        .map(|id| position[id.as_str()])
        .collect();
    let p = &model.params;
    let mut user_factors = Vec::with_capacity(merged.len() * k);
    let mut user_bias = Vec::with_capacity(merged.len());
    for &from in &order {
        let from = from as usize;
        if from < old_users {
            user_factors.extend_from_slice(&p.user_factors[from * k..][..k]);
            user_bias.push(p.user_bias[from]);
        } else {
            user_factors.extend_from_slice(&folded[from - old_users].factors);
            user_bias.push(folded[from - old_users].bias);
        }
    }
    let training = model.training.as_ref().map(|index| {
        let mut added = Ratings::default();
        for (n, ratings) in new.ratings.iter().enumerate() {
            for &(item, rating) in ratings {
                added.users.push(n as u32);
                added.items.push(item);
                added.ratings.push(rating);
            }
        }
        let added = RatingIndex::of(&added, new.users.len(), model.items.len());
        index.with_users_appended(&added).with_users_ordered(&order)
    });
    Ok(ModelFile {
        params: Params {
            factors: k,
            user_factors,
            item_factors: p.item_factors.clone(),
            user_bias,
            item_bias: p.item_bias.clone(),
        },
        users: merged,
        items: model.items.clone(),
        titles: model.titles.clone(),
        config: model.config.clone(),
        split: model.split.clone(),
        training,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `K = 2`, three items with orthogonal-ish rows and zero biases, no y-range.
    fn params() -> Params {
        Params {
            factors: 2,
            user_factors: vec![0.0, 0.0],
            item_factors: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            user_bias: vec![0.0],
            item_bias: vec![0.0, 0.5, -0.5],
        }
    }

    #[test]
    fn a_hand_solved_user_without_a_y_range() {
        // Ratings 2 on item 0 and 1.5 on item 1, lambda = 1. A = [[1,0,1],[0,1,1]], y = (2, 1).
        // n = 2 < K + 1 = 3: x = A^T (A A^T + I)^-1 y with A A^T + I = [[3,1],[1,3]],
        // whose inverse is [[3,-1],[-1,3]] / 8: w = (5, 1) / 8, x = (5, 1, 6) / 8.
        let user = solve_user(&params(), None, &[(0, 2.0), (1, 1.5)], 1.0);
        let want = [5.0 / 8.0, 1.0 / 8.0];
        for (got, want) in user.factors.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{:?}", user.factors);
        }
        assert!((user.bias - 6.0 / 8.0).abs() < 1e-6, "{}", user.bias);
        // Bias only: (2 + 1) / (2 + 1) = 1.
        assert_eq!(
            solve_bias_only(&params(), None, &[(0, 2.0), (1, 1.5)], 1.0).bias,
            1.0
        );
    }

    /// The objective's gradient `A^T (A x - y) + lambda x` at the solution, which must vanish.
    fn gradient(p: &Params, ratings: &[(u32, f32)], lambda: f64, user: &FoldedUser) -> Vec<f64> {
        let x = [
            user.factors[0] as f64,
            user.factors[1] as f64,
            user.bias as f64,
        ];
        let mut grad: Vec<f64> = x.iter().map(|v| lambda * v).collect();
        for &(item, r) in ratings {
            let q = &p.item_factors[item as usize * 2..][..2];
            let a = [q[0] as f64, q[1] as f64, 1.0];
            let y = r as f64 - p.item_bias[item as usize] as f64;
            let e = a[0] * x[0] + a[1] * x[1] + a[2] * x[2] - y;
            for j in 0..3 {
                grad[j] += a[j] * e;
            }
        }
        grad
    }

    #[test]
    fn both_forms_solve_the_normal_equations() {
        let p = params();
        // Four ratings (more than K + 1 = 3) take the primal form, three the dual one.
        for ratings in [
            &[(0, 1.0), (1, 2.0), (2, 0.5), (0, 1.5)][..],
            &[(0, 1.0), (1, 2.0), (2, 0.5)][..],
        ] {
            let user = solve_user(&p, None, ratings, 0.5);
            let grad = gradient(&p, ratings, 0.5, &user);
            assert!(grad.iter().all(|g| g.abs() < 1e-5), "{ratings:?}: {grad:?}");
        }
    }

    #[test]
    fn ratings_map_through_the_inverse_sigmoid_range_and_clamp_at_its_ends() {
        let range = Some((0.0, 5.0));
        assert!((raw_target(2.5, range)).abs() < 1e-12);
        let t = raw_target(4.0, range);
        assert!((t - (0.8f64 / 0.2).ln()).abs() < 1e-6, "{t}");
        assert_eq!(raw_target(5.0, range), raw_target(7.0, range));
        assert!(raw_target(5.0, range).is_finite());
        assert_eq!(raw_target(3.0, None), 3.0);
    }
}
