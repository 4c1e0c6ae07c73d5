//! Resolving `--data` (a path, a cache name or `synthetic:NAME`) and reading it.

use std::path::Path;

use super::delimited::{ColumnRule, HeaderRule, RatingScale, ReadPlan, dense_ids, read_ratings};
use super::movielens::{self, Layout};
use super::{DataError, Dataset, Format, ItemKey, LoadOptions, download, synth};

/// Ratings a generic delimited file may hold: every MovieLens scale and 10-point scales.
const GENERIC_SCALE: RatingScale = RatingScale {
    min: 0.0,
    max: 10.0,
    name: "the generic-file scale",
};

/// The seed of `synthetic:NAME` without `:SEED`.
const DEFAULT_SYNTHETIC_SEED: u64 = 42;

/// Reads the data set that `data` names: a directory (layout detected), a file, a data-set name
/// from the download cache (`ml-100k`, ...), or `synthetic:NAME[:SEED]` (generated in memory).
pub fn load(data: &str, options: &LoadOptions) -> Result<Dataset, DataError> {
    Ok(load_with_truth(data, options)?.0)
}

/// [`load`], and for `synthetic:NAME[:SEED]` the planted model too (its indices are the data set's
/// dense indices: the generator numbers users and items in ascending raw-id order).
pub fn load_with_truth(
    data: &str,
    options: &LoadOptions,
) -> Result<(Dataset, Option<synth::Truth>), DataError> {
    let mut truth = None;
    let dataset = if let Some(spec) = data.strip_prefix("synthetic:") {
        let synthetic = load_synthetic(spec)?;
        truth = Some(synthetic.truth);
        synthetic.dataset
    } else if Path::new(data).exists() {
        load_path(Path::new(data), options)?
    } else if let Some(dir) = bare_name(data)
        .map(|name| download::resolve(name, true))
        .transpose()?
        .flatten()
    {
        load_path(&dir, options)?
    } else if let Some(name) = did_you_mean(data) {
        return Err(DataError::Invalid(format!(
            "--data {data:?} is not an existing file or directory nor a data-set name; did you mean \
             {name}?"
        )));
    } else {
        return Err(DataError::Invalid(format!(
            "--data {data:?} is not an existing file or directory, a known data-set name, or synthetic:NAME; \
             --data accepts a MovieLens directory (u.data, ratings.dat or ratings.csv inside), a ratings \
             file (with --format csv for other layouts), a name the download cache knows (ml-100k, ml-1m, \
             ml-10m, ml-20m, ml-25m, ml-latest-small) or synthetic:ml-100k|ml-1m|ml-25m[:SEED]"
        )));
    };
    match options.item_key {
        ItemKey::Id => Ok((dataset, truth)),
        // Merged items no longer match the planted model's.
        ItemKey::Title => Ok((key_items_by_title(dataset)?, None)),
    }
}

/// The data-set name (`ml-100k`, `synthetic:ml-1m`, ...) that `data` looks like a misspelling
/// of: equal once case and everything but letters and digits are ignored, or within two edits.
fn did_you_mean(data: &str) -> Option<String> {
    let squash = |text: &str| -> String {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let names = download::KNOWN.iter().map(|k| k.name.to_string()).chain(
        synth::Preset::ALL
            .iter()
            .map(|preset| format!("synthetic:{}", preset.name())),
    );
    let wanted = squash(data);
    names
        .map(|name| (edit_distance(&squash(&name), &wanted), name))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, name)| name)
}

/// The Levenshtein distance between two strings, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let substitute = previous + usize::from(ca != b[j]);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// `data` when it could be a data-set name (no path separators), for the download cache.
fn bare_name(data: &str) -> Option<&str> {
    (!data.is_empty() && !data.contains(['/', '\\'])).then_some(data)
}

/// `NAME[:SEED]` of `synthetic:NAME[:SEED]`.
fn load_synthetic(spec: &str) -> Result<synth::Synthetic, DataError> {
    let (name, seed) = match spec.split_once(':') {
        Some((name, seed)) => {
            let seed = seed.parse::<u64>().map_err(|_| {
                DataError::Invalid(format!(
                    "synthetic:{spec}: the seed {seed:?} is not a whole number; write synthetic:NAME or synthetic:NAME:SEED"
                ))
            })?;
            (name, seed)
        }
        None => (spec, DEFAULT_SYNTHETIC_SEED),
    };
    let preset = synth::Preset::from_name(name).ok_or_else(|| {
        DataError::Invalid(format!(
            "synthetic:{spec}: unknown preset {name:?}; choose ml-100k, ml-1m or ml-25m"
        ))
    })?;
    synth::generate(preset, seed)
}

/// Reads a directory (its MovieLens layout) or a file (by its name, or as generic delimited text).
fn load_path(path: &Path, options: &LoadOptions) -> Result<Dataset, DataError> {
    if path.is_dir() {
        if options.format == Format::Csv {
            return Err(DataError::Invalid(format!(
                "{}: --format csv reads one file, and this is a directory; pass the ratings file itself",
                path.display()
            )));
        }
        let (layout, ratings) =
            movielens::detect_dir(path).ok_or_else(|| movielens::no_layout_error(path))?;
        return movielens::load(layout, &ratings, options);
    }
    let layout = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(Layout::from_ratings_file);
    match (options.format, layout) {
        (Format::Auto, Some(layout)) => movielens::load(layout, path, options),
        _ => load_generic(path, options),
    }
}

/// A delimited file described by `--delimiter`, `--header` and `--columns` (each detected when
/// not given).
fn load_generic(path: &Path, options: &LoadOptions) -> Result<Dataset, DataError> {
    if options.item_key == ItemKey::Title {
        return Err(DataError::Invalid(format!(
            "{}: --item-key title needs titles, and a generic delimited file has none; use --item-key id \
             or a MovieLens layout with its title file",
            path.display()
        )));
    }
    let delimiter = match options.delimiter {
        Some(delimiter) => delimiter,
        None if options.format == Format::Csv => b',',
        None => sniff_delimiter(path)?,
    };
    let header = match options.header {
        Some(true) => HeaderRule::Present,
        Some(false) => HeaderRule::Absent,
        None => HeaderRule::Detect,
    };
    let columns = match &options.columns {
        Some(columns) => ColumnRule::Named(columns.clone()),
        None => ColumnRule::Auto,
    };
    let shown = match delimiter {
        b'\t' => "tab".to_string(),
        other => format!("{:?}", other as char),
    };
    let plan = ReadPlan {
        path: path.to_path_buf(),
        delimiter,
        quoting: true,
        trim: true,
        header,
        columns,
        expected_fields: None,
        double_colon: false,
        line_shape: format!("fields separated by {shown}, as many as the first line has"),
        scale: GENERIC_SCALE,
        skip_bad_lines: options.skip_bad_lines,
    };
    Ok(read_ratings(&plan)?.into_dataset(path.display().to_string()))
}

/// The delimiter of a file given without `--format csv`: tab, comma, semicolon or `|`, whichever
/// the first line holds (in that order of preference).
fn sniff_delimiter(path: &Path) -> Result<u8, DataError> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut first = Vec::new();
    std::io::BufReader::new(file)
        .read_until(b'\n', &mut first)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok([b'\t', b',', b';', b'|']
        .into_iter()
        .find(|delimiter| first.contains(delimiter))
        .unwrap_or(b','))
}

/// Keys items by title (SPEC "Data", `--item-key title`): ids that share a title become one item,
/// indexed in ascending title order. The genres of such an item are those of its lowest-index id.
pub fn key_items_by_title(mut dataset: Dataset) -> Result<Dataset, DataError> {
    let Some(titles) = dataset.titles.take() else {
        return Err(DataError::Invalid(format!(
            "{}: --item-key title needs titles, and this data set has none; use --item-key id",
            dataset.source
        )));
    };
    let (items, remap) = dense_ids(titles.clone());
    if let Some(old_genres) = dataset.genres.take() {
        let mut genres = vec![None; items.len()];
        for (old, genre) in old_genres.into_iter().enumerate() {
            genres[remap[old] as usize].get_or_insert(genre);
        }
        dataset.genres = Some(genres.into_iter().map(Option::unwrap_or_default).collect());
    }
    for item in &mut dataset.ratings.items {
        *item = remap[*item as usize];
    }
    dataset.titles = Some(items.raw_ids().to_vec());
    dataset.items = items;
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_names_get_a_suggestion() {
        assert_eq!(did_you_mean("ml100k").as_deref(), Some("ml-100k"));
        assert_eq!(did_you_mean("ML_1M").as_deref(), Some("ml-1m"));
        assert_eq!(did_you_mean("ml-25").as_deref(), Some("ml-25m"));
        assert_eq!(
            did_you_mean("synthetic-ml-1m").as_deref(),
            Some("synthetic:ml-1m")
        );
        assert_eq!(did_you_mean("my-ratings.csv"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn the_message_names_the_suggestion() {
        let err = load("ml100k", &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean ml-100k?"), "{err}");
    }
}
