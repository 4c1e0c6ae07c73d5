//! Finding a user or an item of a model from what a person types: a raw id, or for items a part of
//! the title in any case ("silence of the lambs" finds "Silence of the Lambs, The (1991)").

use crate::files::ModelFile;

use super::{InspectError, item_title};

/// How many candidates an ambiguous lookup lists.
const MAX_CANDIDATES: usize = 20;

/// One item that a query matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCandidate {
    /// The model's item index.
    pub index: u32,
    /// The raw item id.
    pub id: String,
    pub title: String,
}

/// The model's index of raw user id `raw`.
pub fn find_user(model: &ModelFile, raw: &str) -> Result<u32, InspectError> {
    model
        .users
        .index_of(raw.trim())
        .ok_or_else(|| InspectError::UnknownUser {
            id: raw.to_string(),
            users: model.users.len(),
            first: model.users.raw_ids().first().cloned().unwrap_or_default(),
            last: model.users.raw_ids().last().cloned().unwrap_or_default(),
        })
}

/// The model's index of the item that `query` names.
///
/// In order: a raw item id; else a title equal to the query when case, the year and a leading or
/// trailing article are ignored (`the silence of the lambs` equals `Silence of the Lambs, The
/// (1991)`); else a title that contains the query, ignoring case and the title's `(year)` (so
/// `50` finds no film of 1950). When several items match at the first step that finds any, the
/// error lists them rather than guessing.
pub fn find_item(model: &ModelFile, query: &str) -> Result<u32, InspectError> {
    find(model, query, true)
}

/// [`find_item`] without its last step: a raw item id or a whole title, for files of ratings,
/// where a part of a title is more likely a mistake than a search.
pub fn find_item_exactly(model: &ModelFile, query: &str) -> Result<u32, InspectError> {
    find(model, query, false)
}

fn find(model: &ModelFile, query: &str, by_part: bool) -> Result<u32, InspectError> {
    let query = query.trim();
    if let Some(index) = model.items.index_of(query) {
        return Ok(index);
    }
    let Some(titles) = &model.titles else {
        return Err(InspectError::UnknownItem {
            query: query.to_string(),
            titles: " (and the model has no titles to search)".into(),
        });
    };
    let lower = query.to_lowercase();
    let canonical_query = canonical_title(query);
    let exact: Vec<u32> = (0..titles.len() as u32)
        .filter(|&i| {
            let title = &titles[i as usize];
            title.to_lowercase() == lower || canonical_title(title) == canonical_query
        })
        .collect();
    let matches = if exact.is_empty() && by_part {
        (0..titles.len() as u32)
            .filter(|&i| {
                let title = &titles[i as usize];
                without_year(title).to_lowercase().contains(&lower)
                    || (!canonical_query.is_empty()
                        && canonical_title(title).contains(&canonical_query))
            })
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(InspectError::UnknownItem {
            query: query.to_string(),
            titles: match by_part {
                true => " and no title contains it".into(),
                false => " nor a whole title".into(),
            },
        }),
        many => Err(InspectError::AmbiguousItem {
            query: query.to_string(),
            count: many.len(),
            candidates: many
                .iter()
                .take(MAX_CANDIDATES)
                .map(|&index| ItemCandidate {
                    index,
                    id: model.items.raw(index).to_string(),
                    title: item_title(model, index).to_string(),
                })
                .collect(),
        }),
    }
}

/// `title` without a trailing `(year)`: `Sunset Blvd. (1950)` gives `Sunset Blvd.`.
fn without_year(title: &str) -> &str {
    let trimmed = title.trim_end();
    if let Some(open) = trimmed.rfind('(')
        && trimmed.ends_with(')')
    {
        let inside = &trimmed[open + 1..trimmed.len() - 1];
        if !inside.is_empty() && inside.chars().all(|c| c.is_ascii_digit()) {
            return trimmed[..open].trim_end();
        }
    }
    trimmed
}

/// A title in lower case without its trailing `(year)` and without a leading or trailing article
/// (MovieLens writes "Silence of the Lambs, The (1991)"), with single spaces.
pub fn canonical_title(title: &str) -> String {
    let mut text = title.trim().to_lowercase();
    if let Some(open) = text.rfind('(') {
        let inside = text[open + 1..].trim_end_matches(')');
        if text.ends_with(')') && !inside.is_empty() && inside.chars().all(|c| c.is_ascii_digit()) {
            text.truncate(open);
        }
    }
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for article in [
        "the", "a", "an", "les", "la", "le", "il", "el", "das", "die", "der",
    ] {
        if let Some(rest) = text.strip_suffix(&format!(", {article}")) {
            text = rest.to_string();
            break;
        }
        if let Some(rest) = text.strip_prefix(&format!("{article} ")) {
            text = rest.to_string();
            break;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_title_drops_year_case_and_article() {
        assert_eq!(
            canonical_title("Silence of the Lambs, The (1991)"),
            "silence of the lambs"
        );
        assert_eq!(
            canonical_title("The  Silence of the Lambs"),
            "silence of the lambs"
        );
        assert_eq!(canonical_title("Star Wars (1977)"), "star wars");
        // A parenthesis that is not a year stays.
        assert_eq!(canonical_title("Seven (Se7en) (1995)"), "seven (se7en)");
        assert_eq!(canonical_title("Theodore Rex (1995)"), "theodore rex");
    }

    #[test]
    fn without_year_strips_only_a_trailing_year() {
        assert_eq!(without_year("Sunset Blvd. (1950)"), "Sunset Blvd.");
        assert_eq!(without_year("Seven (Se7en) (1995)"), "Seven (Se7en)");
        assert_eq!(without_year("Seven (Se7en)"), "Seven (Se7en)");
        assert_eq!(without_year("2001 (ok)"), "2001 (ok)");
    }
}
