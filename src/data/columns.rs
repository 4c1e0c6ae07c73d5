//! Ratings handed over in memory (a pandas frame, numpy arrays) instead of a file. Raw ids become
//! dense indices by the very rules and code that read a file (SPEC "Data"), so the same ratings in
//! the same order give the same data set, and so the same model, whichever way they arrive.

use super::delimited::{IdColumn, RawKey, raw_key};
use super::{DataError, Dataset, IdMap, Ratings};

/// One id column as a caller holds it: integers, or text (which may still spell integers: `"042"`
/// is the integer 42, as in a file).
#[derive(Debug, Clone, PartialEq)]
pub enum RawIds {
    Integers(Vec<i64>),
    Text(Vec<String>),
}

impl RawIds {
    pub fn len(&self) -> usize {
        match self {
            RawIds::Integers(ids) => ids.len(),
            RawIds::Text(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Ratings as parallel columns with raw ids: row `n` is one rating.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingColumns {
    pub users: RawIds,
    pub items: RawIds,
    pub ratings: Vec<f32>,
    /// Unix seconds, when known.
    pub timestamps: Option<Vec<i64>>,
    /// The title of each row's item (a ratings frame merged with its movies, as fastai's is).
    pub titles: Option<Vec<String>>,
    /// What the ratings are, for messages (e.g. "a DataFrame").
    pub source: String,
}

/// The data set of `columns`: dense indices in ascending raw-id order, ratings in row order, a
/// title per item. Refuses columns of different lengths, no rows, empty ids, ratings that are not
/// finite, and an item given two different titles.
pub fn dataset_from_columns(columns: RatingColumns) -> Result<Dataset, DataError> {
    let RatingColumns {
        users,
        items,
        ratings,
        timestamps,
        titles,
        source,
    } = columns;
    let n = ratings.len();
    let lengths = [
        ("user", users.len()),
        ("item", items.len()),
        ("timestamp", timestamps.as_ref().map_or(n, Vec::len)),
        ("title", titles.as_ref().map_or(n, Vec::len)),
    ];
    if let Some((name, len)) = lengths.iter().find(|(_, len)| *len != n) {
        return Err(DataError::Invalid(format!(
            "{source}: {n} ratings but {len} {name} entries; give every column one entry per rating"
        )));
    }
    if n == 0 {
        return Err(DataError::Invalid(format!(
            "{source} holds no ratings; give at least one (user, item, rating) row"
        )));
    }
    if n > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "{source}: {n} ratings do not fit 32-bit rating indices; use a smaller data set"
        )));
    }
    if let Some(row) = ratings.iter().position(|r| !r.is_finite()) {
        return Err(DataError::Invalid(format!(
            "{source}, row {row}: the rating is {}; every rating must be a finite number (drop or fill missing ratings first)",
            ratings[row]
        )));
    }
    let (user_index, users) = dense_column(&users, "user", &source)?;
    let (item_index, items) = dense_column(&items, "item", &source)?;
    let titles = titles
        .map(|titles| titles_per_item(&titles, &item_index, &items, &source))
        .transpose()?;
    Ok(Dataset {
        ratings: Ratings {
            users: user_index,
            items: item_index,
            ratings,
            timestamps,
        },
        users,
        items,
        titles,
        genres: None,
        source,
        skipped: Vec::new(),
    })
}

/// Per row, the dense index of its raw id, and the id map.
fn dense_column(ids: &RawIds, name: &str, source: &str) -> Result<(Vec<u32>, IdMap), DataError> {
    let mut column = IdColumn::default();
    let mut index = Vec::with_capacity(ids.len());
    match ids {
        RawIds::Integers(ids) => {
            for &id in ids {
                column.push(RawKey::Int(id), &mut index);
            }
        }
        RawIds::Text(ids) => {
            for (row, id) in ids.iter().enumerate() {
                let key = raw_key(id.as_bytes()).map_err(|_| {
                    DataError::Invalid(format!(
                        "{source}, row {row}: the {name} id is empty; every rating needs a {name} id"
                    ))
                })?;
                column.push(key, &mut index);
            }
        }
    }
    let map = column.finish(&mut index);
    Ok((index, map))
}

/// The title of each item index from the title of each row.
fn titles_per_item(
    titles: &[String],
    item_index: &[u32],
    items: &IdMap,
    source: &str,
) -> Result<Vec<String>, DataError> {
    let mut per_item: Vec<Option<(usize, &str)>> = vec![None; items.len()];
    for (row, (&item, title)) in item_index.iter().zip(titles).enumerate() {
        match per_item[item as usize] {
            None => per_item[item as usize] = Some((row, title)),
            Some((first, seen)) if seen != title => {
                return Err(DataError::Invalid(format!(
                    "{source}: item {} has the title {seen:?} in row {first} and {title:?} in row {row}; give each item one title",
                    items.raw(item)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(per_item
        .into_iter()
        .map(|title| title.map_or(String::new(), |(_, t)| t.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(users: RawIds, items: RawIds, ratings: Vec<f32>) -> RatingColumns {
        RatingColumns {
            users,
            items,
            ratings,
            timestamps: None,
            titles: None,
            source: "test columns".into(),
        }
    }

    #[test]
    fn integer_and_text_spellings_give_the_same_dense_indices() {
        let numbers = columns(
            RawIds::Integers(vec![10, 9, 100, 9]),
            RawIds::Integers(vec![3, 1, 2, 3]),
            vec![1.0, 2.0, 3.0, 4.0],
        );
        let text = columns(
            RawIds::Text(vec!["10".into(), "09".into(), "+100".into(), "9".into()]),
            RawIds::Text(vec!["3".into(), "1".into(), "2".into(), "3".into()]),
            vec![1.0, 2.0, 3.0, 4.0],
        );
        let a = dataset_from_columns(numbers).unwrap();
        let b = dataset_from_columns(text).unwrap();
        assert_eq!(a.users.raw_ids(), ["9", "10", "100"]);
        assert_eq!(a.ratings.users, vec![1, 0, 2, 0]);
        assert_eq!(a.ratings.items, vec![2, 0, 1, 2]);
        assert_eq!(a.ratings, b.ratings);
        assert_eq!(a.users, b.users);
    }

    #[test]
    fn text_ids_sort_as_text_and_titles_follow_items() {
        let mut given = columns(
            RawIds::Text(vec!["bob".into(), "alice".into()]),
            RawIds::Text(vec!["z".into(), "a".into()]),
            vec![5.0, 3.0],
        );
        given.titles = Some(vec!["Zed".into(), "Ay".into()]);
        let dataset = dataset_from_columns(given).unwrap();
        assert_eq!(dataset.users.raw_ids(), ["alice", "bob"]);
        assert_eq!(dataset.ratings.users, vec![1, 0]);
        assert_eq!(dataset.titles, Some(vec!["Ay".into(), "Zed".into()]));
    }

    #[test]
    fn bad_columns_are_refused_with_the_row() {
        let short = columns(
            RawIds::Integers(vec![1, 2]),
            RawIds::Integers(vec![1]),
            vec![1.0, 2.0],
        );
        let err = dataset_from_columns(short).unwrap_err().to_string();
        assert!(err.contains("2 ratings but 1 item entries"), "{err}");
        let nan = columns(
            RawIds::Integers(vec![1, 2]),
            RawIds::Integers(vec![1, 2]),
            vec![1.0, f32::NAN],
        );
        let err = dataset_from_columns(nan).unwrap_err().to_string();
        assert!(err.contains("row 1: the rating is NaN"), "{err}");
        let empty_id = columns(
            RawIds::Text(vec!["a".into(), String::new()]),
            RawIds::Integers(vec![1, 2]),
            vec![1.0, 2.0],
        );
        let err = dataset_from_columns(empty_id).unwrap_err().to_string();
        assert!(err.contains("row 1: the user id is empty"), "{err}");
        let none = columns(RawIds::Integers(vec![]), RawIds::Integers(vec![]), vec![]);
        assert!(dataset_from_columns(none).is_err());
        let mut two_titles = columns(
            RawIds::Integers(vec![1, 2]),
            RawIds::Integers(vec![7, 7]),
            vec![1.0, 2.0],
        );
        two_titles.titles = Some(vec!["A".into(), "B".into()]);
        let err = dataset_from_columns(two_titles).unwrap_err().to_string();
        assert!(err.contains("item 7 has the title \"A\" in row 0"), "{err}");
    }
}
