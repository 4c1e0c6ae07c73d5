//! What `collabgpu stats` reports about a data set: its size, density, rating histogram, how active
//! users and items are, its time range and what was skipped.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use super::Dataset;
use super::delimited::IdBuildHasher;

/// Ratings per user or per item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Activity {
    pub min: u64,
    /// The middle count; the mean of the two middle counts when there is an even number.
    pub median: f64,
    pub max: u64,
}

/// The first and last timestamp, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub first: i64,
    pub last: i64,
}

/// A summary of a [`Dataset`]; `Serialize` gives `stats --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    pub source: String,
    /// `U`.
    pub users: usize,
    /// `I`.
    pub items: usize,
    /// `N`.
    pub ratings: usize,
    /// `N / (U * I)`: the fraction of the user-item matrix that is rated.
    pub density: f64,
    pub mean_rating: f64,
    /// Count per rating value, keyed by the value as text ("1", "3.5").
    pub rating_histogram: BTreeMap<String, u64>,
    pub ratings_per_user: Activity,
    pub ratings_per_item: Activity,
    /// `None` when the source has no timestamps.
    pub time_range: Option<TimeRange>,
    /// Lines skipped under `--skip-bad-lines`, by reason.
    pub skipped: BTreeMap<String, u64>,
    pub skipped_total: u64,
}

impl DatasetStats {
    /// Summarises `dataset` in one pass over its ratings (plus a sort of the per-row counts).
    pub fn of(dataset: &Dataset) -> DatasetStats {
        let ratings = &dataset.ratings;
        let (users, items) = (dataset.users.len(), dataset.items.len());
        let mut per_user = vec![0u64; users];
        let mut per_item = vec![0u64; items];
        let mut by_value: HashMap<u32, u64, IdBuildHasher> = HashMap::default();
        let mut sum = 0.0f64;
        for n in 0..ratings.len() {
            per_user[ratings.users[n] as usize] += 1;
            per_item[ratings.items[n] as usize] += 1;
            let rating = ratings.ratings[n];
            *by_value.entry(rating.to_bits()).or_default() += 1;
            sum += f64::from(rating);
        }
        let rating_histogram = by_value
            .into_iter()
            .map(|(bits, count)| (f32::from_bits(bits).to_string(), count))
            .collect();
        let time_range = ratings.timestamps.as_ref().and_then(|timestamps| {
            Some(TimeRange {
                first: *timestamps.iter().min()?,
                last: *timestamps.iter().max()?,
            })
        });
        let skipped: BTreeMap<String, u64> = dataset.skipped.iter().cloned().collect();
        let cells = users as f64 * items as f64;
        DatasetStats {
            source: dataset.source.clone(),
            users,
            items,
            ratings: ratings.len(),
            density: if cells > 0.0 {
                ratings.len() as f64 / cells
            } else {
                0.0
            },
            mean_rating: if ratings.is_empty() {
                0.0
            } else {
                sum / ratings.len() as f64
            },
            rating_histogram,
            ratings_per_user: activity(per_user),
            ratings_per_item: activity(per_item),
            time_range,
            skipped_total: skipped.values().sum(),
            skipped,
        }
    }
}

fn activity(mut counts: Vec<u64>) -> Activity {
    if counts.is_empty() {
        return Activity {
            min: 0,
            median: 0.0,
            max: 0,
        };
    }
    counts.sort_unstable();
    let middle = counts.len() / 2;
    let median = if counts.len() % 2 == 1 {
        counts[middle] as f64
    } else {
        (counts[middle - 1] + counts[middle]) as f64 / 2.0
    };
    Activity {
        min: counts[0],
        median,
        max: counts[counts.len() - 1],
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp, by the proleptic Gregorian calendar.
pub fn utc_date(seconds: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "source            {}", self.source)?;
        writeln!(f, "users (U)         {}", self.users)?;
        writeln!(f, "items (I)         {}", self.items)?;
        writeln!(f, "ratings (N)       {}", self.ratings)?;
        writeln!(f, "density           {:.4}%", self.density * 100.0)?;
        writeln!(f, "mean rating       {:.4}", self.mean_rating)?;
        let mut histogram: Vec<(f64, &String, u64)> = self
            .rating_histogram
            .iter()
            .map(|(value, &count)| (value.parse().unwrap_or(f64::NAN), value, count))
            .collect();
        histogram.sort_by(|a, b| a.0.total_cmp(&b.0));
        writeln!(f, "rating histogram")?;
        for (_, value, count) in histogram {
            let share = count as f64 / self.ratings.max(1) as f64 * 100.0;
            writeln!(f, "  {value:>5}  {count:>10}  {share:5.1}%")?;
        }
        for (name, activity) in [
            ("user", &self.ratings_per_user),
            ("item", &self.ratings_per_item),
        ] {
            writeln!(
                f,
                "ratings per {name}  min {}, median {}, max {}",
                activity.min, activity.median, activity.max
            )?;
        }
        match self.time_range {
            Some(range) => writeln!(
                f,
                "time range        {} to {} (UTC)",
                utc_date(range.first),
                utc_date(range.last)
            )?,
            None => writeln!(f, "time range        none (no timestamps)")?,
        }
        write!(f, "skipped lines     {}", self.skipped_total)?;
        for (reason, count) in &self.skipped {
            write!(f, "\n  {reason}: {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{IdMap, Ratings};

    fn ids(n: usize) -> IdMap {
        IdMap::from_raw_ids((1..=n).map(|id| id.to_string()).collect())
    }

    #[test]
    fn stats_of_a_hand_made_data_set() {
        let dataset = Dataset {
            ratings: Ratings {
                users: vec![0, 0, 0, 1, 2, 3],
                items: vec![0, 1, 2, 0, 0, 1],
                ratings: vec![1.0, 3.5, 3.5, 5.0, 1.0, 1.0],
                timestamps: Some(vec![86_400, 0, 5, 7, 951_782_400, 3]),
            },
            users: ids(4),
            items: ids(3),
            skipped: vec![("wrong number of fields".into(), 2)],
            ..Dataset::default()
        };
        let stats = DatasetStats::of(&dataset);
        assert_eq!((stats.users, stats.items, stats.ratings), (4, 3, 6));
        assert_eq!(stats.density, 0.5);
        assert_eq!(stats.mean_rating, 2.5);
        let histogram: Vec<(&str, u64)> = stats
            .rating_histogram
            .iter()
            .map(|(k, &v)| (k.as_str(), v))
            .collect();
        assert_eq!(histogram, vec![("1", 3), ("3.5", 2), ("5", 1)]);
        // Per user: 3, 1, 1, 1; per item: 3, 2, 1.
        assert_eq!(
            stats.ratings_per_user,
            Activity {
                min: 1,
                median: 1.0,
                max: 3
            }
        );
        assert_eq!(
            stats.ratings_per_item,
            Activity {
                min: 1,
                median: 2.0,
                max: 3
            }
        );
        assert_eq!(
            stats.time_range,
            Some(TimeRange {
                first: 0,
                last: 951_782_400
            })
        );
        assert_eq!(stats.skipped_total, 2);
        let text = stats.to_string();
        assert!(text.contains("1970-01-01 to 2000-02-29"), "{text}");
    }

    #[test]
    fn even_medians_average_the_middle_pair() {
        assert_eq!(activity(vec![4, 1, 2, 9]).median, 3.0);
        assert_eq!(activity(vec![]).max, 0);
    }

    #[test]
    fn utc_dates_cross_leap_years_and_the_epoch() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(874_724_710), "1997-09-20");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(-1), "1969-12-31");
    }
}
