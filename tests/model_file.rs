//! The safetensors model file: a round trip keeps every bit, ids, titles, y-range and
//! configuration; the write is atomic; damaged files give messages that name the file.

use collabgpu::data::IdMap;
use collabgpu::files::{ModelFile, ModelFileError};
use collabgpu::model::Params;
use collabgpu::train::{OptimizerKind, ScheduleKind, TrainConfig};
use safetensors::SafeTensors;

fn sample(titles: bool, y_range: Option<(f32, f32)>) -> ModelFile {
    let config = TrainConfig {
        factors: 3,
        epochs: 7,
        lr: 0.0123,
        wd: 0.05,
        batch_size: 128,
        optimizer: OptimizerKind::Sgd,
        schedule: ScheduleKind::Constant,
        y_range,
        init_std: 0.3,
        seed: 99,
        drop_last: false,
        ..TrainConfig::default()
    };
    ModelFile {
        params: Params::init(4, 5, 3, 0.3, 99),
        users: IdMap::from_raw_ids(["7", "10", "3", "200"].map(String::from).to_vec()),
        items: IdMap::from_raw_ids(["b", "a", "é", "d e", "c,\"x\""].map(String::from).to_vec()),
        titles: titles.then(|| {
            [
                "Toy Story (1995)",
                "GoldenEye",
                "Ça ira",
                "",
                "Se7en, \"quoted\"",
            ]
            .map(String::from)
            .to_vec()
        }),
        config,
        split: None,
        training: None,
    }
}

#[test]
fn round_trip_keeps_every_bit_and_all_metadata() {
    let dir = tempfile::tempdir().unwrap();
    for (titles, y_range) in [(true, Some((0.5f32, 5.25f32))), (false, None)] {
        let path = dir.path().join("model.safetensors");
        let model = sample(titles, y_range);
        model.save(&path).unwrap();
        let back = ModelFile::load(&path).unwrap();
        assert_eq!(back, model);
        for (a, b) in back.params.tensors().iter().zip(model.params.tensors()) {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        assert_eq!(back.users.raw(0), "3", "ids come back in index order");
    }
    // Only the model is left: no temporary files from the atomic write.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("model.safetensors")]);
}

#[test]
fn file_is_plain_safetensors_with_named_tensors_and_json_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let model = sample(true, Some((0.0, 5.5)));
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let shape = |name: &str| tensors.tensor(name).unwrap().shape().to_vec();
    assert_eq!(shape("user_factors"), vec![4, 3]);
    assert_eq!(shape("item_factors"), vec![5, 3]);
    assert_eq!(shape("user_bias"), vec![4]);
    assert_eq!(shape("item_bias"), vec![5]);
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    let json = |key: &str| serde_json::from_str::<serde_json::Value>(&meta[key]).unwrap();
    assert_eq!(json("y_range"), serde_json::json!([0.0, 5.5]));
    assert_eq!(json("user_ids"), serde_json::json!(["3", "7", "10", "200"]));
    assert_eq!(json("titles")[4], "Se7en, \"quoted\"");
    let config = json("config");
    assert_eq!(
        config["lr"], 0.0123,
        "short decimal form, not the f32's long expansion"
    );
    assert_eq!(config["optimizer"], "sgd");
    assert_eq!(config["schedule"], "constant");
    assert_eq!(config["factors"], 3);
}

#[test]
fn saving_over_an_existing_model_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    let model = sample(false, Some((0.0, 5.5)));
    model.save(&path).unwrap();
    assert_eq!(ModelFile::load(&path).unwrap(), model);
}

#[test]
fn damaged_or_foreign_files_are_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, b"not a model at all").unwrap();
    let err = ModelFile::load(&path).unwrap_err();
    assert!(matches!(err, ModelFileError::Format { .. }), "{err}");
    assert!(err.to_string().contains("bad.safetensors"), "{err}");

    // A valid safetensors file without our metadata.
    let data = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let bytes = safetensors::serialize([("user_bias", view)], None).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let err = ModelFile::load(&path).unwrap_err();
    assert!(err.to_string().contains("__metadata__"), "{err}");

    let missing = dir.path().join("missing.safetensors");
    let err = ModelFile::load(&missing).unwrap_err();
    assert!(matches!(err, ModelFileError::Io { .. }) && err.to_string().contains("missing"));
}

#[test]
fn ids_that_do_not_match_the_parameters_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut model = sample(false, None);
    model.users = IdMap::from_raw_ids(vec!["1".into()]);
    let err = model.save(&path).unwrap_err();
    assert!(err.to_string().contains("1 user ids"), "{err}");
    assert!(!path.exists());
}
