//! The synthetic presets: exact shapes, MovieLens-like constraints, determinism and the planted
//! answer (noise floor, truth summary).

use collabgpu::data::synth::{
    self, FACTOR_STD, MIN_RATINGS_PER_USER, NOISE_STD, PLANTED_K, Preset, RatingScale, Shape,
    Synthetic,
};

/// Asserts everything the issue promises about a preset generated at `shape` (its own, unless a
/// test shrank it).
fn check_movielens_constraints(synthetic: &Synthetic, shape: Shape) {
    let preset = synthetic.preset;
    let dataset = &synthetic.dataset;
    let ratings = &dataset.ratings;
    let name = preset.name();
    assert_eq!(ratings.len(), shape.ratings, "{name}: N");
    assert_eq!(dataset.users.len(), shape.users, "{name}: U");
    assert_eq!(dataset.items.len(), shape.items, "{name}: I");
    assert_eq!(ratings.users.len(), shape.ratings);
    assert_eq!(ratings.items.len(), shape.ratings);

    let mut per_user = vec![0usize; shape.users];
    let mut per_item = vec![0usize; shape.items];
    for (&u, &i) in ratings.users.iter().zip(&ratings.items) {
        per_user[u as usize] += 1;
        per_item[i as usize] += 1;
    }
    let fewest = per_user.iter().min().copied().unwrap_or(0);
    assert!(fewest >= 20, "{name}: a user has only {fewest} ratings");
    let unrated = per_item.iter().filter(|&&c| c == 0).count();
    assert_eq!(unrated, 0, "{name}: {unrated} items have no rating");

    let mut pairs: Vec<u64> = ratings
        .users
        .iter()
        .zip(&ratings.items)
        .map(|(&u, &i)| (u as u64) << 32 | i as u64)
        .collect();
    pairs.sort_unstable();
    let before = pairs.len();
    pairs.dedup();
    assert_eq!(pairs.len(), before, "{name}: duplicate (user, item) pairs");

    let scale = preset.scale();
    for &r in &ratings.ratings {
        let steps = (r - scale.min) / scale.step;
        assert!(
            r >= scale.min && r <= scale.max && steps == steps.round(),
            "{name}: rating {r} is off the scale {scale:?}"
        );
    }

    // Grouped by user, each user's timestamps strictly increasing and plausible (1995..2020).
    let times = ratings
        .timestamps
        .as_ref()
        .expect("synthetic data has timestamps");
    for n in 1..ratings.len() {
        assert!(
            ratings.users[n] >= ratings.users[n - 1],
            "{name}: users not grouped"
        );
        if ratings.users[n] == ratings.users[n - 1] {
            assert!(
                times[n] > times[n - 1],
                "{name}: user {} has timestamps {} then {}",
                ratings.users[n],
                times[n - 1],
                times[n]
            );
        }
    }
    let (earliest, latest) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(
        *earliest >= 788_918_400 && *latest < 1_577_836_800,
        "{name}: times {earliest}..{latest}"
    );

    let titles = dataset.titles.as_ref().expect("titles");
    assert_eq!(titles.len(), shape.items);
    let mut distinct = titles.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        titles.len(),
        "{name}: titles are not unique"
    );
    assert!(
        titles.iter().any(|t| !t.is_ascii()),
        "{name}: no accented title"
    );
    assert!(
        titles.iter().any(|t| t.contains(',')),
        "{name}: no title with a comma"
    );
    assert!(
        titles.iter().all(|t| t.ends_with(')') && t.contains(" (")),
        "{name}: a title without its year"
    );
    assert_eq!(dataset.genres.as_ref().map(Vec::len), Some(shape.items));
}

#[test]
fn ml_100k_has_exact_shape_and_movielens_constraints() {
    let synthetic = synth::generate(Preset::Ml100k, 42).unwrap();
    check_movielens_constraints(&synthetic, Preset::Ml100k.shape());
    // Raw ids as in the real ML-100K: 1..=943 and 1..=1682.
    assert_eq!(synthetic.dataset.users.raw(942), "943");
    assert_eq!(synthetic.dataset.items.raw(1681), "1682");
    let titles = synthetic.dataset.titles.as_ref().unwrap();
    assert!(titles.iter().all(|t| t.chars().all(|c| (c as u32) < 256)));
}

#[test]
fn ml_1m_has_exact_shape_and_skips_item_ids_like_the_real_one() {
    let synthetic = synth::generate(Preset::Ml1m, 42).unwrap();
    check_movielens_constraints(&synthetic, Preset::Ml1m.shape());
    let items = &synthetic.dataset.items;
    let last: u64 = items.raw(items.len() as u32 - 1).parse().unwrap();
    assert!(
        (3_707..4_500).contains(&last),
        "ML-1M's movie ids have a few gaps (real: 3,706 ids up to 3,952); the last is {last}"
    );
    let titles = synthetic.dataset.titles.as_ref().unwrap();
    assert!(
        titles.iter().all(|t| t.chars().all(|c| (c as u32) < 256)),
        "movies.dat is latin-1"
    );
}

/// The largest preset: its declared shape and half-star scale, then its traits generated at a
/// hundredth of its size with the same ratios (N / U, I / U). All 25 M ratings would take about
/// 15 s and 1 GB with the test profile, and nothing checked here depends on the size; that the full
/// shape can be met is `synth`'s own `ratings_per_user_sum_to_n_within_the_floor_and_the_cap`.
#[test]
fn ml_25m_has_exact_shape_and_half_stars() {
    let shape = Preset::Ml25m.shape();
    assert_eq!(
        (shape.ratings, shape.users, shape.items),
        (25_000_095, 162_541, 59_047),
        "the real ML-25M's N, U, I"
    );
    assert!(shape.ratings >= MIN_RATINGS_PER_USER * shape.users);
    assert!(
        shape.ratings < shape.users * shape.items,
        "denser than a full matrix"
    );
    assert_eq!(
        Preset::Ml25m.scale(),
        RatingScale {
            min: 0.5,
            max: 5.0,
            step: 0.5
        },
        "half stars, 0.5 to 5"
    );

    let small = Shape {
        ratings: shape.ratings / 100,
        users: shape.users / 100,
        items: shape.items / 100,
    };
    let synthetic = synth::generate_shaped(Preset::Ml25m, small, 42).unwrap();
    check_movielens_constraints(&synthetic, small);
    let ratings = &synthetic.dataset.ratings.ratings;
    assert!(
        ratings.contains(&0.5) && ratings.contains(&4.5),
        "half stars are used"
    );
    let titles = synthetic.dataset.titles.as_ref().unwrap();
    assert!(
        titles.iter().any(|t| t.chars().any(|c| (c as u32) > 255)),
        "movies.csv is UTF-8: some title should need more than latin-1"
    );
}

#[test]
fn generation_does_not_depend_on_the_thread_count() {
    let in_pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| synth::generate(Preset::Ml1m, 5).unwrap())
    };
    let (one, three) = (in_pool(1), in_pool(3));
    assert_eq!(one.dataset.ratings, three.dataset.ratings);
    assert_eq!(one.truth, three.truth);
}

#[test]
fn same_seed_writes_same_bytes_and_another_seed_does_not() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for (dir, seed) in dirs.iter().zip([9, 9, 10]) {
        synth::generate(Preset::Ml100k, seed)
            .unwrap()
            .write_to(dir.path())
            .unwrap();
    }
    for file in ["u.data", "u.item", "truth.json"] {
        let read = |d: &tempfile::TempDir| std::fs::read(d.path().join(file)).unwrap();
        assert_eq!(
            read(&dirs[0]),
            read(&dirs[1]),
            "{file} differs for the same seed"
        );
        assert_ne!(
            read(&dirs[0]),
            read(&dirs[2]),
            "{file} is the same for another seed"
        );
    }
}

#[test]
fn item_popularity_is_heavy_tailed() {
    let synthetic = synth::generate(Preset::Ml1m, 42).unwrap();
    let mut per_item = vec![0usize; synthetic.dataset.items.len()];
    for &i in &synthetic.dataset.ratings.items {
        per_item[i as usize] += 1;
    }
    per_item.sort_unstable_by(|a, b| b.cmp(a));
    let n = synthetic.dataset.ratings.len() as f64;
    let top_percent: usize = per_item[..per_item.len() / 100].iter().sum();
    let mean = n / per_item.len() as f64;
    let median = per_item[per_item.len() / 2] as f64;
    let least = *per_item.last().unwrap() as f64;
    assert!(
        top_percent as f64 / n > 0.10,
        "top 1% hold {top_percent} of {n}"
    );
    assert!(
        median < 0.5 * mean,
        "median {median} vs mean {mean}: no long tail"
    );
    assert!(
        least < 0.1 * mean,
        "least-rated item has {least}, mean {mean}"
    );
}

#[test]
fn noise_floor_is_the_planted_models_mse_on_the_written_ratings() {
    let synthetic = synth::generate(Preset::Ml100k, 42).unwrap();
    let truth = &synthetic.truth;
    let ratings = &synthetic.dataset.ratings;
    let mut squared_error = 0.0;
    let mut sum = 0.0;
    for n in 0..ratings.len() {
        let pred = truth.predict(ratings.users[n], ratings.items[n]);
        squared_error += (pred - ratings.ratings[n] as f64).powi(2);
        sum += ratings.ratings[n] as f64;
    }
    let mse = squared_error / ratings.len() as f64;
    assert!(
        (mse - truth.noise_floor_mse).abs() < 1e-9,
        "recomputed {mse}, reported {}",
        truth.noise_floor_mse
    );
    // Noise variance plus whole-star rounding (1/12), less what clamping to 1..5 removes.
    let noise_var = (NOISE_STD as f64).powi(2);
    assert!(
        mse > 0.8 * noise_var && mse < noise_var + 1.0 / 12.0 + 0.02,
        "noise floor {mse}"
    );
    // The planted model explains part of the spread, about as much as models explain on the real
    // ML-100K (variance 1.267, best validation MSE about 0.8): a trainer has something to learn.
    let mean = sum / ratings.len() as f64;
    let variance = ratings
        .ratings
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / ratings.len() as f64;
    assert!(
        variance - mse > 0.3,
        "ratings variance {variance}, noise floor {mse}"
    );
}

#[test]
fn ml_100k_ratings_spread_like_the_real_ml_100k() {
    let synthetic = synth::generate(Preset::Ml100k, 42).unwrap();
    let ratings = &synthetic.dataset.ratings.ratings;
    let mut histogram = [0usize; 5];
    for &r in ratings {
        histogram[r as usize - 1] += 1;
    }
    // The real ML-100K's histogram for ratings 1-5.
    let real = [6_110, 11_370, 27_145, 34_174, 21_201];
    for star in 0..5 {
        let (ours, theirs) = (histogram[star] as f64 / 1e3, real[star] as f64 / 1e3);
        assert!(
            (ours - theirs).abs() < 5.0,
            "{} stars: {ours:.1}% of ratings, the real ML-100K has {theirs:.1}% ({histogram:?})",
            star + 1
        );
    }
    let n = ratings.len() as f64;
    let mean = ratings.iter().map(|&r| r as f64).sum::<f64>() / n;
    let variance = ratings
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    // The real one: mean 3.530, variance 1.267.
    assert!((mean - 3.53).abs() < 0.1, "rating mean {mean}");
    assert!((variance - 1.267).abs() < 0.1, "rating variance {variance}");
}

#[test]
fn planted_model_as_engine_parameters_predicts_the_same() {
    let synthetic = synth::generate(Preset::Ml100k, 3).unwrap();
    let truth = &synthetic.truth;
    let params = truth.to_params();
    assert_eq!(params.factors, PLANTED_K);
    for (u, i) in [(0u32, 0u32), (942, 1681), (500, 17), (3, 900)] {
        let engine = params.predict(u, i, Some(truth.y_range)) as f64;
        let planted = truth.predict(u, i);
        assert!(
            (engine - planted).abs() < 1e-5,
            "({u}, {i}): {engine} vs {planted}"
        );
    }
}

#[test]
fn truth_json_summarises_the_planted_model() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = synth::generate(Preset::Ml100k, 42).unwrap();
    let files = synthetic.write_to(dir.path()).unwrap();
    let text = std::fs::read_to_string(&files.truth).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["preset"], "ml-100k");
    assert_eq!(json["seed"], 42);
    assert_eq!(json["K"], PLANTED_K);
    assert_eq!(json["shape"]["ratings"], 100_000);
    assert_eq!(json["shape"]["users"], 943);
    assert_eq!(json["shape"]["items"], 1_682);
    assert_eq!(json["y_range"][1], 5.5);
    assert_eq!(json["noise_std"].as_f64().unwrap() as f32, NOISE_STD);
    assert_eq!(
        json["noise_floor_mse"].as_f64().unwrap(),
        synthetic.truth.noise_floor_mse
    );
    let user_bias = &json["tensors"]["user_bias"];
    assert_eq!(user_bias["shape"][0], 943);
    let std = user_bias["std"].as_f64().unwrap();
    assert!((std - 0.35).abs() < 0.05, "user bias std {std}");
    let factors_std = json["tensors"]["item_factors"]["std"].as_f64().unwrap();
    assert!(
        (factors_std - FACTOR_STD).abs() < 0.05,
        "item factor std {factors_std}"
    );
    let rating_mean = json["rating_mean"].as_f64().unwrap();
    assert!(
        (3.0..4.0).contains(&rating_mean),
        "rating mean {rating_mean}"
    );
}
