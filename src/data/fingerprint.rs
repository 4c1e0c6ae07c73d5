//! What identifies the data and split a run trains on, cheaply, so that a checkpoint refuses to
//! resume on anything else.

use serde::{Deserialize, Serialize};

use super::Ratings;

/// The shapes, the split's seed and a hash of the triples in split order (a different split or a
/// changed rating changes the hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// `U`.
    pub users: usize,
    /// `I`.
    pub items: usize,
    /// `N_train`.
    pub train_ratings: usize,
    /// `N_valid`.
    pub valid_ratings: usize,
    /// The split's seed.
    pub seed: u64,
    /// FNV-1a over `(user, item, rating bits)` of the training then the validation triples,
    /// written as 16 hex digits (a JSON number would lose bits past 2^53 in many readers).
    #[serde(with = "hex_u64")]
    pub hash: u64,
}

impl DataFingerprint {
    /// The fingerprint of a split of data with `users` users and `items` items.
    pub fn new(
        users: usize,
        items: usize,
        train: &Ratings,
        valid: &Ratings,
        seed: u64,
    ) -> DataFingerprint {
        // FNV-1a, 64-bit: simple, stable across versions and platforms, fast enough for ML-25M.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |word: u32| {
            for byte in word.to_le_bytes() {
                hash ^= byte as u64;
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for set in [train, valid] {
            for n in 0..set.len() {
                feed(set.users[n]);
                feed(set.items[n]);
                feed(set.ratings[n].to_bits());
            }
        }
        DataFingerprint {
            users,
            items,
            train_ratings: train.len(),
            valid_ratings: valid.len(),
            seed,
            hash,
        }
    }
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_travels_as_hex_and_comes_back_exactly() {
        let fingerprint = DataFingerprint {
            users: 3,
            items: 4,
            train_ratings: 10,
            valid_ratings: 2,
            seed: 42,
            hash: u64::MAX - 1,
        };
        let text = serde_json::to_string(&fingerprint).unwrap();
        assert!(text.contains(r#""hash":"fffffffffffffffe""#), "{text}");
        assert_eq!(
            serde_json::from_str::<DataFingerprint>(&text).unwrap(),
            fingerprint
        );
    }
}
