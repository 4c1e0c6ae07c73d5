//! The flags that say where ratings come from and how to read them, shared by every command that
//! reads data.

use anyhow::{Context, bail};
use collabgpu::data::{Format, ItemKey, LoadOptions};

/// Where the ratings come from.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The ratings: a MovieLens directory (u.data, ratings.dat or ratings.csv inside), a ratings
    /// file, a data-set name from the download cache (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m,
    /// ml-latest-small), or synthetic:ml-100k|ml-1m|ml-25m[:SEED].
    #[arg(long, value_name = "PATH|NAME", default_value = "ml-100k")]
    pub data: String,

    /// How to read a file: `auto` detects a MovieLens layout from the file names; `csv` reads any
    /// delimited file described by --delimiter, --header and --columns.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// Field delimiter of a --format csv file: one character, or `tab` (default `,`).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,

    /// The --format csv file starts with a header line (default: detected).
    #[arg(long, overrides_with = "no_header")]
    pub header: bool,

    /// The --format csv file has no header line.
    #[arg(long, overrides_with = "header")]
    pub no_header: bool,

    /// Which fields of a --format csv file hold user, item, rating and optionally timestamp: header
    /// names or 0-based positions, e.g. `userId,movieId,rating,timestamp` or `0,1,2`.
    #[arg(long, value_name = "USER,ITEM,RATING[,TIMESTAMP]")]
    pub columns: Option<String>,

    /// What identifies an item: its id, or its title (ids that share a title become one item, as
    /// in the fastai book's ML-100K).
    #[arg(long, value_enum, default_value_t = ItemKeyArg::Id)]
    pub item_key: ItemKeyArg,

    /// Skip malformed lines and report how many, by reason, instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_lines: bool,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Auto,
    Csv,
}

/// `--item-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ItemKeyArg {
    Id,
    Title,
}

impl DataArgs {
    /// The validated [`LoadOptions`] these flags describe; `collabgpu::data::load(&args.data, &options)`
    /// reads the data.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let delimiter = self
            .delimiter
            .as_deref()
            .map(parse_delimiter)
            .transpose()
            .context("--delimiter")?;
        let columns = self
            .columns
            .as_deref()
            .map(parse_columns)
            .transpose()
            .context("--columns")?;
        let header = match (self.header, self.no_header) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        let format = match self.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Csv => Format::Csv,
        };
        if format == Format::Auto && (delimiter.is_some() || columns.is_some() || header.is_some())
        {
            bail!(
                "--delimiter, --header/--no-header and --columns describe a generic delimited file; add --format csv"
            );
        }
        Ok(LoadOptions {
            format,
            delimiter,
            header,
            columns,
            item_key: match self.item_key {
                ItemKeyArg::Id => ItemKey::Id,
                ItemKeyArg::Title => ItemKey::Title,
            },
            skip_bad_lines: self.skip_bad_lines,
        })
    }
}

/// One ASCII character, `tab`, or `\t`.
fn parse_delimiter(text: &str) -> anyhow::Result<u8> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && text != "\n" && text != "\"" => {
            Ok(text.as_bytes()[0])
        }
        _ => bail!(
            "{text:?} is not a single-character delimiter; give one ASCII character other than a quote or newline (e.g. `,`, `;`, `|`) or `tab`"
        ),
    }
}

/// `user,item,rating[,timestamp]`: three or four non-empty entries.
fn parse_columns(text: &str) -> anyhow::Result<Vec<String>> {
    let columns: Vec<String> = text
        .split(',')
        .map(|column| column.trim().to_string())
        .collect();
    if !(3..=4).contains(&columns.len()) || columns.iter().any(String::is_empty) {
        bail!(
            "{text:?} should list the user, item, rating and optionally timestamp columns, as header names or 0-based positions, e.g. `0,1,2,3`"
        );
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        data: DataArgs,
    }

    fn options(args: &[&str]) -> anyhow::Result<LoadOptions> {
        let all = std::iter::once("harness").chain(args.iter().copied());
        Harness::try_parse_from(all)?.data.load_options()
    }

    #[test]
    fn defaults_read_ml_100k_by_id() {
        let parsed = Harness::try_parse_from(["harness"]).unwrap();
        assert_eq!(parsed.data.data, "ml-100k");
        assert_eq!(parsed.data.load_options().unwrap(), LoadOptions::default());
    }

    #[test]
    fn csv_flags_become_load_options() {
        let got = options(&[
            "--data",
            "r.tsv",
            "--format",
            "csv",
            "--delimiter",
            "tab",
            "--no-header",
            "--columns",
            "0, 2,1",
            "--item-key",
            "title",
            "--skip-bad-lines",
        ])
        .unwrap();
        assert_eq!(got.format, Format::Csv);
        assert_eq!(got.delimiter, Some(b'\t'));
        assert_eq!(got.header, Some(false));
        assert_eq!(got.columns, Some(vec!["0".into(), "2".into(), "1".into()]));
        assert_eq!(got.item_key, ItemKey::Title);
        assert!(got.skip_bad_lines);
    }

    #[test]
    fn the_last_of_header_and_no_header_wins() {
        assert_eq!(
            options(&["--format", "csv", "--no-header", "--header"])
                .unwrap()
                .header,
            Some(true)
        );
        assert_eq!(
            options(&["--format", "csv", "--header", "--no-header"])
                .unwrap()
                .header,
            Some(false)
        );
    }

    #[test]
    fn bad_flags_are_refused_with_what_to_do() {
        let err = options(&["--format", "csv", "--delimiter", "::"]).unwrap_err();
        assert!(format!("{err:#}").contains("single-character"), "{err:#}");
        let err = options(&["--format", "csv", "--columns", "user,item"]).unwrap_err();
        assert!(format!("{err:#}").contains("user, item, rating"), "{err:#}");
        let err = options(&["--delimiter", ";"]).unwrap_err();
        assert!(format!("{err:#}").contains("add --format csv"), "{err:#}");
        assert!(options(&["--format", "tsv"]).is_err());
    }
}
