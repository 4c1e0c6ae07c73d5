//! The published MovieLens layouts: which files a directory holds, how their ratings lines look, and
//! where the titles (and genres) come from.
//!
//! | layout | ratings | titles | encoding of titles |
//! |---|---|---|---|
//! | ML-100K | `u.data`, tab-separated, no header | `u.item`, `|`-separated, 19 genre flags | ISO-8859-1 |
//! | ML-1M, ML-10M | `ratings.dat`, `::`-separated | `movies.dat`, `::`-separated | latin-1 (1M), UTF-8 (10M) |
//! | ML-20M, 25M, 32M, latest | `ratings.csv` with header | `movies.csv`, quoted titles | UTF-8 |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::delimited::{
    ColumnRule, Columns, HeaderRule, IdBuildHasher, RatingScale, ReadPlan, exact_line,
    read_ratings, record_text, shorten,
};
use super::{DataError, Dataset, ItemKey, LoadOptions, canonical_id};

/// The genre names of `u.item`'s 19 flags, in column order.
const ML_100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// A MovieLens file layout, told apart by the ratings file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `u.data` + `u.item`.
    Ml100k,
    /// `ratings.dat` + `movies.dat` (ML-1M, ML-10M).
    Dat,
    /// `ratings.csv` + `movies.csv` (ML-20M and later, ml-latest).
    Csv,
}

impl Layout {
    const ALL: [Layout; 3] = [Layout::Ml100k, Layout::Dat, Layout::Csv];

    fn ratings_file(self) -> &'static str {
        match self {
            Layout::Ml100k => "u.data",
            Layout::Dat => "ratings.dat",
            Layout::Csv => "ratings.csv",
        }
    }

    fn titles_file(self) -> &'static str {
        match self {
            Layout::Ml100k => "u.item",
            Layout::Dat => "movies.dat",
            Layout::Csv => "movies.csv",
        }
    }

    /// The layout whose ratings file is called `name`.
    pub fn from_ratings_file(name: &str) -> Option<Layout> {
        Layout::ALL
            .into_iter()
            .find(|layout| layout.ratings_file() == name)
    }

    fn plan(self, path: PathBuf, skip_bad_lines: bool) -> ReadPlan {
        let all_four = Columns {
            user: 0,
            item: 1,
            rating: 2,
            timestamp: Some(3),
        };
        match self {
            Layout::Ml100k => ReadPlan {
                path,
                delimiter: b'\t',
                quoting: false,
                trim: false,
                header: HeaderRule::Absent,
                columns: ColumnRule::Positions(all_four),
                expected_fields: Some(4),
                double_colon: false,
                line_shape: "4 tab-separated fields: user id, item id, rating, timestamp".into(),
                scale: RatingScale {
                    min: 1.0,
                    max: 5.0,
                    name: "ML-100K's 1-5 star scale",
                },
                skip_bad_lines,
            },
            // Split on single ':' so the csv reader can do it; the empty fields between are the
            // second ':' of each `::`.
            Layout::Dat => ReadPlan {
                path,
                delimiter: b':',
                quoting: false,
                trim: false,
                header: HeaderRule::Absent,
                columns: ColumnRule::Positions(Columns {
                    user: 0,
                    item: 2,
                    rating: 4,
                    timestamp: Some(6),
                }),
                expected_fields: Some(7),
                double_colon: true,
                line_shape: "UserID::MovieID::Rating::Timestamp".into(),
                // ML-1M has whole stars, ML-10M half stars: one scale covers both.
                scale: RatingScale {
                    min: 0.5,
                    max: 5.0,
                    name: "MovieLens's 0.5-5 star scale",
                },
                skip_bad_lines,
            },
            Layout::Csv => ReadPlan {
                path,
                delimiter: b',',
                quoting: true,
                trim: false,
                header: HeaderRule::Detect,
                // By header name, so a file whose columns were reordered still reads right.
                columns: ColumnRule::Auto,
                expected_fields: Some(4),
                double_colon: false,
                line_shape: "4 comma-separated fields: userId,movieId,rating,timestamp".into(),
                scale: RatingScale {
                    min: 0.5,
                    max: 5.0,
                    name: "MovieLens's 0.5-5 star scale",
                },
                skip_bad_lines,
            },
        }
    }
}

/// The layout of a directory: its own files, or those of its only subdirectory (a zip unpacked
/// with its top folder).
pub(crate) fn detect_dir(dir: &Path) -> Option<(Layout, PathBuf)> {
    let here = Layout::ALL
        .into_iter()
        .find(|layout| dir.join(layout.ratings_file()).is_file())
        .map(|layout| (layout, dir.join(layout.ratings_file())));
    if here.is_some() {
        return here;
    }
    let subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    match subdirs.as_slice() {
        [only] => Layout::ALL
            .into_iter()
            .find(|layout| only.join(layout.ratings_file()).is_file())
            .map(|layout| (layout, only.join(layout.ratings_file()))),
        _ => None,
    }
}

/// The error for a directory with no known layout: what was looked for.
pub(crate) fn no_layout_error(dir: &Path) -> DataError {
    DataError::Invalid(format!(
        "{}: no MovieLens ratings file here; expected u.data (ML-100K), ratings.dat (ML-1M, ML-10M) \
         or ratings.csv (ML-20M and later), or pass a ratings file with --format csv",
        dir.display()
    ))
}

/// Reads the ratings file `ratings` of `layout`, and its titles from the file beside it.
pub(crate) fn load(
    layout: Layout,
    ratings: &Path,
    options: &LoadOptions,
) -> Result<Dataset, DataError> {
    let raw = read_ratings(&layout.plan(ratings.to_path_buf(), options.skip_bad_lines))?;
    let mut dataset = raw.into_dataset(ratings.display().to_string());
    let titles_path = ratings.with_file_name(layout.titles_file());
    if !titles_path.is_file() {
        if options.item_key == ItemKey::Title {
            return Err(DataError::Invalid(format!(
                "--item-key title needs the title file {}, which is missing; put {} beside {} or use --item-key id",
                titles_path.display(),
                layout.titles_file(),
                ratings.display()
            )));
        }
        return Ok(dataset);
    }
    let movies = match layout {
        Layout::Ml100k => read_u_item(&titles_path)?,
        Layout::Dat => {
            // ML-10M ships tags.dat and UTF-8 titles; ML-1M neither. So latin-1 is accepted only
            // where the directory does not look like ML-10M.
            let utf8_only = titles_path.with_file_name("tags.dat").is_file();
            read_movies_dat(&titles_path, utf8_only)?
        }
        Layout::Csv => read_movies_csv(&titles_path)?,
    };
    attach_titles(&mut dataset, &movies, &titles_path, options.item_key)?;
    Ok(dataset)
}

/// Title and genres of one movie.
pub(crate) type Movie = (String, String);

/// Raw item id ([`canonical_id`], as the ratings' ids are) -> (title, genres).
pub(crate) type Movies = HashMap<String, Movie, IdBuildHasher>;

/// Fills `titles` and `genres` for every item index. A rated item missing from the title file gets
/// an empty title, unless titles key the items (then it is an error).
fn attach_titles(
    dataset: &mut Dataset,
    movies: &Movies,
    path: &Path,
    item_key: ItemKey,
) -> Result<(), DataError> {
    let mut titles = Vec::with_capacity(dataset.items.len());
    let mut genres = Vec::with_capacity(dataset.items.len());
    for raw in dataset.items.raw_ids() {
        match movies.get(raw) {
            Some((title, genre)) => {
                titles.push(title.clone());
                genres.push(genre.clone());
            }
            None if item_key == ItemKey::Title => {
                return Err(DataError::Invalid(format!(
                    "{}: item {raw} is rated but has no line here, so it has no title for --item-key title; \
                     add its line or use --item-key id",
                    path.display()
                )));
            }
            None => {
                titles.push(String::new());
                genres.push(String::new());
            }
        }
    }
    dataset.titles = Some(titles);
    dataset.genres = Some(genres);
    Ok(())
}

/// Decodes ISO-8859-1: every byte is the code point of the same value.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&byte| char::from(byte)).collect()
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Lines of a small file with their 1-based numbers, without line endings, skipping blank ones.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    bytes
        .split(|&byte| byte == b'\n')
        .enumerate()
        .map(|(index, line)| (index as u64 + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.is_empty())
}

fn bad_title_line(path: &Path, line: u64, expected: &str, text: &str) -> DataError {
    DataError::BadLine {
        path: path.to_path_buf(),
        line,
        message: format!("expected {expected}, found {:?}", shorten(text)),
    }
}

/// `u.item`: `id|title|release date|video release date|URL|` and 19 genre flags, ISO-8859-1.
pub(crate) fn read_u_item(path: &Path) -> Result<Movies, DataError> {
    let bytes = read_bytes(path)?;
    let mut movies = Movies::default();
    for (number, line) in lines(&bytes) {
        let text = latin1(line);
        let fields: Vec<&str> = text.split('|').collect();
        if fields.len() != 5 + ML_100K_GENRES.len() {
            return Err(bad_title_line(
                path,
                number,
                "24 |-separated fields: id|title|release date|video release date|URL| and 19 genre flags",
                &text,
            ));
        }
        let genres: Vec<&str> = fields[5..]
            .iter()
            .zip(ML_100K_GENRES)
            .filter(|(flag, _)| **flag == "1")
            .map(|(_, genre)| genre)
            .collect();
        movies.insert(
            canonical_id(fields[0]).into_owned(),
            (fields[1].to_string(), genres.join("|")),
        );
    }
    Ok(movies)
}

/// `movies.dat`: `MovieID::Title::Genres`. UTF-8 when the bytes are valid UTF-8 (ML-10M), else
/// latin-1 (ML-1M) unless `utf8_only`.
pub(crate) fn read_movies_dat(path: &Path, utf8_only: bool) -> Result<Movies, DataError> {
    let bytes = read_bytes(path)?;
    let utf8 = std::str::from_utf8(&bytes).is_ok();
    let mut movies = Movies::default();
    for (number, line) in lines(&bytes) {
        let text = match std::str::from_utf8(line) {
            Ok(text) => text.to_string(),
            Err(_) if !utf8 && !utf8_only => latin1(line),
            Err(_) => {
                return Err(DataError::BadLine {
                    path: path.to_path_buf(),
                    line: number,
                    message: format!(
                        "bytes that are not valid UTF-8 in {:?}; this layout (ML-10M, with tags.dat) is UTF-8: \
                         re-save the file as UTF-8",
                        shorten(&String::from_utf8_lossy(line))
                    ),
                });
            }
        };
        // Titles may hold ':' but not "::", so the id is before the first and the genres after the last.
        let parsed = text.split_once("::").and_then(|(id, rest)| {
            rest.rsplit_once("::")
                .map(|(title, genres)| (id, title, genres))
        });
        let Some((id, title, genres)) = parsed else {
            return Err(bad_title_line(
                path,
                number,
                "MovieID::Title::Genres",
                &text,
            ));
        };
        movies.insert(
            canonical_id(id).into_owned(),
            (title.to_string(), genres.to_string()),
        );
    }
    Ok(movies)
}

/// `movies.csv`: header `movieId,title,genres`, titles with commas double-quoted, UTF-8.
pub(crate) fn read_movies_csv(path: &Path) -> Result<Movies, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let mut record = csv::ByteRecord::new();
    let mut movies = Movies::default();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                return Err(DataError::BadLine {
                    path: path.to_path_buf(),
                    line,
                    message: format!(
                        "cannot read this line as CSV ({error}); expected movieId,title,genres"
                    ),
                });
            }
        }
        if record.len() != 3 {
            return Err(DataError::BadLine {
                path: path.to_path_buf(),
                line: exact_line(path, &record),
                message: format!(
                    "expected 3 fields: movieId,title,genres (quote titles that hold commas), found {} in {:?}",
                    record.len(),
                    record_text(&record, b',')
                ),
            });
        }
        let field = |index: usize| {
            std::str::from_utf8(&record[index]).map(str::to_string).map_err(|_| DataError::BadLine {
                path: path.to_path_buf(),
                line: exact_line(path, &record),
                message: format!(
                    "bytes that are not valid UTF-8 in {:?}; movies.csv is UTF-8: re-save the file as UTF-8",
                    record_text(&record, b',')
                ),
            })
        };
        movies.insert(
            canonical_id(&field(0)?).into_owned(),
            (field(1)?, field(2)?),
        );
    }
    Ok(movies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_maps_bytes_to_code_points() {
        assert_eq!(latin1(b"Mis\xe9rables"), "Misérables");
    }

    #[test]
    fn layouts_are_named_by_their_ratings_file() {
        assert_eq!(Layout::from_ratings_file("u.data"), Some(Layout::Ml100k));
        assert_eq!(Layout::from_ratings_file("ratings.dat"), Some(Layout::Dat));
        assert_eq!(Layout::from_ratings_file("ratings.csv"), Some(Layout::Csv));
        assert_eq!(Layout::from_ratings_file("u.item"), None);
    }
}
