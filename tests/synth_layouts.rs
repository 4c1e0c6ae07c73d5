//! The files a synthetic data set is written as, byte for byte, on tiny hand-made data sets: each
//! preset's MovieLens layout, its encoding (latin-1 or UTF-8) and CSV quoting.

use collabgpu::data::synth::{Preset, Synthetic, Truth};
use collabgpu::data::{Dataset, IdMap, Ratings};

/// Two users, two items, three ratings: user 1 rated the second item; user 2 rated both.
fn tiny(preset: Preset, item_ids: [&str; 2], titles: [&str; 2], genres: [&str; 2]) -> Synthetic {
    let half_stars = preset == Preset::Ml25m;
    let ratings = if half_stars {
        vec![4.0, 0.5, 3.5]
    } else {
        vec![4.0, 1.0, 5.0]
    };
    let scale = preset.scale();
    Synthetic {
        dataset: Dataset {
            ratings: Ratings {
                users: vec![0, 1, 1],
                items: vec![1, 0, 1],
                ratings,
                timestamps: Some(vec![881_250_949, 891_717_742, 891_717_743]),
            },
            users: IdMap::from_sorted(vec!["1".into(), "2".into()]),
            items: IdMap::from_sorted(item_ids.iter().map(|s| s.to_string()).collect()),
            titles: Some(titles.iter().map(|s| s.to_string()).collect()),
            genres: Some(genres.iter().map(|s| s.to_string()).collect()),
            source: "hand-made".into(),
            skipped: Vec::new(),
        },
        truth: Truth {
            user_bias: vec![0.0; 2],
            item_bias: vec![0.0; 2],
            noise_std: 0.7,
            noise_floor_mse: 0.25,
            factors: 1,
            user_factors: vec![0.5, -0.5],
            item_factors: vec![1.0, 0.0],
            global_logit: 0.0,
            y_range: (0.0, 5.5),
            scale,
        },
        preset,
        seed: 1,
    }
}

/// Latin-1 bytes of a string whose characters are all below U+0100.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(c as u32).unwrap())
        .collect()
}

#[test]
fn ml_100k_writes_tab_separated_u_data_and_latin1_u_item_with_genre_flags() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = tiny(
        Preset::Ml100k,
        ["1", "2"],
        ["Café Noir (1995)", "Up, Down, The (1987)"],
        ["Comedy|Drama", "unknown"],
    );
    let files = synthetic.write_to(dir.path()).unwrap();
    assert_eq!(files.ratings, dir.path().join("u.data"));
    assert_eq!(
        std::fs::read_to_string(&files.ratings).unwrap(),
        "1\t2\t4\t881250949\n2\t1\t1\t891717742\n2\t2\t5\t891717743\n"
    );
    let expected = "1|Café Noir (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?1|\
                    0|0|0|0|0|1|0|0|1|0|0|0|0|0|0|0|0|0|0\n\
                    2|Up, Down, The (1987)|01-Jan-1987||http://us.imdb.com/M/title-exact?2|\
                    1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n";
    let written = std::fs::read(dir.path().join("u.item")).unwrap();
    assert_eq!(written, latin1(expected));
    assert!(written.contains(&0xE9), "é is the single latin-1 byte 0xE9");
    assert!(
        std::str::from_utf8(&written).is_err(),
        "u.item is not UTF-8"
    );
}

#[test]
fn ml_1m_writes_double_colon_files_in_latin1() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = tiny(
        Preset::Ml1m,
        ["1", "3"],
        ["Café Noir (1995)", "Up, Down, The (1987)"],
        ["Comedy|Drama", "Action"],
    );
    synthetic.write_to(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ratings.dat")).unwrap(),
        "1::3::4::881250949\n2::1::1::891717742\n2::3::5::891717743\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("movies.dat")).unwrap(),
        latin1("1::Café Noir (1995)::Comedy|Drama\n3::Up, Down, The (1987)::Action\n")
    );
}

#[test]
fn ml_25m_writes_csv_with_header_half_stars_quoting_and_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = tiny(
        Preset::Ml25m,
        ["1", "7"],
        ["Łódź Nights (2001)", "Up, Down and \"Out\", The (1987)"],
        ["Drama", "Comedy|IMAX"],
    );
    synthetic.write_to(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ratings.csv")).unwrap(),
        "userId,movieId,rating,timestamp\n1,7,4.0,881250949\n2,1,0.5,891717742\n2,7,3.5,891717743\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("movies.csv")).unwrap(),
        "movieId,title,genres\n1,Łódź Nights (2001),Drama\n\
         7,\"Up, Down and \"\"Out\"\", The (1987)\",Comedy|IMAX\n"
    );
}

#[test]
fn a_title_latin1_cannot_encode_fails_naming_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let synthetic = tiny(
        Preset::Ml100k,
        ["1", "2"],
        ["Café Noir (1995)", "Łódź Nights (2001)"],
        ["Drama", "Drama"],
    );
    let message = synthetic.write_to(&out).unwrap_err().to_string();
    assert!(message.contains("u.item"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("Łódź Nights"), "{message}");
    assert!(message.contains("ISO-8859-1"), "{message}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn truth_json_of_a_hand_made_set_counts_its_own_shape() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = tiny(
        Preset::Ml1m,
        ["1", "3"],
        ["A (1995)", "B (1996)"],
        ["Drama", "Drama"],
    );
    let files = synthetic.write_to(dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.truth).unwrap()).unwrap();
    assert_eq!(json["shape"]["ratings"], 3);
    assert_eq!(json["shape"]["users"], 2);
    // user_factors [0.5, -0.5]: mean 0, population std 0.5.
    assert_eq!(json["tensors"]["user_factors"]["mean"], 0.0);
    assert_eq!(json["tensors"]["user_factors"]["std"], 0.5);
    // Ratings 4, 1, 5: mean 10/3.
    let mean = json["rating_mean"].as_f64().unwrap();
    assert!((mean - 10.0 / 3.0).abs() < 1e-12, "{mean}");
}
