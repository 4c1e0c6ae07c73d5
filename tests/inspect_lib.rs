//! The inspection library on a hand-built model whose answers are worked out in the comments:
//! metrics with unknown ids, recommendations, cosine ranking, biases, item lookup and PCA.

use std::collections::HashSet;

use collabgpu::data::{Dataset, IdMap, Ratings};
use collabgpu::files::ModelFile;
use collabgpu::inspect::{
    InspectError, Pca, RatingCounts, bias_table, evaluate, find_item, find_user, rated_by,
    recommend, similar_items,
};

#[path = "support/hand_model.rs"]
mod hand;

/// The hand-built model of `tests/support/hand_model.rs` without a y-range, so a prediction is the
/// raw score `dot(P[u], Q[i]) + bu[u] + bi[i]`.
fn hand_model() -> ModelFile {
    hand::hand_model(None)
}

/// A data set with its own dense indices: users "1", "2", "99"; items "5", "9", "42".
fn dataset(ratings: &[(&str, &str, f32)]) -> Dataset {
    let users = IdMap::from_raw_ids(ratings.iter().map(|r| r.0.to_string()).collect());
    let items = IdMap::from_raw_ids(ratings.iter().map(|r| r.1.to_string()).collect());
    Dataset {
        ratings: Ratings {
            users: ratings
                .iter()
                .map(|r| users.index_of(r.0).unwrap())
                .collect(),
            items: ratings
                .iter()
                .map(|r| items.index_of(r.1).unwrap())
                .collect(),
            ratings: ratings.iter().map(|r| r.2).collect(),
            timestamps: None,
        },
        users,
        items,
        ..Dataset::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn metrics_map_raw_ids_and_count_unknown_ones() {
    let data = dataset(&[
        ("1", "5", 3.0),   // pred 2 + 0.1 + 0.5 = 2.6, error -0.4
        ("2", "9", 1.0),   // pred 2 - 0.2 + 0.25 = 2.05, error 1.05
        ("99", "5", 4.0),  // unknown user
        ("1", "42", 2.0),  // unknown item
        ("99", "42", 5.0), // both
    ]);
    let report = evaluate(&hand_model(), &data);
    assert_eq!(report.ratings, 5);
    assert_eq!(report.evaluated, 2);
    assert_eq!(report.skipped, 3);
    assert_eq!(report.unknown_user_ratings, 2);
    assert_eq!(report.unknown_item_ratings, 2);
    assert_eq!((report.unknown_users, report.unknown_items), (1, 1));
    // MSE = (0.16 + 1.1025) / 2, MAE = (0.4 + 1.05) / 2.
    assert!(close(report.mse.unwrap(), 0.63125), "{report:?}");
    assert!(close(report.rmse.unwrap(), 0.63125f64.sqrt()), "{report:?}");
    assert!(close(report.mae.unwrap(), 0.725), "{report:?}");
}

#[test]
fn metrics_of_a_set_the_model_does_not_know_are_absent() {
    let report = evaluate(&hand_model(), &dataset(&[("99", "42", 5.0)]));
    assert_eq!((report.evaluated, report.skipped), (0, 1));
    assert_eq!(report.mse, None);
}

#[test]
fn recommend_ranks_unrated_items_by_prediction() {
    let model = hand_model();
    let user = find_user(&model, "1").unwrap();
    // User "1" predicts 2.6, 0.9, 0.35, -1.9 for items 0..4; item 0 is rated.
    let rated = rated_by(&model, &dataset(&[("1", "5", 3.0), ("2", "9", 1.0)]), "1").unwrap();
    assert_eq!(rated, HashSet::from([0]));
    let top = recommend(&model, user, &rated, 2);
    let ids: Vec<&str> = top.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["7", "9"]);
    assert!(close(top[0].score as f64, 0.9) && close(top[1].score as f64, 0.35));
    assert_eq!(top[0].title.as_deref(), Some("Lambs of God (1994)"));
    // Without exclusions the rated item leads.
    assert_eq!(recommend(&model, user, &HashSet::new(), 1)[0].id, "5");
}

#[test]
fn similar_ranks_by_cosine_of_item_factors() {
    let model = hand_model();
    // To (1, 0): (0.9, 0.1) has cosine 0.9 / sqrt(0.82) = 0.99388, (0, 1) has 0,
    // (-1, 0.2) has -1 / sqrt(1.04) = -0.98058. The item itself is left out.
    let near = similar_items(&model, 0, 10);
    let ids: Vec<&str> = near.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["7", "9", "11"]);
    let scores: Vec<f64> = near.iter().map(|s| s.score as f64).collect();
    assert!(close(scores[0], 0.9 / 0.82f64.sqrt()), "{scores:?}");
    assert!(close(scores[1], 0.0), "{scores:?}");
    assert!(close(scores[2], -1.0 / 1.04f64.sqrt()), "{scores:?}");
}

#[test]
fn similar_to_a_zero_row_is_zero_not_nan() {
    let mut model = hand_model();
    model.params.item_factors[0..2].copy_from_slice(&[0.0, 0.0]);
    assert!(similar_items(&model, 0, 3).iter().all(|s| s.score == 0.0));
}

#[test]
fn bias_tables_sort_and_carry_mean_and_count() {
    let model = hand_model();
    let data = dataset(&[("1", "5", 3.0), ("2", "5", 5.0), ("2", "9", 1.0)]);
    let counts = RatingCounts::of(&model, &data);
    assert_eq!(counts.most_rated_items(), vec![0, 2]);
    let table = bias_table(&model, false, Some(&counts), 0, 2);
    let highest: Vec<(&str, f32)> = table
        .highest
        .iter()
        .map(|r| (r.id.as_str(), r.bias))
        .collect();
    let lowest: Vec<(&str, f32)> = table
        .lowest
        .iter()
        .map(|r| (r.id.as_str(), r.bias))
        .collect();
    assert_eq!(highest, [("5", 0.5), ("9", 0.25)]);
    assert_eq!(lowest, [("7", -1.0), ("11", 0.0)]);
    assert_eq!(table.highest[0].mean_rating, Some(4.0));
    assert_eq!(table.highest[0].ratings, Some(2));
    assert_eq!(table.lowest[0].ratings, Some(0));
    assert_eq!(table.lowest[0].mean_rating, None);
    // Items with fewer than two ratings leave the table: only "5" (two ratings) stays.
    let rated = bias_table(&model, false, Some(&counts), 2, 2);
    let ids = |rows: &[collabgpu::inspect::BiasRow]| -> Vec<String> {
        rows.iter().map(|r| r.id.clone()).collect()
    };
    assert_eq!(
        (ids(&rated.highest), ids(&rated.lowest)),
        (vec!["5".to_string()], vec!["5".to_string()])
    );
    let users = bias_table(&model, true, None, 0, 1);
    assert_eq!(
        (users.highest[0].id.as_str(), users.lowest[0].id.as_str()),
        ("1", "2")
    );
    assert_eq!(users.highest[0].title, None);
    assert_eq!(users.highest[0].ratings, None);
}

#[test]
fn items_are_found_by_id_title_part_or_exact_title() {
    let model = hand_model();
    assert_eq!(find_item(&model, "9").unwrap(), 2);
    assert_eq!(find_item(&model, "silence of the lambs").unwrap(), 0);
    assert_eq!(find_item(&model, "The Silence of the Lambs").unwrap(), 0);
    assert_eq!(find_item(&model, "HOLIDAY").unwrap(), 3);
    // "star wars" is a part of two titles, but the whole of one (ignoring the year): that one wins.
    assert_eq!(find_item(&model, "star wars").unwrap(), 2);
    // A number is not searched for in the years: "99" is no id, and "(1991)" does not count.
    assert!(matches!(
        find_item(&model, "99"),
        Err(InspectError::UnknownItem { .. })
    ));
    assert!(matches!(
        find_item(&model, "197"),
        Err(InspectError::UnknownItem { .. })
    ));
}

#[test]
fn an_ambiguous_title_lists_the_candidates() {
    let err = find_item(&hand_model(), "lambs").unwrap_err();
    let InspectError::AmbiguousItem {
        count, candidates, ..
    } = &err
    else {
        panic!("expected an ambiguity, got {err}");
    };
    assert_eq!(*count, 2);
    let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["5", "7"]);
    let message = err.to_string();
    assert!(message.contains("Lambs of God (1994)"), "{message}");
    assert!(
        message.contains("Silence of the Lambs, The (1991)"),
        "{message}"
    );
}

#[test]
fn unknown_users_and_items_say_what_was_not_found() {
    let model = hand_model();
    let err = find_user(&model, "77").unwrap_err().to_string();
    assert!(err.contains("\"77\"") && err.contains("3 users"), "{err}");
    let err = find_item(&model, "casablanca").unwrap_err().to_string();
    assert!(
        err.contains("\"casablanca\"") && err.contains("no title contains it"),
        "{err}"
    );
    let mut untitled = model;
    untitled.titles = None;
    let err = find_item(&untitled, "star").unwrap_err().to_string();
    assert!(err.contains("no titles"), "{err}");
}

#[test]
fn pca_finds_a_known_axis() {
    // Points c + t d + s e with d = (0.6, 0.8, 0), e = (0, 0, 1), t = -2..2 and s chosen with mean 0
    // and no correlation with t: the covariance has eigenvalues 2 (along d) and 0.008 (along e).
    let (d, e, c) = ([0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [1.0, -2.0, 3.0]);
    let t = [-2.0, -1.0, 0.0, 1.0, 2.0];
    let s = [0.1, -0.1, 0.0, -0.1, 0.1];
    let rows: Vec<f32> = (0..5)
        .flat_map(|j| (0..3).map(move |a| (c[a] + t[j] * d[a] + s[j] * e[a]) as f32))
        .collect();
    let pca = Pca::fit(&rows, 3, &[0, 1, 2, 3, 4], 2);
    let near = |a: f64, b: f64| (a - b).abs() < 1e-5;
    for (got, want) in pca.components[0].iter().zip(d) {
        assert!(near(*got, want), "{:?}", pca.components);
    }
    for (got, want) in pca.components[1].iter().zip(e) {
        assert!(near(*got, want), "{:?}", pca.components);
    }
    assert!(
        near(pca.variances[0], 2.0) && near(pca.variances[1], 0.008),
        "{:?}",
        pca.variances
    );
    assert!(near(pca.total_variance, 2.008));
    for j in 0..5 {
        let projected = pca.project(&rows[j * 3..][..3]);
        assert!(
            near(projected[0], t[j]) && near(projected[1], s[j]),
            "{projected:?}"
        );
    }
}
