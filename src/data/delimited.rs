//! The streaming ratings reader behind every layout: one `csv` reader, one reused `ByteRecord`,
//! no allocation per row. Raw ids are parsed once and interned (a direct table for small integer
//! ids, a hash map otherwise) into first-seen indices; [`RawRatings::into_dataset`] turns those
//! into SPEC's dense indices (ascending raw id) once the whole file has been read.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{DataError, Dataset, IdMap, Ratings};

/// The ratings a layout accepts; anything outside is a bad line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RatingScale {
    pub min: f32,
    pub max: f32,
    /// Where the scale comes from, for messages (e.g. "ML-100K's 1-5 stars").
    pub name: &'static str,
}

/// Where the fields of a rating sit in a record (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Columns {
    pub user: usize,
    pub item: usize,
    pub rating: usize,
    pub timestamp: Option<usize>,
}

/// Whether the first record is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderRule {
    Absent,
    Present,
    /// A header when the first record's rating field is not a number.
    Detect,
}

/// How to find the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnRule {
    Positions(Columns),
    /// `user,item,rating[,timestamp]` as names or positions (`--columns`).
    Named(Vec<String>),
    /// Match well-known header names (`userId`, `movieId`, ...) or take 0,1,2[,3].
    Auto,
}

/// Everything the reader needs to know about one file.
#[derive(Debug, Clone)]
pub(crate) struct ReadPlan {
    pub path: PathBuf,
    pub delimiter: u8,
    pub quoting: bool,
    pub trim: bool,
    pub header: HeaderRule,
    pub columns: ColumnRule,
    /// `None`: as many as the first record has.
    pub expected_fields: Option<usize>,
    /// `ratings.dat` is split on `:`; its fields 1, 3, 5 must be empty (the `::` separators).
    pub double_colon: bool,
    /// What a line looks like, for messages ("4 tab-separated fields: user, item, rating, timestamp").
    pub line_shape: String,
    pub scale: RatingScale,
    pub skip_bad_lines: bool,
}

/// Why a line was refused; the text is the reason reported under `--skip-bad-lines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum BadReason {
    FieldCount,
    RatingNotNumber,
    RatingOutOfScale,
    BadId,
    BadTimestamp,
    BadEncoding,
}

impl BadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::FieldCount => "wrong number of fields",
            BadReason::RatingNotNumber => "rating is not a number",
            BadReason::RatingOutOfScale => "rating outside the scale",
            BadReason::BadId => "empty user or item id",
            BadReason::BadTimestamp => "timestamp is not an integer",
            BadReason::BadEncoding => "bytes not valid UTF-8",
        }
    }
}

/// Counts of skipped lines by reason, in [`Dataset::skipped`]'s shape.
#[derive(Debug, Default, Clone)]
pub(crate) struct SkipCounts(BTreeMap<BadReason, u64>);

impl SkipCounts {
    pub fn add(&mut self, reason: BadReason) {
        *self.0.entry(reason).or_default() += 1;
    }

    pub fn into_vec(self) -> Vec<(String, u64)> {
        self.0
            .into_iter()
            .map(|(reason, count)| (reason.as_str().to_string(), count))
            .collect()
    }
}

/// The hasher of the id maps: rustc's Fx hash, one multiply per word. `SipHash` costs more than
/// the rest of a row's parsing, and ids from a ratings file are not adversarial.
pub(crate) type IdBuildHasher = rustc_hash::FxBuildHasher;

/// Integer ids below this go through a direct table (4 bytes per slot: 64 MiB at most); MovieLens
/// ids are all far below it.
const TABLE_LIMIT: i64 = 1 << 24;
const UNSEEN: u32 = u32::MAX;

/// A raw id as found in a field: integers are keyed by value (so `042`, `+42` and `42` are one
/// id, [`super::integer_id`]), anything else by its text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawKey<'a> {
    Int(i64),
    Text(&'a str),
}

/// Classifies a field as a raw id without allocating. `Err` when it is empty or not UTF-8.
pub(crate) fn raw_key(field: &[u8]) -> Result<RawKey<'_>, BadReason> {
    if field.is_empty() {
        return Err(BadReason::BadId);
    }
    // The fast path: plain digits that cannot overflow (every MovieLens id).
    if field.len() <= 18 && field.iter().all(u8::is_ascii_digit) {
        let value = field
            .iter()
            .fold(0i64, |acc, &digit| acc * 10 + i64::from(digit - b'0'));
        return Ok(RawKey::Int(value));
    }
    let text = std::str::from_utf8(field).map_err(|_| BadReason::BadEncoding)?;
    Ok(match super::integer_id(text) {
        Some(value) => RawKey::Int(value),
        None => RawKey::Text(text),
    })
}

/// Raw id -> first-seen index, keeping the raw ids in first-seen order.
#[derive(Default)]
struct IdInterner {
    table: Vec<u32>,
    large: HashMap<i64, u32, IdBuildHasher>,
    text: HashMap<String, u32, IdBuildHasher>,
    raw: Vec<String>,
}

impl IdInterner {
    fn intern(&mut self, key: RawKey<'_>) -> u32 {
        let next = self.raw.len() as u32;
        match key {
            RawKey::Int(value) if (0..TABLE_LIMIT).contains(&value) => {
                let slot = value as usize;
                if slot >= self.table.len() {
                    let grown = (slot + 1).next_power_of_two().min(TABLE_LIMIT as usize);
                    self.table.resize(grown, UNSEEN);
                }
                let seen = self.table[slot];
                if seen != UNSEEN {
                    return seen;
                }
                self.table[slot] = next;
                self.raw.push(value.to_string());
            }
            RawKey::Int(value) => {
                if let Some(&seen) = self.large.get(&value) {
                    return seen;
                }
                self.large.insert(value, next);
                self.raw.push(value.to_string());
            }
            RawKey::Text(text) => {
                if let Some(&seen) = self.text.get(text) {
                    return seen;
                }
                self.text.insert(text.to_string(), next);
                self.raw.push(text.to_string());
            }
        }
        next
    }
}

/// Builds one id column (users or items) while the file streams by.
///
/// While every id is an integer from 0 to below [`TABLE_LIMIT`] (all MovieLens files), the column
/// holds the raw ids themselves and a bitmap marks which occur: the bitmap is 32 times smaller than
/// an index table, so it stays in cache where a table lookup per row missed it (that lookup was a
/// quarter of the reading time on ML-25M's shape). The dense indices are then filled in by one
/// tight pass at the end. The first other id switches the column to an [`IdInterner`].
#[derive(Default)]
pub(crate) struct IdColumn {
    seen: Vec<u64>,
    interner: Option<IdInterner>,
}

impl IdColumn {
    pub(crate) fn push(&mut self, key: RawKey<'_>, column: &mut Vec<u32>) {
        if self.interner.is_none() {
            if let RawKey::Int(value) = key
                && (0..TABLE_LIMIT).contains(&value)
            {
                let word = (value / 64) as usize;
                if word >= self.seen.len() {
                    self.seen.resize((word + 1).next_power_of_two(), 0);
                }
                self.seen[word] |= 1 << (value % 64);
                column.push(value as u32);
                return;
            }
            self.switch_to_interner(column);
        }
        let interner = self.interner.as_mut().expect("switched above");
        column.push(interner.intern(key));
    }

    /// Re-keys the raw ids pushed so far as first-seen indices.
    fn switch_to_interner(&mut self, column: &mut [u32]) {
        let mut interner = IdInterner::default();
        for value in column.iter_mut() {
            *value = interner.intern(RawKey::Int(i64::from(*value)));
        }
        self.interner = Some(interner);
        self.seen = Vec::new();
    }

    /// Renumbers `column` to dense indices (SPEC: ascending raw id) and returns the map.
    pub(crate) fn finish(self, column: &mut [u32]) -> IdMap {
        if let Some(interner) = self.interner {
            let (map, remap) = dense_ids(interner.raw);
            for value in column.iter_mut() {
                *value = remap[*value as usize];
            }
            return map;
        }
        // All ids are integers, so ascending numeric order is SPEC's order: rank the set bits.
        let mut rank = vec![0u32; self.seen.len() * 64];
        let mut raw = Vec::new();
        for (word_index, &word) in self.seen.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let id = word_index * 64 + bits.trailing_zeros() as usize;
                rank[id] = raw.len() as u32;
                raw.push(id.to_string());
                bits &= bits - 1;
            }
        }
        for value in column.iter_mut() {
            *value = rank[*value as usize];
        }
        IdMap::from_sorted(raw)
    }
}

/// Ratings whose user and item columns are still being built by their [`IdColumn`]s.
pub(crate) struct RawRatings {
    ratings: Ratings,
    users: IdColumn,
    items: IdColumn,
    skipped: SkipCounts,
}

impl RawRatings {
    /// Renumbers users and items to SPEC's dense indices (ascending raw id over the whole file).
    pub fn into_dataset(self, source: String) -> Dataset {
        let RawRatings {
            mut ratings,
            users,
            items,
            skipped,
        } = self;
        let users = users.finish(&mut ratings.users);
        let items = items.finish(&mut ratings.items);
        Dataset {
            ratings,
            users,
            items,
            titles: None,
            genres: None,
            source,
            skipped: skipped.into_vec(),
        }
    }
}

/// The SPEC id map of `first_seen` and, per first-seen index, its dense index.
pub(crate) fn dense_ids(first_seen: Vec<String>) -> (IdMap, Vec<u32>) {
    let map = IdMap::from_raw_ids(first_seen.clone());
    let dense: HashMap<&str, u32, IdBuildHasher> = map
        .raw_ids()
        .iter()
        .enumerate()
        .map(|(index, raw)| (raw.as_str(), index as u32))
        .collect();
    let remap = first_seen.iter().map(|raw| dense[raw.as_str()]).collect();
    (map, remap)
}

/// The 1-based line a record starts on. The `csv` reader records a position before it skips blank
/// lines (and, with CRLF endings, before the previous line's `\n`), so its line number can be
/// early; the bytes between that position and the record's first byte say by how many lines.
/// Only called for messages, so re-reading a few bytes of the file is fine.
pub(crate) fn exact_line(path: &Path, record: &csv::ByteRecord) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Some(position) = record.position() else {
        return 0;
    };
    let mut ahead = Vec::new();
    let read = File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(position.byte()))?;
        file.take(1 << 16).read_to_end(&mut ahead)
    });
    if read.is_err() {
        return position.line();
    }
    let skipped_newlines = ahead
        .iter()
        .take_while(|&&byte| byte == b'\n' || byte == b'\r')
        .filter(|&&byte| byte == b'\n')
        .count();
    position.line() + skipped_newlines as u64
}

/// The line a record came from, for messages: its fields re-joined, cut to a readable length.
pub(crate) fn record_text(record: &csv::ByteRecord, delimiter: u8) -> String {
    let joined = record.iter().collect::<Vec<_>>().join(&delimiter);
    shorten(&String::from_utf8_lossy(&joined))
}

/// Cuts text to at most 120 characters for an error message.
pub(crate) fn shorten(text: &str) -> String {
    const LIMIT: usize = 120;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    }
}

/// A rating field as a number: whole and one-decimal stars take a fast path, anything else the
/// standard float parser.
fn parse_rating(field: &[u8]) -> Option<f32> {
    match *field {
        [d] if d.is_ascii_digit() => Some(f32::from(d - b'0')),
        [d, b'.', f] if d.is_ascii_digit() && f.is_ascii_digit() => {
            Some(f32::from(d - b'0') + f32::from(f - b'0') / 10.0)
        }
        _ => std::str::from_utf8(field)
            .ok()?
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|value| value.is_finite()),
    }
}

/// A Unix-seconds timestamp; integers only (a fractional or textual date is a bad line).
fn parse_timestamp(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0i64, |acc, &digit| acc * 10 + i64::from(digit - b'0'));
    Some(if negative { -value } else { value })
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn csv_error(path: &Path, error: csv::Error) -> DataError {
    let line = error.position().map_or(0, csv::Position::line);
    match error.into_kind() {
        csv::ErrorKind::Io(source) => io_error(path, source),
        other => DataError::BadLine {
            path: path.to_path_buf(),
            line,
            message: format!("cannot read this line as delimited text: {other:?}"),
        },
    }
}

/// Resolves the column rule against the first record (the header when there is one).
fn resolve_columns(
    plan: &ReadPlan,
    first: &csv::ByteRecord,
    header: bool,
) -> Result<Columns, DataError> {
    let names: Vec<String> = first
        .iter()
        .map(|field| String::from_utf8_lossy(field).trim().to_string())
        .collect();
    let find = |wanted: &[&str]| {
        names
            .iter()
            .position(|name| wanted.iter().any(|w| name.eq_ignore_ascii_case(w)))
    };
    let bad_columns =
        |message: String| DataError::Invalid(format!("{}: {message}", plan.path.display()));
    match &plan.columns {
        ColumnRule::Positions(columns) => Ok(*columns),
        ColumnRule::Auto => {
            if header {
                let user = find(&["user", "userid", "user_id", "uid"]);
                let item = find(&[
                    "item", "itemid", "item_id", "movie", "movieid", "movie_id", "iid",
                ]);
                let rating = find(&["rating", "ratings", "score", "stars"]);
                if let (Some(user), Some(item), Some(rating)) = (user, item, rating) {
                    let timestamp = find(&["timestamp", "time", "ts", "unixtime", "date"]);
                    return Ok(Columns {
                        user,
                        item,
                        rating,
                        timestamp,
                    });
                }
            }
            if first.len() < 3 {
                return Err(bad_columns(format!(
                    "the first line has {} field(s) with delimiter {:?}; expected at least user, item, rating \
                     (set --delimiter, or --columns user,item,rating[,timestamp])",
                    first.len(),
                    plan.delimiter as char
                )));
            }
            Ok(Columns {
                user: 0,
                item: 1,
                rating: 2,
                timestamp: (first.len() >= 4).then_some(3),
            })
        }
        ColumnRule::Named(spec) => {
            let mut positions = Vec::with_capacity(spec.len());
            for entry in spec {
                let position = match entry.parse::<usize>() {
                    Ok(position) => position,
                    Err(_) if header => find(&[entry.as_str()]).ok_or_else(|| {
                        bad_columns(format!(
                            "--columns names {entry:?}, but the header has {names:?}; give header names or 0-based positions"
                        ))
                    })?,
                    Err(_) => {
                        return Err(bad_columns(format!(
                            "--columns names {entry:?}, but the file has no header; give 0-based positions \
                             (e.g. --columns 0,1,2,3) or add --header"
                        )));
                    }
                };
                if position >= first.len() {
                    return Err(bad_columns(format!(
                        "--columns position {position} is past the {} fields of the first line",
                        first.len()
                    )));
                }
                positions.push(position);
            }
            Ok(Columns {
                user: positions[0],
                item: positions[1],
                rating: positions[2],
                timestamp: positions.get(3).copied(),
            })
        }
    }
}

/// The parsed fields of one row, before its ids are interned.
struct Row<'a> {
    user: RawKey<'a>,
    item: RawKey<'a>,
    rating: f32,
    timestamp: Option<i64>,
}

/// Checks one record; `Err` carries the reason and the message that says what was expected.
fn parse_row<'r>(
    plan: &ReadPlan,
    columns: &Columns,
    expected_fields: usize,
    record: &'r csv::ByteRecord,
) -> Result<Row<'r>, (BadReason, String)> {
    if record.len() != expected_fields
        || (plan.double_colon && [1, 3, 5].iter().any(|&i| !record[i].is_empty()))
    {
        return Err((
            BadReason::FieldCount,
            format!(
                "expected {}, found {} field(s)",
                plan.line_shape,
                record.len()
            ),
        ));
    }
    // Trim here rather than with the csv reader's `Trim`, which copies every record.
    let field = |column: usize| {
        let bytes = &record[column];
        if plan.trim { bytes.trim_ascii() } else { bytes }
    };
    let rating_field = field(columns.rating);
    let scale = plan.scale;
    let rating = parse_rating(rating_field).ok_or_else(|| {
        (
            BadReason::RatingNotNumber,
            format!(
                "rating {:?} is not a number; expected a number on {}",
                String::from_utf8_lossy(rating_field),
                scale.name
            ),
        )
    })?;
    if !(scale.min..=scale.max).contains(&rating) {
        return Err((
            BadReason::RatingOutOfScale,
            format!(
                "rating {rating} is outside {} ({} to {})",
                scale.name, scale.min, scale.max
            ),
        ));
    }
    let timestamp = match columns.timestamp {
        Some(column) => Some(parse_timestamp(field(column)).ok_or_else(|| {
            (
                BadReason::BadTimestamp,
                format!(
                    "timestamp {:?} is not an integer; expected Unix seconds",
                    String::from_utf8_lossy(field(column))
                ),
            )
        })?),
        None => None,
    };
    let id =
        |column: usize, what: &str| {
            raw_key(field(column)).map_err(|reason| {
            let message = match reason {
                BadReason::BadEncoding => format!(
                    "the {what} id {:?} has bytes that are not valid UTF-8; save the file as UTF-8",
                    String::from_utf8_lossy(field(column))
                ),
                _ => format!("the {what} id is empty; expected an id in field {}", column + 1),
            };
            (reason, message)
        })
        };
    Ok(Row {
        user: id(columns.user, "user")?,
        item: id(columns.item, "item")?,
        rating,
        timestamp,
    })
}

/// Reads every rating of `plan.path`.
pub(crate) fn read_ratings(plan: &ReadPlan) -> Result<RawRatings, DataError> {
    let path = plan.path.as_path();
    let file = File::open(path).map_err(|source| io_error(path, source))?;
    let file_len = file.metadata().map_or(0, |meta| meta.len());
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(plan.delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(plan.quoting)
        .buffer_capacity(1 << 20)
        .from_reader(file);
    let mut record = csv::ByteRecord::new();

    let read = |reader: &mut csv::Reader<File>, record: &mut csv::ByteRecord| {
        reader
            .read_byte_record(record)
            .map_err(|error| csv_error(path, error))
    };
    if !read(&mut reader, &mut record)? {
        return Err(DataError::Invalid(format!(
            "{}: the file is empty; expected ratings as {}",
            path.display(),
            plan.line_shape
        )));
    }
    let header = match plan.header {
        HeaderRule::Absent => false,
        HeaderRule::Present => true,
        HeaderRule::Detect => {
            let probe = match &plan.columns {
                ColumnRule::Positions(columns) => Some(columns.rating),
                ColumnRule::Named(spec) => spec.get(2).and_then(|s| s.parse::<usize>().ok()),
                ColumnRule::Auto => Some(2),
            };
            match probe {
                Some(column) => record
                    .get(column)
                    .is_none_or(|field| parse_rating(field).is_none()),
                // Column names only make sense against a header.
                None => true,
            }
        }
    };
    let columns = resolve_columns(plan, &record, header)?;
    let expected_fields = plan.expected_fields.unwrap_or(record.len());
    // A header may name a column past the fields a line of this layout has (a damaged header
    // such as `userId,movieId,rating,x,timestamp` where lines have four).
    let highest = [columns.user, columns.item, columns.rating]
        .into_iter()
        .chain(columns.timestamp)
        .max()
        .unwrap_or(0);
    if highest >= expected_fields {
        return Err(DataError::Invalid(format!(
            "{}: line 1 (the header) puts a needed column at field {} (from 1), but lines are {}; \
             fix the header or pass --columns",
            path.display(),
            highest + 1,
            plan.line_shape
        )));
    }
    let mut have_record = !header || read(&mut reader, &mut record)?;
    if !have_record {
        return Err(DataError::Invalid(format!(
            "{}: the file has a header but no ratings; expected ratings as {} after it",
            path.display(),
            plan.line_shape
        )));
    }

    let mut ratings = Ratings {
        timestamps: columns.timestamp.map(|_| Vec::new()),
        ..Ratings::default()
    };
    let mut users = IdColumn::default();
    let mut items = IdColumn::default();
    let mut skipped = SkipCounts::default();
    let mut reserved = false;
    let mut rows_read: u64 = 0;
    while have_record {
        rows_read += 1;
        // Reserve once from the bytes per line seen so far, so 25M rows do not double their
        // columns (and the peak memory) on the way.
        if !reserved && rows_read == 4096 {
            reserved = true;
            let bytes = record.position().map_or(0, csv::Position::byte).max(1);
            let estimate = (file_len as f64 / bytes as f64 * rows_read as f64 * 1.02) as usize;
            let extra = estimate.saturating_sub(ratings.len());
            ratings.users.reserve_exact(extra);
            ratings.items.reserve_exact(extra);
            ratings.ratings.reserve_exact(extra);
            if let Some(timestamps) = ratings.timestamps.as_mut() {
                timestamps.reserve_exact(extra);
            }
        }
        match parse_row(plan, &columns, expected_fields, &record) {
            Ok(row) => {
                users.push(row.user, &mut ratings.users);
                items.push(row.item, &mut ratings.items);
                ratings.ratings.push(row.rating);
                if let (Some(timestamps), Some(timestamp)) =
                    (ratings.timestamps.as_mut(), row.timestamp)
                {
                    timestamps.push(timestamp);
                }
            }
            Err((reason, _)) if plan.skip_bad_lines => skipped.add(reason),
            Err((_, message)) => {
                return Err(DataError::BadLine {
                    path: path.to_path_buf(),
                    line: exact_line(path, &record),
                    message: format!(
                        "{message}: {:?} (fix the line, or pass --skip-bad-lines to skip such lines)",
                        record_text(&record, plan.delimiter)
                    ),
                });
            }
        }
        have_record = read(&mut reader, &mut record)?;
    }
    if ratings.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: every line was skipped as malformed ({:?}); expected ratings as {}",
            path.display(),
            skipped.into_vec(),
            plan.line_shape
        )));
    }
    Ok(RawRatings {
        ratings,
        users,
        items,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_read_every_spelling_of_an_integer_as_its_value() {
        assert!(matches!(raw_key(b"42"), Ok(RawKey::Int(42))));
        assert!(matches!(raw_key(b"0"), Ok(RawKey::Int(0))));
        assert!(matches!(raw_key(b"042"), Ok(RawKey::Int(42))));
        assert!(matches!(raw_key(b"+42"), Ok(RawKey::Int(42))));
        assert!(matches!(raw_key(b"-7"), Ok(RawKey::Int(-7))));
        assert!(matches!(
            raw_key(b"0000000000000000000000042"),
            Ok(RawKey::Int(42))
        ));
        assert!(matches!(
            raw_key(b"9223372036854775807"),
            Ok(RawKey::Int(i64::MAX))
        ));
        // Beyond i64, or not an integer: text.
        assert!(matches!(
            raw_key(b"9223372036854775808"),
            Ok(RawKey::Text("9223372036854775808"))
        ));
        assert!(matches!(raw_key(b"4.0"), Ok(RawKey::Text("4.0"))));
        assert!(matches!(raw_key(b"+"), Ok(RawKey::Text("+"))));
        assert!(matches!(
            raw_key(b"tt0111161"),
            Ok(RawKey::Text("tt0111161"))
        ));
        assert_eq!(raw_key(b"").unwrap_err(), BadReason::BadId);
        assert_eq!(raw_key(b"\xe9t\xe9").unwrap_err(), BadReason::BadEncoding);
    }

    #[test]
    fn spellings_of_one_integer_become_one_id_in_every_column_mode() {
        // All small integers (the bitmap), then with a text id (the interner), then negative.
        for extra in [None, Some(RawKey::Text("x")), Some(RawKey::Int(-3))] {
            let mut ids = IdColumn::default();
            let mut column = Vec::new();
            for field in [&b"042"[..], b"+42", b"42", b"7"] {
                ids.push(raw_key(field).unwrap(), &mut column);
            }
            if let Some(key) = extra {
                ids.push(key, &mut column);
            }
            let map = ids.finish(&mut column);
            assert_eq!(column[0], column[1]);
            assert_eq!(column[1], column[2]);
            assert!(map.raw_ids().contains(&"42".to_string()), "{map:?}");
            assert!(!map.raw_ids().iter().any(|id| id == "042" || id == "+42"));
            assert_eq!(map.len(), 2 + usize::from(extra.is_some()));
        }
    }

    #[test]
    fn ratings_parse_fast_and_slow_paths_alike() {
        for text in ["3", "3.5", "0.5", "4.25", " 2 ", "10", "1e0"] {
            assert_eq!(
                parse_rating(text.as_bytes()),
                text.trim().parse::<f32>().ok(),
                "{text}"
            );
        }
        assert_eq!(parse_rating(b"abc"), None);
        assert_eq!(parse_rating(b"NaN"), None);
        assert_eq!(parse_rating(b"inf"), None);
    }

    #[test]
    fn timestamps_are_integers() {
        assert_eq!(parse_timestamp(b"881250949"), Some(881_250_949));
        assert_eq!(parse_timestamp(b"-5"), Some(-5));
        assert_eq!(parse_timestamp(b"1.5"), None);
        assert_eq!(parse_timestamp(b""), None);
    }

    #[test]
    fn interner_returns_first_seen_indices_across_key_kinds() {
        let mut ids = IdInterner::default();
        let keys = [
            RawKey::Int(7),
            RawKey::Int(1 << 40),
            RawKey::Text("x"),
            RawKey::Int(7),
            RawKey::Text("x"),
        ];
        let got: Vec<u32> = keys.iter().map(|&key| ids.intern(key)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 2]);
        assert_eq!(
            ids.raw,
            vec!["7".to_string(), (1i64 << 40).to_string(), "x".into()]
        );
    }

    #[test]
    fn id_column_ranks_small_integers_through_the_bitmap() {
        let mut ids = IdColumn::default();
        let mut column = Vec::new();
        for id in [5, 3, 5, 64, 3, 0] {
            ids.push(RawKey::Int(id), &mut column);
        }
        let map = ids.finish(&mut column);
        assert_eq!(map.raw_ids(), ["0", "3", "5", "64"]);
        assert_eq!(column, vec![2, 1, 2, 3, 1, 0]);
    }

    #[test]
    fn id_column_switches_to_interning_mid_file_and_keeps_spec_order() {
        let mut ids = IdColumn::default();
        let mut column = Vec::new();
        let keys = [
            RawKey::Int(10),
            RawKey::Int(2),
            RawKey::Int(10),
            RawKey::Text("b"),
            RawKey::Int(1 << 30),
            RawKey::Int(2),
        ];
        for key in keys {
            ids.push(key, &mut column);
        }
        let map = ids.finish(&mut column);
        // One id is text, so all sort as text (SPEC: numeric order only when every id is an integer).
        assert_eq!(map.raw_ids(), ["10", "1073741824", "2", "b"]);
        assert_eq!(column, vec![0, 2, 0, 3, 1, 2]);

        let mut large = IdColumn::default();
        let mut column = Vec::new();
        for id in [1 << 40, 7] {
            large.push(RawKey::Int(id), &mut column);
        }
        assert_eq!(large.finish(&mut column).raw_ids(), ["7", "1099511627776"]);
        assert_eq!(column, vec![1, 0]);
    }

    #[test]
    fn dense_ids_follow_numeric_order() {
        let (map, remap) = dense_ids(vec!["10".into(), "9".into(), "100".into()]);
        assert_eq!(map.raw_ids(), ["9", "10", "100"]);
        assert_eq!(remap, vec![1, 0, 2]);
    }
}
