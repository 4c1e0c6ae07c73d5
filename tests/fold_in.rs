//! Issue 13, fold-in: users held out of training, folded in from half their ratings, predict the
//! other half better than the bias-only fit; `fold-in` and `recommend --ratings` through the
//! binary; the errors a user's CSV file can give.

use std::path::{Path, PathBuf};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/prerequisite.rs"]
mod prerequisite;

use cli::{collabgpu, json, path, stderr_of_failure, stdout, write_u_data, write_u_item};
use collabgpu::files::ModelFile;
use collabgpu::inspect::fold_in::{DEFAULT_LAMBDA, solve_bias_only, solve_user};
use prerequisite::ml100k_dir;

/// `u.data` lines as `[user, item, rating, timestamp]`.
fn read_u_data(dir: &Path) -> Vec<[u32; 4]> {
    std::fs::read_to_string(dir.join("u.data"))
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<u32> = line.split('\t').map(|x| x.parse().unwrap()).collect();
            [f[0], f[1], f[2], f[3]]
        })
        .collect()
}

/// The held-out users' ratings split in two by time order, alternately: `(fold in, score)`.
type Halves = Vec<(u32, Vec<[u32; 4]>, Vec<[u32; 4]>)>;

/// Trains on `ratings` without the users `held_out` picks; returns the model and their halves.
fn hold_out(
    ratings: &[[u32; 4]],
    held_out: impl Fn(u32) -> bool,
    dir: &Path,
    extra: &[&str],
) -> (PathBuf, Halves) {
    let kept: Vec<[u32; 4]> = ratings
        .iter()
        .copied()
        .filter(|r| !held_out(r[0]))
        .collect();
    let data = write_u_data(&dir.join("train"), kept.clone());
    let model = dir.join("base.safetensors");
    let mut args = vec![
        "train",
        "--data",
        path(&data),
        "--quiet",
        "--out",
        path(&model),
    ];
    args.extend_from_slice(extra);
    stdout(&collabgpu(&args));
    let mut users: Vec<u32> = ratings
        .iter()
        .map(|r| r[0])
        .filter(|&u| held_out(u))
        .collect();
    users.sort_unstable();
    users.dedup();
    // Items only the held-out users rated are not in the model: their ratings go.
    let known: std::collections::HashSet<u32> = kept.iter().map(|r| r[1]).collect();
    let halves = users
        .into_iter()
        .map(|user| {
            let mut mine: Vec<[u32; 4]> = ratings
                .iter()
                .copied()
                .filter(|r| r[0] == user && known.contains(&r[1]))
                .collect();
            mine.sort_by_key(|r| (r[3], r[1]));
            let (mut fold, mut score) = (Vec::new(), Vec::new());
            for (n, r) in mine.into_iter().enumerate() {
                if n % 2 == 0 {
                    fold.push(r)
                } else {
                    score.push(r)
                }
            }
            (user, fold, score)
        })
        .collect();
    (model, halves)
}

/// Mean squared error on the scoring halves of users solved by `solve` from their fold-in halves.
fn mse(
    model: &ModelFile,
    halves: &Halves,
    solve: impl Fn(&[(u32, f32)]) -> collabgpu::inspect::fold_in::FoldedUser,
) -> f64 {
    let index = |item: u32| model.items.index_of(&item.to_string()).unwrap();
    let k = model.params.factors;
    let (mut sum, mut n) = (0.0, 0usize);
    for (_, fold, score) in halves {
        let pairs: Vec<(u32, f32)> = fold.iter().map(|r| (index(r[1]), r[2] as f32)).collect();
        let user = solve(&pairs);
        for r in score {
            let i = index(r[1]) as usize;
            let q = &model.params.item_factors[i * k..][..k];
            let x: f32 = user.factors.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()
                + user.bias
                + model.params.item_bias[i];
            let pred = collabgpu::model::apply_y_range(x, model.config.y_range) as f64;
            sum += (pred - r[2] as f64).powi(2);
            n += 1;
        }
    }
    sum / n as f64
}

fn write_new_csv(path: &Path, halves: &Halves, user_offset: u32) {
    let mut text = String::from("user,item,rating\n");
    for (user, fold, _) in halves {
        for r in fold {
            text.push_str(&format!("{},{},{}\n", user + user_offset, r[1], r[2]));
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn ml_100k_users_held_out_of_training_fold_in_better_than_their_bias() {
    let Some(ml100k) = ml100k_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ratings = read_u_data(&ml100k);
    // Every tenth user (94 users, 10,000-odd ratings) is held out of training.
    let (base, halves) = hold_out(&ratings, |u| u % 10 == 0, dir.path(), &[]);
    let model = ModelFile::load(&base).unwrap();
    let (params, range) = (&model.params, model.config.y_range);
    // The bias-only fit at its best penalty is the baseline to beat.
    let bias_only = [1.0, 3.0, 10.0, 30.0]
        .map(|lambda| {
            mse(&model, &halves, |r| {
                solve_bias_only(params, range, r, lambda)
            })
        })
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let folded = mse(&model, &halves, |r| {
        solve_user(params, range, r, DEFAULT_LAMBDA)
    });
    println!("fold-in MSE {folded:.4} (lambda {DEFAULT_LAMBDA}), bias only at best {bias_only:.4}");
    assert!(
        folded < bias_only - 0.05,
        "fold-in {folded} vs bias only {bias_only}"
    );

    // The binary gives the library's numbers: fold the users in, score the other halves.
    let new = dir.path().join("new.csv");
    write_new_csv(&new, &halves, 0);
    let folded_model = dir.path().join("folded.safetensors");
    let report = json(&[
        "fold-in",
        "--model",
        path(&base),
        "--ratings",
        path(&new),
        "--out",
        path(&folded_model),
        "--json",
    ]);
    assert_eq!(
        report["users"].as_array().unwrap().len(),
        halves.len(),
        "{report}"
    );
    assert_eq!(report["model_users"], 943, "{report}");
    let scoring: Vec<[u32; 4]> = halves.iter().flat_map(|h| h.2.clone()).collect();
    let scoring_dir = write_u_data(&dir.path().join("score"), scoring.clone());
    let eval = json(&[
        "eval",
        "--model",
        path(&folded_model),
        "--data",
        path(&scoring_dir),
        "--split",
        "all",
        "--json",
    ]);
    assert_eq!(eval["evaluated"], scoring.len(), "{eval}");
    let via_binary = eval["mse"].as_f64().unwrap();
    assert!(
        (via_binary - folded).abs() < 1e-5,
        "binary {via_binary} vs library {folded}"
    );
}

/// Ten users and eight items with titles; user 10 is left for the tests to add.
fn small_model(dir: &Path) -> PathBuf {
    let mut ratings = Vec::new();
    for u in 1..=9u32 {
        for i in 1..=8u32 {
            if (u + i) % 3 != 0 {
                ratings.push([u, i, 1 + (u * i) % 5, u * 10 + i]);
            }
        }
    }
    let data = write_u_data(&dir.join("data"), ratings);
    write_u_item(
        &data,
        (1..=8).map(|i| {
            let title = match i {
                3 => "Silence of the Lambs, The (1991)".to_string(),
                5 => "Twins (1988)".to_string(),
                6 => "Twins (1988)".to_string(),
                n => format!("Film {n} (199{n})"),
            };
            (i, title)
        }),
    );
    let model = dir.join("m.safetensors");
    stdout(&collabgpu(&[
        "train",
        "--data",
        path(&data),
        "--epochs",
        "2",
        "--factors",
        "3",
        "--bs",
        "8",
        "--quiet",
        "--out",
        path(&model),
    ]));
    model
}

#[test]
fn fold_in_adds_users_from_ids_or_titles_and_recommend_folds_in_on_the_fly() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let new = dir.path().join("new.csv");
    std::fs::write(
        &new,
        "user,item,rating,comment\n\
         100,1,5,by id\n\
         100,\"Silence of the Lambs, The (1991)\",4,by title\n\
         100,film 7,2,title without year in any case\n\
         55,2,3,another new user\n",
    )
    .unwrap();
    let out = dir.path().join("folded.safetensors");
    let text = stdout(&collabgpu(&[
        "fold-in",
        "--model",
        path(&model),
        "--ratings",
        path(&new),
        "--out",
        path(&out),
    ]));
    assert!(text.contains("folded 2 new users (4 ratings"), "{text}");
    let folded = ModelFile::load(&out).unwrap();
    // Users stay sorted as a data set sorts them: 55 comes before 100, after the nine.
    let ids: Vec<&str> = folded.users.raw_ids().iter().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5", "6", "7", "8", "9", "55", "100"]
    );
    let base = ModelFile::load(&model).unwrap();
    assert_eq!(folded.params.item_factors, base.params.item_factors);
    assert_eq!(
        &folded.params.user_factors[..9 * 3],
        &base.params.user_factors[..]
    );
    let training = folded.training.as_ref().unwrap();
    let user_100 = folded.users.index_of("100").unwrap();
    assert_eq!(training.user_counts[user_100 as usize], 3);
    assert_eq!(training.rated(user_100).len(), 3);

    // recommend on the folded model leaves out what user 100 rated; on the fly it is the same.
    let saved = json(&[
        "recommend",
        "--model",
        path(&out),
        "--user",
        "100",
        "--n",
        "8",
        "--json",
    ]);
    assert_eq!(saved["excluded"], 3, "{saved}");
    let on_the_fly = json(&[
        "recommend",
        "--model",
        path(&model),
        "--ratings",
        path(&new),
        "--user",
        "100",
        "--n",
        "8",
        "--json",
    ]);
    assert_eq!(saved["recommendations"], on_the_fly["recommendations"]);
    // With a one-user file --user may be left out.
    let one = dir.path().join("one.csv");
    std::fs::write(&one, "item,rating,user\n4,5,alice\n8,1,alice\n").unwrap();
    let alice = json(&[
        "recommend",
        "--model",
        path(&model),
        "--ratings",
        path(&one),
        "--json",
    ]);
    assert_eq!(alice["user"], "alice", "{alice}");
    assert_eq!(alice["excluded"], 2, "{alice}");
}

#[test]
fn a_bad_ratings_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let out = dir.path().join("out.safetensors");
    let cases = [
        ("user,film,rating\n1,2,3\n", "line 1", "no `item` column"),
        ("user,item,rating\n100,1,5\n100,99,4\n", "line 3", "99"),
        ("user,item,rating\n100,1,five\n", "line 2", "not a number"),
        (
            "user,item,rating\n3,1,5\n",
            "line 2",
            "already in the model",
        ),
        (
            "user,item,rating\n100,Twins,4\n",
            "line 2",
            "matches 2 items",
        ),
        (
            "user,item,rating\n100,Film,4\n",
            "line 2",
            "nor a whole title",
        ),
        ("user,item,rating\n", "line 1", "no ratings"),
        ("user,item,rating\n100,,4\n", "line 2", "no item"),
    ];
    for (n, (text, line, what)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{n}.csv"));
        std::fs::write(&file, text).unwrap();
        let err = stderr_of_failure(&collabgpu(&[
            "fold-in",
            "--model",
            path(&model),
            "--ratings",
            path(&file),
            "--out",
            path(&out),
        ]));
        assert!(
            err.contains(path(&file)) && err.contains(line) && err.contains(what),
            "{text:?}: {err}"
        );
        assert!(!out.exists(), "nothing is written on an error");
    }
    let file = dir.path().join("good.csv");
    std::fs::write(&file, "user,item,rating\n100,1,5\n").unwrap();
    let err = stderr_of_failure(&collabgpu(&[
        "fold-in",
        "--model",
        path(&model),
        "--ratings",
        path(&file),
        "--out",
        path(&out),
        "--lambda",
        "0",
    ]));
    assert!(err.contains("--lambda must be a positive number"), "{err}");
}
