//! The hand-built model both inspection test files check known answers against.
//!
//! `K = 2`. Users "1", "2", "10"; items "5", "7", "9", "11".
//! `P`: user 0 (2, 0), user 1 (0, 2), user 2 (0, 0); `bu` = 0.1, -0.2, 0.
//! `Q`: item 0 (1, 0), item 1 (0.9, 0.1), item 2 (0, 1), item 3 (-1, 0.2); `bi` = 0.5, -1, 0.25, 0.
//! Raw scores `dot(P[u], Q[i]) + bu[u] + bi[i]` of user "1": 2.6, 0.9, 0.35, -1.9.
//! Titles: two "Lambs" and two "Star Wars" films, for name lookups.

use collabgpu::data::IdMap;
use collabgpu::files::ModelFile;
use collabgpu::model::Params;
use collabgpu::train::TrainConfig;

/// The model above with the given y-range.
pub fn hand_model(y_range: Option<(f32, f32)>) -> ModelFile {
    ModelFile {
        params: Params {
            factors: 2,
            user_factors: vec![2.0, 0.0, 0.0, 2.0, 0.0, 0.0],
            item_factors: vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, -1.0, 0.2],
            user_bias: vec![0.1, -0.2, 0.0],
            item_bias: vec![0.5, -1.0, 0.25, 0.0],
        },
        users: IdMap::from_raw_ids(vec!["1".into(), "2".into(), "10".into()]),
        items: IdMap::from_raw_ids(vec!["5".into(), "7".into(), "9".into(), "11".into()]),
        titles: Some(vec![
            "Silence of the Lambs, The (1991)".into(),
            "Lambs of God (1994)".into(),
            "Star Wars (1977)".into(),
            "Star Wars Holiday Special (1978)".into(),
        ]),
        config: TrainConfig {
            factors: 2,
            y_range,
            ..TrainConfig::default()
        },
        split: None,
        training: None,
    }
}
