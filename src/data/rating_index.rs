//! Who rated what: per-user and per-item rating counts and sums, and each user's rated items,
//! of one set of ratings (a model's training ratings). A model file carries it, so that the
//! inspection commands can leave out what a user already rated and skip rarely rated items
//! without reading the data again.

use super::Ratings;

/// Counts, sums and each user's distinct rated items (ascending) of a set of ratings, by dense
/// index. A user who rated an item twice counts two ratings and lists the item once.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingIndex {
    /// Ratings per user index.
    pub user_counts: Vec<u32>,
    /// Ratings per item index.
    pub item_counts: Vec<u32>,
    /// Sum of the rating values per user index.
    pub user_sums: Vec<f64>,
    /// Sum of the rating values per item index.
    pub item_sums: Vec<f64>,
    /// `offsets[u]..offsets[u + 1]` is user `u`'s range of `items`; `U + 1` entries.
    pub offsets: Vec<u64>,
    /// Every user's distinct rated items, ascending within each user, users in index order.
    pub items: Vec<u32>,
}

impl RatingIndex {
    /// The index of `ratings` for `users` users and `items` items (every index below those).
    pub fn of(ratings: &Ratings, users: usize, items: usize) -> RatingIndex {
        let mut user_counts = vec![0u32; users];
        let mut item_counts = vec![0u32; items];
        let mut user_sums = vec![0.0f64; users];
        let mut item_sums = vec![0.0f64; items];
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(ratings.len());
        for n in 0..ratings.len() {
            let (u, i, r) = (
                ratings.users[n],
                ratings.items[n],
                ratings.ratings[n] as f64,
            );
            user_counts[u as usize] += 1;
            item_counts[i as usize] += 1;
            user_sums[u as usize] += r;
            item_sums[i as usize] += r;
            pairs.push((u, i));
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut offsets = vec![0u64; users + 1];
        for &(u, _) in &pairs {
            offsets[u as usize + 1] += 1;
        }
        for u in 0..users {
            offsets[u + 1] += offsets[u];
        }
        RatingIndex {
            user_counts,
            item_counts,
            user_sums,
            item_sums,
            offsets,
            items: pairs.into_iter().map(|(_, i)| i).collect(),
        }
    }

    /// The number of users.
    pub fn users(&self) -> usize {
        self.user_counts.len()
    }

    /// The number of items.
    pub fn items_len(&self) -> usize {
        self.item_counts.len()
    }

    /// User `user`'s distinct rated items, ascending.
    pub fn rated(&self, user: u32) -> &[u32] {
        let u = user as usize;
        &self.items[self.offsets[u] as usize..self.offsets[u + 1] as usize]
    }

    /// The index with `other`'s users appended after this one's (same items), e.g. users folded
    /// in after training.
    pub fn with_users_appended(&self, other: &RatingIndex) -> RatingIndex {
        assert_eq!(self.items_len(), other.items_len(), "the same items");
        let base = *self.offsets.last().expect("U + 1 offsets");
        let mut offsets = self.offsets.clone();
        offsets.extend(other.offsets[1..].iter().map(|o| base + o));
        let add = |a: &[u32], b: &[u32]| a.iter().zip(b).map(|(x, y)| x + y).collect();
        let add_f = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x + y).collect();
        RatingIndex {
            user_counts: [self.user_counts.as_slice(), &other.user_counts].concat(),
            item_counts: add(&self.item_counts, &other.item_counts),
            user_sums: [self.user_sums.as_slice(), &other.user_sums].concat(),
            item_sums: add_f(&self.item_sums, &other.item_sums),
            offsets,
            items: [self.items.as_slice(), &other.items].concat(),
        }
    }

    /// The index with its users reordered: user `new` of the result is user `order[new]` of this
    /// one.
    pub fn with_users_ordered(&self, order: &[u32]) -> RatingIndex {
        let mut offsets = Vec::with_capacity(order.len() + 1);
        offsets.push(0u64);
        let mut items = Vec::with_capacity(self.items.len());
        for &old in order {
            items.extend_from_slice(self.rated(old));
            offsets.push(items.len() as u64);
        }
        RatingIndex {
            user_counts: order
                .iter()
                .map(|&u| self.user_counts[u as usize])
                .collect(),
            item_counts: self.item_counts.clone(),
            user_sums: order.iter().map(|&u| self.user_sums[u as usize]).collect(),
            item_sums: self.item_sums.clone(),
            offsets,
            items,
        }
    }

    /// What is inconsistent, if anything: lengths, offsets that do not rise to `items.len()`,
    /// items out of range or not strictly ascending within a user, a user listing more distinct
    /// items than ratings, negative or non-finite sums.
    pub fn problem(&self) -> Option<String> {
        let (users, items) = (self.users(), self.items_len());
        if self.user_sums.len() != users || self.item_sums.len() != items {
            return Some(format!(
                "{} user sums and {} item sums for {users} users and {items} items",
                self.user_sums.len(),
                self.item_sums.len()
            ));
        }
        if self.offsets.len() != users + 1
            || self.offsets[0] != 0
            || *self.offsets.last().unwrap_or(&0) != self.items.len() as u64
        {
            return Some(format!(
                "{} offsets for {users} users and {} rated items",
                self.offsets.len(),
                self.items.len()
            ));
        }
        for u in 0..users {
            if self.offsets[u] > self.offsets[u + 1] {
                return Some(format!("offsets fall at user index {u}"));
            }
            let rated = self.rated(u as u32);
            if rated.len() as u64 > self.user_counts[u] as u64 {
                return Some(format!(
                    "user index {u} lists {} rated items but has {} ratings",
                    rated.len(),
                    self.user_counts[u]
                ));
            }
            if rated.windows(2).any(|w| w[0] >= w[1]) {
                return Some(format!(
                    "user index {u}'s rated items are not strictly ascending"
                ));
            }
            if rated.last().is_some_and(|&i| i as usize >= items) {
                return Some(format!(
                    "user index {u} rated an item index past the {items} items"
                ));
            }
        }
        let total_users: u64 = self.user_counts.iter().map(|&c| c as u64).sum();
        let total_items: u64 = self.item_counts.iter().map(|&c| c as u64).sum();
        if total_users != total_items {
            return Some(format!(
                "{total_users} ratings counted by user, {total_items} by item"
            ));
        }
        if self
            .user_sums
            .iter()
            .chain(&self.item_sums)
            .any(|s| !s.is_finite())
        {
            return Some("a rating sum is not finite".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratings(triples: &[(u32, u32, f32)]) -> Ratings {
        Ratings {
            users: triples.iter().map(|t| t.0).collect(),
            items: triples.iter().map(|t| t.1).collect(),
            ratings: triples.iter().map(|t| t.2).collect(),
            timestamps: None,
        }
    }

    #[test]
    fn counts_sums_and_rated_items_of_a_small_set() {
        // User 1 rated item 2 twice; user 0 rated nothing; item 0 was never rated.
        let index = RatingIndex::of(
            &ratings(&[(1, 2, 4.0), (2, 1, 3.0), (1, 1, 5.0), (1, 2, 2.0)]),
            3,
            3,
        );
        assert_eq!(index.user_counts, [0, 3, 1]);
        assert_eq!(index.item_counts, [0, 2, 2]);
        assert_eq!(index.user_sums, [0.0, 11.0, 3.0]);
        assert_eq!(index.item_sums, [0.0, 8.0, 6.0]);
        assert_eq!(index.offsets, [0, 0, 2, 3]);
        assert_eq!(index.rated(0), &[] as &[u32]);
        assert_eq!(index.rated(1), [1, 2]);
        assert_eq!(index.rated(2), [1]);
        assert_eq!(index.problem(), None);
    }

    #[test]
    fn appending_and_reordering_users_keeps_each_users_items() {
        let a = RatingIndex::of(&ratings(&[(0, 1, 4.0), (1, 0, 2.0)]), 2, 2);
        let b = RatingIndex::of(&ratings(&[(0, 0, 5.0), (0, 1, 1.0)]), 1, 2);
        let both = a.with_users_appended(&b);
        assert_eq!(both.user_counts, [1, 1, 2]);
        assert_eq!(both.item_counts, [2, 2]);
        assert_eq!(both.item_sums, [7.0, 5.0]);
        assert_eq!(both.rated(2), [0, 1]);
        assert_eq!(both.problem(), None);
        let reordered = both.with_users_ordered(&[2, 0, 1]);
        assert_eq!(reordered.user_counts, [2, 1, 1]);
        assert_eq!(reordered.rated(0), [0, 1]);
        assert_eq!(reordered.rated(1), [1]);
        assert_eq!(reordered.rated(2), [0]);
        assert_eq!(reordered.problem(), None);
    }

    #[test]
    fn inconsistencies_are_named() {
        let good = RatingIndex::of(&ratings(&[(0, 1, 4.0), (1, 0, 2.0)]), 2, 2);
        let mut bad = good.clone();
        bad.items = vec![1, 5];
        assert!(bad.problem().unwrap().contains("past the 2 items"));
        let mut bad = good.clone();
        bad.item_counts = vec![1, 2];
        assert!(bad.problem().unwrap().contains("counted by user"));
        let mut bad = good;
        bad.offsets = vec![0, 2, 2];
        assert!(bad.problem().unwrap().contains("lists 2 rated items"));
    }
}
