//! Invented movie titles and genres for the synthetic presets.
//!
//! Titles look like MovieLens ones (`Silent River, The (1994)`), are unique within a data set,
//! and on purpose include accented letters (to exercise latin-1 and UTF-8 decoding) and commas (to
//! exercise CSV quoting). Everything is drawn from the caller's generator, so the same seed gives
//! the same titles.

use std::collections::HashSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[rustfmt::skip]
const ADJECTIVES: &[&str] = &[
    "Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Wild", "Lost", "Dark", "Bright",
    "Frozen", "Secret", "Little", "Eternal", "Savage", "Gentle", "Midnight", "Burning", "Distant",
    "Hollow", "Restless", "Electric", "Quiet", "Iron", "Velvet", "Paper", "Glass", "Lonely", "Blue",
    "Scarlet", "Forgotten", "Endless", "Strange", "Sweet", "Bitter", "Faithful", "Reckless",
    "Crooked", "Shining", "Sudden", "Northern", "Southern", "Painted", "Fallen", "Sleeping",
    "Dancing", "Wandering", "Stolen", "Final", "First", "Perfect", "Dangerous", "Invisible", "Long",
    "Short", "Tender", "Cruel", "Happy", "Hungry", "Silver",
];

#[rustfmt::skip]
const NOUNS: &[&str] = &[
    "River", "Garden", "Summer", "Winter", "Road", "City", "Heart", "Mirror", "Stranger", "Horizon",
    "Kingdom", "Night", "Promise", "Shadow", "Island", "Harbor", "Witness", "Letter", "Train",
    "Storm", "Bridge", "Dream", "Journey", "Empire", "Season", "Game", "Ghost", "Angel", "Hunter",
    "Circus", "Orchard", "Frontier", "Lighthouse", "Detective", "Symphony", "Valley", "Desert",
    "Voyage", "Machine", "Crown", "Rain", "Fire", "Moon", "Sister", "Brother", "Wedding", "Funeral",
    "Hotel", "Station", "Border", "Castle", "Forest", "Ocean", "Planet", "Robot", "Thief",
    "Soldier", "Dancer", "Painter", "Teacher", "Spy", "Queen", "King", "Affair", "Secret",
];

/// Words with letters outside ASCII but inside latin-1 (ISO-8859-1), so every preset can use them.
#[rustfmt::skip]
const ACCENTED: &[&str] = &[
    "Café", "Señor", "Noël", "Amélie", "Müller", "Björn", "Zoë", "Renée", "Crème Brûlée", "Fiancée",
    "Déjà Vu", "Mañana", "São Paulo", "Façade", "Naïve", "Über", "Piñata", "Château", "Cliché",
    "Soirée", "Résumé", "Götterdämmerung", "Ångström", "Cañón", "Île", "Smørrebrød",
];

/// Words that latin-1 cannot encode: only for the UTF-8 layouts (ML-25M's `movies.csv`).
#[rustfmt::skip]
const BEYOND_LATIN1: &[&str] = &[
    "Dvořák", "Łódź", "Ōsaka", "Čapek", "Kyōto", "Şeker", "Ħamrun",
];

#[rustfmt::skip]
const NAMES: &[&str] = &[
    "Anna", "Max", "José", "François", "Chloé", "Jürgen", "Inés", "Hélène", "Søren", "Ramón",
    "Otto", "Lucy", "Harry", "Maggie", "Oscar", "Ruth", "Walter", "Nina", "Felix", "Iris",
];

/// One preset's genre vocabulary, in the order the layout lists them.
#[rustfmt::skip]
pub(super) const GENRES_100K: &[&str] = &[
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
];
#[rustfmt::skip]
pub(super) const GENRES_1M: &[&str] = &[
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
];
#[rustfmt::skip]
pub(super) const GENRES_25M: &[&str] = &[
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
];

/// Draws `count` distinct titles `Base (Year)` with years in `years` (inclusive).
///
/// `utf8_only` allows letters outside latin-1. About one title in twelve has an accented word and
/// about one in six a comma.
pub(super) fn invent_titles(
    rng: &mut ChaCha8Rng,
    count: usize,
    years: (u32, u32),
    utf8_only: bool,
) -> Vec<String> {
    let mut seen = HashSet::with_capacity(count);
    let mut titles = Vec::with_capacity(count);
    while titles.len() < count {
        let year = rng.random_range(years.0..=years.1);
        let mut base = invent_base(rng, utf8_only);
        // A clash is rare; re-drawing a few times and then numbering a sequel keeps titles
        // unique without a bias a test could notice.
        let mut sequel = 1;
        while seen.contains(&(base.clone(), year)) {
            sequel += 1;
            base = format!(
                "{} {sequel}",
                base.trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ')
            );
        }
        seen.insert((base.clone(), year));
        titles.push(format!("{base} ({year})"));
    }
    titles
}

fn pick(rng: &mut ChaCha8Rng, list: &[&'static str]) -> &'static str {
    list[rng.random_range(0..list.len())]
}

/// An accented word: latin-1 only, unless the layout is UTF-8 (then one time in three beyond).
fn accented(rng: &mut ChaCha8Rng, utf8_only: bool) -> &'static str {
    if utf8_only && rng.random_range(0..3) == 0 {
        pick(rng, BEYOND_LATIN1)
    } else {
        pick(rng, ACCENTED)
    }
}

fn invent_base(rng: &mut ChaCha8Rng, utf8_only: bool) -> String {
    let roll = rng.random_range(0..100);
    let r = rng;
    match roll {
        // "Silent River, The": MovieLens moves a leading article behind a comma.
        0..=9 => format!("{} {}, The", pick(r, ADJECTIVES), pick(r, NOUNS)),
        10..=15 => {
            let first = (pick(r, ADJECTIVES), pick(r, NOUNS));
            format!(
                "{} {}, {} {}",
                first.0,
                first.1,
                pick(r, ADJECTIVES),
                pick(r, NOUNS)
            )
        }
        16..=27 => format!(
            "{} of the {} {}",
            pick(r, NOUNS),
            pick(r, ADJECTIVES),
            pick(r, NOUNS)
        ),
        28..=35 => format!("{}'s {}", pick(r, NAMES), pick(r, NOUNS)),
        36..=45 => format!(
            "{} {} {}",
            pick(r, ADJECTIVES),
            pick(r, NOUNS),
            pick(r, &["II", "III", "Returns", "Forever", "Rising"])
        ),
        46..=49 => {
            let word = accented(r, utf8_only);
            format!("{} {word}", pick(r, ADJECTIVES))
        }
        50..=53 => {
            let word = accented(r, utf8_only);
            format!("{word} in the {}", pick(r, NOUNS))
        }
        _ => format!(
            "{} {} {}",
            pick(r, ADJECTIVES),
            pick(r, NOUNS),
            pick(r, NOUNS)
        ),
    }
}

/// One to three genres from `vocabulary`, `|`-joined in vocabulary order (Drama and Comedy, as in
/// MovieLens, more often than the rest). `vocabulary[0]` is used alone and rarely when it is a
/// placeholder (`unknown` in ML-100K).
pub(super) fn invent_genres(rng: &mut ChaCha8Rng, vocabulary: &[&str]) -> String {
    if vocabulary[0] == "unknown" && rng.random_range(0..200) == 0 {
        return vocabulary[0].to_string();
    }
    let first_real = usize::from(vocabulary[0] == "unknown");
    let count = [1, 1, 2, 2, 2, 3][rng.random_range(0..6)];
    let mut chosen = vec![false; vocabulary.len()];
    for _ in 0..count {
        let pick = if rng.random_range(0..3) == 0 {
            let popular = ["Drama", "Comedy"][rng.random_range(0..2)];
            vocabulary
                .iter()
                .position(|&g| g == popular)
                .unwrap_or(first_real)
        } else {
            rng.random_range(first_real..vocabulary.len())
        };
        chosen[pick] = true;
    }
    let names: Vec<&str> = (0..vocabulary.len())
        .filter(|&g| chosen[g])
        .map(|g| vocabulary[g])
        .collect();
    names.join("|")
}
