//! Every published MovieLens layout and generic delimited files, on small files each test writes.

use std::path::Path;

use collabgpu::data::{Dataset, Format, ItemKey, LoadOptions, load};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn dir_str(dir: &tempfile::TempDir) -> String {
    dir.path().to_str().unwrap().to_string()
}

fn title_of<'a>(data: &'a Dataset, raw: &str) -> &'a str {
    &data.titles.as_ref().unwrap()[data.items.index_of(raw).unwrap() as usize]
}

#[test]
fn ml_1m_dat_layout_with_latin1_titles() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ratings.dat",
        b"1::1193::5::978300760\n1::661::3::978302109\n10::1193::4::978301968\n2::3114::1::978298620\n",
    );
    // ML-1M's movies.dat is latin-1; 3114 has a ':' inside its title.
    write(
        dir.path(),
        "movies.dat",
        b"661::James and the Giant Peach (1996)::Animation|Children's|Musical\n\
          1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n\
          3114::Mis\xe9rables: Part 2 (1999)::Drama\n",
    );
    write(dir.path(), "users.dat", b"1::F::1::10::48067\n");
    let data = load(&dir_str(&dir), &LoadOptions::default()).unwrap();
    assert_eq!(
        (data.users.len(), data.items.len(), data.ratings.len()),
        (3, 3, 4)
    );
    assert_eq!(
        data.users.raw_ids(),
        ["1", "2", "10"],
        "numeric order, not text order"
    );
    assert_eq!(data.items.raw_ids(), ["661", "1193", "3114"]);
    assert_eq!(data.ratings.users, vec![0, 0, 2, 1]);
    assert_eq!(data.ratings.items, vec![1, 0, 1, 2]);
    assert_eq!(data.ratings.ratings, vec![5.0, 3.0, 4.0, 1.0]);
    assert_eq!(data.ratings.timestamps.as_ref().unwrap()[3], 978_298_620);
    assert_eq!(title_of(&data, "3114"), "Misérables: Part 2 (1999)");
    assert_eq!(
        data.genres.as_ref().unwrap()[0],
        "Animation|Children's|Musical"
    );
}

#[test]
fn ml_10m_dat_layout_with_utf8_titles_and_half_stars() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ratings.dat",
        b"1::122::5::838985046\n1::185::4.5::838983525\n",
    );
    write(
        dir.path(),
        "movies.dat",
        "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime|Thriller\n186::Amélie (2001)::Comedy\n"
            .as_bytes(),
    );
    write(
        dir.path(),
        "tags.dat",
        b"15::4973::excellent!::1215184630\n",
    );
    let data = load(&dir_str(&dir), &LoadOptions::default()).unwrap();
    assert_eq!(data.ratings.ratings, vec![5.0, 4.5]);
    assert_eq!(data.items.len(), 2, "only rated movies are items");
    assert_eq!(title_of(&data, "185"), "Net, The (1995)");
}

#[test]
fn ml_25m_csv_layout_with_quoted_titles() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n3,296,0.5,1439474476\n",
    );
    write(
        dir.path(),
        "movies.csv",
        "movieId,title,genres\n296,Pulp Fiction (1994),Comedy|Crime|Drama|Thriller\n\
         306,\"Three Colors: Red (Trois couleurs: Rouge), \"\"Rouge\"\" (1994)\",Drama\n"
            .as_bytes(),
    );
    let data = load(&dir_str(&dir), &LoadOptions::default()).unwrap();
    assert_eq!(data.ratings.ratings, vec![5.0, 3.5, 0.5]);
    assert_eq!(data.ratings.users, vec![0, 0, 1]);
    assert_eq!(
        title_of(&data, "306"),
        "Three Colors: Red (Trois couleurs: Rouge), \"Rouge\" (1994)"
    );
    assert_eq!(
        data.genres.as_ref().unwrap()[0],
        "Comedy|Crime|Drama|Thriller"
    );

    // The ratings file alone, and a zip's top folder, both find the same data.
    let by_file = load(
        &format!("{}/ratings.csv", dir_str(&dir)),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(by_file.ratings, data.ratings);
    let outer = tempfile::tempdir().unwrap();
    std::fs::rename(dir.path(), outer.path().join("ml-25m")).unwrap();
    let nested = load(&dir_str(&outer), &LoadOptions::default()).unwrap();
    assert_eq!(nested.ratings, data.ratings);
}

#[test]
fn titles_key_items_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "u.data",
        b"1\t10\t4\t100\n2\t11\t2\t101\n1\t12\t5\t102\n",
    );
    let flags = "|0".repeat(19);
    let item =
        format!("10|Zeta (1990)|||{flags}\n11|Alpha (1990)|||{flags}\n12|Zeta (1990)|||{flags}\n");
    write(dir.path(), "u.item", item.as_bytes());
    let by_id = load(&dir_str(&dir), &LoadOptions::default()).unwrap();
    assert_eq!(by_id.items.len(), 3);
    let options = LoadOptions {
        item_key: ItemKey::Title,
        ..LoadOptions::default()
    };
    let by_title = load(&dir_str(&dir), &options).unwrap();
    assert_eq!(by_title.items.raw_ids(), ["Alpha (1990)", "Zeta (1990)"]);
    assert_eq!(by_title.ratings.items, vec![1, 0, 1]);
}

#[test]
fn generic_csv_with_header_names_and_text_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mine.txt",
        b"when;stars;who;what\n5;4.5;bob;tt2\n6;3;alice;tt1\n7;1;bob;tt1\n",
    );
    let options = LoadOptions {
        format: Format::Csv,
        delimiter: Some(b';'),
        columns: Some(vec![
            "who".into(),
            "what".into(),
            "stars".into(),
            "when".into(),
        ]),
        ..LoadOptions::default()
    };
    let data = load(&file, &options).unwrap();
    assert_eq!(data.users.raw_ids(), ["alice", "bob"]);
    assert_eq!(data.items.raw_ids(), ["tt1", "tt2"]);
    assert_eq!(data.ratings.users, vec![1, 0, 1]);
    assert_eq!(data.ratings.items, vec![1, 0, 0]);
    assert_eq!(data.ratings.ratings, vec![4.5, 3.0, 1.0]);
    assert_eq!(data.ratings.timestamps, Some(vec![5, 6, 7]));
    assert!(data.titles.is_none());
}

#[test]
fn generic_csv_without_header_by_position_and_detected() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "r.csv", b"7, 3, 2.5\n7, 1, 4\n9, 3, 5\n");
    let options = LoadOptions {
        format: Format::Csv,
        ..LoadOptions::default()
    };
    let data = load(&file, &options).unwrap();
    assert_eq!(
        data.ratings.len(),
        3,
        "no header detected: the first line is a rating"
    );
    assert_eq!(data.ratings.timestamps, None);
    assert_eq!(data.items.raw_ids(), ["1", "3"]);

    let swapped = LoadOptions {
        header: Some(false),
        columns: Some(vec!["1".into(), "0".into(), "2".into()]),
        ..options
    };
    let data = load(&file, &swapped).unwrap();
    assert_eq!(data.users.raw_ids(), ["1", "3"], "column 1 is now the user");

    // Without --format csv an unknown file name is read as delimited text with a sniffed delimiter.
    let tsv = write(dir.path(), "r.tsv", b"user\titem\trating\n1\t2\t3\n");
    let data = load(&tsv, &LoadOptions::default()).unwrap();
    assert_eq!(data.ratings.ratings, vec![3.0]);
}

#[test]
fn unknown_data_names_list_what_is_accepted() {
    let err = load("no-such-thing-here", &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--data accepts"), "{err}");
    assert!(err.contains("synthetic:"), "{err}");
    let err = load("synthetic:ml-7m", &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("ml-100k, ml-1m or ml-25m"), "{err}");
    let err = load("synthetic:ml-100k:seven", &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a whole number"), "{err}");
}

#[test]
fn synthetic_data_loads_in_memory() {
    let data = load("synthetic:ml-100k", &LoadOptions::default()).unwrap();
    assert_eq!(data.ratings.len(), 100_000);
    let again = load("synthetic:ml-100k:42", &LoadOptions::default()).unwrap();
    assert_eq!(data.ratings, again.ratings, "the default seed is 42");
}

#[test]
fn ratings_csv_columns_follow_the_header_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ratings.csv",
        b"movieId,userId,timestamp,rating\n296,1,1147880044,4.5\n",
    );
    let data = load(&file, &LoadOptions::default()).unwrap();
    assert_eq!(data.users.raw_ids(), ["1"]);
    assert_eq!(data.items.raw_ids(), ["296"]);
    assert_eq!(data.ratings.ratings, vec![4.5]);
    assert_eq!(data.ratings.timestamps, Some(vec![1_147_880_044]));
    // Without a header the published order is assumed.
    let bare = write(dir.path(), "ratings.csv", b"1,296,4.5,1147880044\n");
    assert_eq!(
        load(&bare, &LoadOptions::default())
            .unwrap()
            .ratings
            .ratings,
        vec![4.5]
    );
}
