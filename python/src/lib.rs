//! `collabgpu._native`: the library's calls with Python values in and out. Every number comes
//! from the `collabgpu` crate; this file only converts. The pandas and numpy side (frames, arrays,
//! the progress line) is `collabgpu/__init__.py`.
//!
//! Columns cross as `bytes` in native byte order (numpy's `tobytes()` / `frombuffer`): the abi3
//! API has no buffer protocol before Python 3.11, and a copy of a column costs far less than a
//! Python object per rating.

use std::collections::HashSet;
use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use collabgpu::backends::{BackendChoice, OpenedBackend};
use collabgpu::data::load::key_items_by_title;
use collabgpu::data::split::SplitKind;
use collabgpu::data::{
    DataError, Dataset, ItemKey, LoadOptions, RatingColumns, RawIds, dataset_from_columns,
    split_dataset,
};
use collabgpu::files::{EpochLine, ModelFile, ModelFileError, TrainingSplit};
use collabgpu::gpu::GpuOptions;
use collabgpu::gpu::device::{adapter_report, list_adapters};
use collabgpu::inspect::plot::factor_map;
use collabgpu::inspect::{
    InspectError, RatingCounts, Scored, bias_table, find_item, find_user, rated_by,
    rated_in_training, recommend, similar_items_where,
};
use collabgpu::train::{
    self, MemoryEstimate, OptimizerKind, Placement, Progress, Recipe, RunControl, ScheduleKind,
    TrainConfig, TrainError,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// An error and its causes on one line, as the CLI prints them.
fn message(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let more = next.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = next.source();
    }
    text
}

fn value_error(error: &dyn Error) -> PyErr {
    PyValueError::new_err(message(error))
}

fn runtime_error(error: &dyn Error) -> PyErr {
    PyRuntimeError::new_err(message(error))
}

/// Bad data, a bad path or a bad value is the caller's input: `ValueError`. A failed download is
/// not.
fn data_error(error: DataError) -> PyErr {
    match error {
        DataError::Download(_) => runtime_error(&error),
        _ => value_error(&error),
    }
}

/// A configuration or data problem is `ValueError`; a failure while training (divergence, a
/// backend or device error) is `RuntimeError`.
fn train_error(error: TrainError) -> PyErr {
    match error {
        TrainError::Config(_) => value_error(&error),
        TrainError::Data(data) => data_error(data),
        _ => runtime_error(&error),
    }
}

/// Unknown users and items, ambiguous titles, bad requests: `ValueError`; a picture that cannot
/// be written: `RuntimeError`.
fn inspect_error(error: InspectError) -> PyErr {
    match error {
        InspectError::Io { .. } | InspectError::Draw(_) => runtime_error(&error),
        _ => value_error(&error),
    }
}

fn model_file_error(error: ModelFileError) -> PyErr {
    match error {
        ModelFileError::Shape(_) => runtime_error(&error),
        _ => value_error(&error),
    }
}

fn bad(message: String) -> PyErr {
    PyValueError::new_err(message)
}

/// The `N`-byte values of a `bytes` column, decoded.
fn column<const N: usize, T>(
    bytes: &[u8],
    name: &str,
    decode: fn([u8; N]) -> T,
) -> PyResult<Vec<T>> {
    if !bytes.len().is_multiple_of(N) {
        return Err(bad(format!(
            "the {name} column has {} bytes, not a whole number of {N}-byte values",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|chunk| decode(chunk.try_into().expect("chunks_exact")))
        .collect())
}

fn raw_ids(integers: Option<&[u8]>, text: Option<Vec<String>>, name: &str) -> PyResult<RawIds> {
    match (integers, text) {
        (Some(bytes), None) => Ok(RawIds::Integers(column(bytes, name, i64::from_ne_bytes)?)),
        (None, Some(text)) => Ok(RawIds::Text(text)),
        _ => Err(bad(format!(
            "give the {name} ids either as integers or as text"
        ))),
    }
}

fn parse_item_key(name: &str) -> PyResult<ItemKey> {
    match name {
        "id" => Ok(ItemKey::Id),
        "title" => Ok(ItemKey::Title),
        _ => Err(bad(format!(
            "item_key={name:?}: use \"id\" (items by their id) or \"title\" (ids that share a title become one item, as in the fastai book)"
        ))),
    }
}

/// A data set held by Python: what `fit` trains on, and what `recommend`, `similar` and `biases`
/// count ratings in.
#[pyclass(module = "collabgpu._native", frozen)]
struct Ratings {
    dataset: Dataset,
}

#[pymethods]
impl Ratings {
    fn __len__(&self) -> usize {
        self.dataset.ratings.len()
    }

    /// `U`, `I`.
    fn shape(&self) -> (usize, usize) {
        (self.dataset.users.len(), self.dataset.items.len())
    }

    /// The columns of the data set: dense indices and the id tables they index, as `bytes`.
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = &self.dataset;
        let out = PyDict::new(py);
        let bytes = |v: &[u8]| PyBytes::new(py, v);
        out.set_item("users", bytes(bytemuck::cast_slice(&d.ratings.users)))?;
        out.set_item("items", bytes(bytemuck::cast_slice(&d.ratings.items)))?;
        out.set_item("ratings", bytes(bytemuck::cast_slice(&d.ratings.ratings)))?;
        out.set_item(
            "timestamps",
            d.ratings
                .timestamps
                .as_ref()
                .map(|t| bytes(bytemuck::cast_slice(t))),
        )?;
        out.set_item("user_ids", d.users.raw_ids().to_vec())?;
        out.set_item("item_ids", d.items.raw_ids().to_vec())?;
        out.set_item("titles", d.titles.clone())?;
        out.set_item("source", d.source.clone())?;
        out.set_item("skipped", d.skipped.clone())?;
        Ok(out)
    }
}

/// Reads `data` as `--data` does (a directory, a file, a data-set name, `synthetic:NAME`).
#[pyfunction]
#[pyo3(signature = (data, item_key = "id", skip_bad_lines = false))]
fn load_ratings(
    py: Python<'_>,
    data: &str,
    item_key: &str,
    skip_bad_lines: bool,
) -> PyResult<Ratings> {
    let options = LoadOptions {
        item_key: parse_item_key(item_key)?,
        skip_bad_lines,
        ..LoadOptions::default()
    };
    let dataset = py
        .detach(|| collabgpu::data::load(data, &options))
        .map_err(data_error)?;
    Ok(Ratings { dataset })
}

/// Ratings from columns held in memory; `titles` gives each row's item title.
#[pyfunction]
#[pyo3(signature = (*, users_int, users_text, items_int, items_text, ratings, timestamps, titles, item_key, source))]
#[allow(clippy::too_many_arguments)]
fn ratings_from_columns(
    py: Python<'_>,
    users_int: Option<&[u8]>,
    users_text: Option<Vec<String>>,
    items_int: Option<&[u8]>,
    items_text: Option<Vec<String>>,
    ratings: &[u8],
    timestamps: Option<&[u8]>,
    titles: Option<Vec<String>>,
    item_key: &str,
    source: String,
) -> PyResult<Ratings> {
    let item_key = parse_item_key(item_key)?;
    let columns = RatingColumns {
        users: raw_ids(users_int, users_text, "user")?,
        items: raw_ids(items_int, items_text, "item")?,
        ratings: column(ratings, "rating", f32::from_ne_bytes)?,
        timestamps: timestamps
            .map(|t| column(t, "timestamp", i64::from_ne_bytes))
            .transpose()?,
        titles,
        source,
    };
    let dataset = py
        .detach(|| {
            let dataset = dataset_from_columns(columns)?;
            match item_key {
                ItemKey::Id => Ok(dataset),
                ItemKey::Title => key_items_by_title(dataset),
            }
        })
        .map_err(data_error)?;
    Ok(Ratings { dataset })
}

fn parse_optimizer(name: &str) -> PyResult<OptimizerKind> {
    match name {
        "adamw" => Ok(OptimizerKind::AdamW),
        "sgd" => Ok(OptimizerKind::Sgd),
        _ => Err(bad(format!(
            "optimizer={name:?}: use \"adamw\" (fastai's, dense) or \"sgd\" (sparse)"
        ))),
    }
}

fn parse_schedule(name: &str) -> PyResult<ScheduleKind> {
    match name {
        "one-cycle" | "one_cycle" => Ok(ScheduleKind::OneCycle),
        "constant" => Ok(ScheduleKind::Constant),
        _ => Err(bad(format!(
            "schedule={name:?}: use \"one-cycle\" (fastai's fit_one_cycle) or \"constant\""
        ))),
    }
}

fn parse_recipe(name: &str) -> PyResult<Recipe> {
    match name {
        "fastai" => Ok(Recipe::Fastai),
        "ml-25m" => Ok(Recipe::Ml25m),
        _ => Err(bad(format!(
            "recipe={name:?}: use \"fastai\" (chapter 8: adamw, one-cycle, lr 5e-3, wd 0.1, K 50, bs 64, 5 epochs) or \"ml-25m\" (sparse sgd at scale)"
        ))),
    }
}

fn parse_split(name: &str) -> PyResult<SplitKind> {
    match name {
        "random" => Ok(SplitKind::Random),
        "time" => Ok(SplitKind::Time),
        _ => Err(bad(format!(
            "split={name:?}: use \"random\" (a seeded permutation) or \"time\" (the latest ratings)"
        ))),
    }
}

fn backend_choice(name: &str, adapter: Option<String>, threads: usize) -> PyResult<BackendChoice> {
    match name {
        "cpu" if adapter.is_some() => Err(bad(
            "adapter= chooses a GPU adapter; add backend=\"gpu\"".to_string(),
        )),
        "cpu" => Ok(BackendChoice::Cpu { threads }),
        "gpu" => Ok(BackendChoice::Gpu(GpuOptions {
            adapter,
            ..GpuOptions::default()
        })),
        _ => Err(bad(format!(
            "backend={name:?}: use \"cpu\" or \"gpu\" (any Vulkan, Metal or DX12 adapter; see collabgpu.adapters())"
        ))),
    }
}

/// What can stop `fit` inside the training thread.
enum FitFailure {
    Train(TrainError),
    Memory(train::MemoryError),
}

impl From<TrainError> for FitFailure {
    fn from(error: TrainError) -> Self {
        FitFailure::Train(error)
    }
}

impl From<DataError> for FitFailure {
    fn from(error: DataError) -> Self {
        FitFailure::Train(TrainError::Data(error))
    }
}

/// Trains a model on `ratings` as `collabgpu train` does: the same configuration, split, seed,
/// initial state and epoch loop, so the same numbers. The GIL is released while it trains; the
/// `observer` (or, without one, nothing) is called after every run of batches and every epoch, and
/// Python's signal handlers run there, so Ctrl-C stops the run after the current batches.
///
/// Returns a dict: `model`, `epochs` (one `train --json` line per epoch), `summary`, and
/// `interrupted` (the exception that stopped the run, or `None`) with `stopped_at`.
#[pyfunction]
#[pyo3(signature = (ratings, *, recipe, factors, epochs, lr, wd, bs, optimizer, schedule, y_range, init_std, seed, keep_last_batch, valid_pct, split, backend, adapter, threads, observer))]
#[allow(clippy::too_many_arguments)]
fn fit<'py>(
    py: Python<'py>,
    ratings: Py<Ratings>,
    recipe: Option<&str>,
    factors: Option<usize>,
    epochs: Option<usize>,
    lr: Option<f32>,
    wd: Option<f32>,
    bs: Option<usize>,
    optimizer: Option<&str>,
    schedule: Option<&str>,
    y_range: Option<(f32, f32)>,
    init_std: Option<f32>,
    seed: u64,
    keep_last_batch: Option<bool>,
    valid_pct: f64,
    split: &str,
    backend: &str,
    adapter: Option<String>,
    threads: usize,
    observer: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let base = match recipe {
        Some(name) => parse_recipe(name)?.config(),
        None => TrainConfig::default(),
    };
    let config = TrainConfig {
        factors: factors.unwrap_or(base.factors),
        epochs: epochs.unwrap_or(base.epochs),
        lr: lr.unwrap_or(base.lr),
        wd: wd.unwrap_or(base.wd),
        batch_size: bs.unwrap_or(base.batch_size),
        optimizer: optimizer
            .map(parse_optimizer)
            .transpose()?
            .unwrap_or(base.optimizer),
        schedule: schedule
            .map(parse_schedule)
            .transpose()?
            .unwrap_or(base.schedule),
        y_range,
        init_std: init_std.unwrap_or(base.init_std),
        seed,
        drop_last: keep_last_batch.map_or(base.drop_last, |keep| !keep),
        ..base
    };
    config.validate().map_err(train_error)?;
    let kind = parse_split(split)?;
    let choice = backend_choice(backend, adapter, threads)?;
    let placement = match choice {
        BackendChoice::Cpu { .. } => Placement::Cpu,
        BackendChoice::Gpu(_) => Placement::Gpu,
    };
    let stop = AtomicBool::new(false);
    let mut interrupted: Option<PyErr> = None;
    let observer = observer.as_ref();
    let trained = py.detach(|| -> Result<_, FitFailure> {
        let data = split_dataset(ratings.get().dataset.clone(), kind, valid_pct, config.seed)?;
        MemoryEstimate::training(
            &config,
            data.users(),
            data.items(),
            data.train.len(),
            placement,
            false,
        )
        .check("fit", MemoryEstimate::TRAINING_ADVICE)
        .map_err(FitFailure::Memory)?;
        let state = train::initial_state(&config, data.users(), data.items());
        let OpenedBackend {
            mut backend,
            adapter,
            ..
        } = choice.open()?;
        let control = RunControl {
            stop: Some(&stop),
            ..RunControl::default()
        };
        let outcome = train::train_controlled(
            backend.as_mut(),
            &config,
            &state,
            &data.train,
            &data.valid,
            control,
            &mut |progress| {
                if interrupted.is_some() {
                    return;
                }
                let event = match progress {
                    Progress::Batches {
                        epoch,
                        done,
                        total,
                        running_loss,
                        ratings_per_second,
                    } => (
                        "batches",
                        epoch,
                        config.epochs,
                        done,
                        total,
                        running_loss,
                        ratings_per_second,
                        None,
                    ),
                    Progress::Epoch(report) => (
                        "epoch",
                        report.epoch,
                        config.epochs,
                        0,
                        0,
                        report.train_loss,
                        report.ratings_per_second,
                        Some(EpochLine::from(report).to_line()),
                    ),
                };
                Python::attach(|py| {
                    let result = py.check_signals().and_then(|()| match observer {
                        Some(callback) => callback.call1(py, event).map(drop),
                        None => Ok(()),
                    });
                    if let Err(error) = result {
                        interrupted = Some(error);
                        stop.store(true, Ordering::SeqCst);
                    }
                });
            },
        )?;
        Ok((data, outcome, adapter))
    });
    let (data, outcome, adapter) = trained.map_err(|failure| match failure {
        FitFailure::Train(error) => train_error(error),
        FitFailure::Memory(error) => runtime_error(&error),
    })?;
    let report = outcome.report;
    let split = TrainingSplit {
        source: data.dataset.source.clone(),
        kind,
        valid_pct,
        seed: config.seed,
        fold: None,
        data: data.fingerprint,
    };
    // As `collabgpu train --out` writes it: with --early-stop the best epoch's parameters, the
    // split and who rated what in training.
    let model = ModelFile::trained(report.kept_params().clone(), &data, &config, split);
    let out = PyDict::new(py);
    let lines: Vec<String> = report
        .epochs
        .iter()
        .map(|epoch| EpochLine::from(epoch).to_line())
        .collect();
    out.set_item("epochs", lines)?;
    let summary = PyDict::new(py);
    summary.set_item("valid_loss", report.final_valid_loss())?;
    summary.set_item("backend", report.backend.clone())?;
    summary.set_item("adapter", adapter)?;
    summary.set_item("ratings_per_second", report.ratings_per_second())?;
    summary.set_item("train_seconds", report.train_seconds)?;
    summary.set_item("users", data.users())?;
    summary.set_item("items", data.items())?;
    summary.set_item("train_ratings", data.train.len())?;
    summary.set_item("valid_ratings", data.valid.len())?;
    summary.set_item("config", config.to_json().to_string())?;
    out.set_item("summary", summary)?;
    out.set_item("stopped_at", outcome.stopped_at.map(|p| (p.epoch, p.batch)))?;
    out.set_item("interrupted", interrupted.map(|e| e.into_value(py)))?;
    out.set_item(
        "model",
        Model {
            model,
            data: Some(ratings),
        },
    )?;
    Ok(out)
}

/// A trained model, and the ratings it was trained on when it was trained in this process (held,
/// not copied: `Ratings` is immutable).
#[pyclass(module = "collabgpu._native", frozen)]
struct Model {
    model: ModelFile,
    data: Option<Py<Ratings>>,
}

fn scored_rows(rows: Vec<Scored>) -> Vec<(String, Option<String>, f32)> {
    rows.into_iter().map(|s| (s.id, s.title, s.score)).collect()
}

impl Model {
    /// The ratings to count in: those given, else those the model was fitted on in this process,
    /// else the model file's record of its training ratings (as the CLI counts).
    fn counts(&self, data: Option<&Ratings>) -> Option<RatingCounts> {
        match data
            .map(|r| &r.dataset)
            .or(self.data.as_ref().map(|r| &r.get().dataset))
        {
            Some(dataset) => Some(RatingCounts::of(&self.model, dataset)),
            None => RatingCounts::of_training(&self.model),
        }
    }
}

#[pymethods]
impl Model {
    /// Predicted ratings (f32 `bytes`) for pairs of raw ids, as `collabgpu predict` computes one.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        users: Vec<String>,
        items: Vec<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if users.len() != items.len() {
            return Err(bad(format!(
                "{} users but {} items: give one item per user",
                users.len(),
                items.len()
            )));
        }
        let m = &self.model;
        let mut out = Vec::with_capacity(users.len());
        for (user, item) in users.iter().zip(&items) {
            let u = find_user(m, user).map_err(inspect_error)?;
            let i = find_item(m, item).map_err(inspect_error)?;
            out.push(m.params.predict(u, i, m.config.y_range));
        }
        Ok(PyBytes::new(py, bytemuck::cast_slice(&out)))
    }

    /// `collabgpu recommend`: `(id, title, score)` of the `n` best items for `user`, leaving out
    /// the items the user rated in `exclude` (or, when `None`, in the ratings the model was trained
    /// on; with `exclude_rated` false, none).
    #[pyo3(signature = (user, n, exclude, exclude_rated))]
    fn recommend(
        &self,
        user: &str,
        n: usize,
        exclude: Option<&Ratings>,
        exclude_rated: bool,
    ) -> PyResult<Vec<(String, Option<String>, f32)>> {
        let m = &self.model;
        let index = find_user(m, user).map_err(inspect_error)?;
        let given = exclude
            .map(|r| &r.dataset)
            .or(self.data.as_ref().map(|r| &r.get().dataset));
        let rated = match (exclude_rated, given) {
            (false, _) => HashSet::new(),
            (true, Some(dataset)) => rated_by(m, dataset, m.users.raw(index)).unwrap_or_default(),
            // A loaded model: its file's record of the training ratings, as `collabgpu recommend`.
            (true, None) => match rated_in_training(m, index) {
                Some(rated) => rated,
                None => {
                    return Err(bad(format!(
                        "this model file does not record which items user {user} rated (it was \
                         written before model files kept that); pass exclude=RATINGS (a DataFrame \
                         of the training ratings) or exclude_rated=False"
                    )));
                }
            },
        };
        Ok(scored_rows(recommend(m, index, &rated, n)))
    }

    /// `collabgpu similar`: `(id, title, cosine)` of the `n` items nearest to `item`; with
    /// `min_ratings`, only items with that many ratings in `data` (else the training ratings).
    #[pyo3(signature = (item, n, min_ratings, data))]
    fn similar(
        &self,
        item: &str,
        n: usize,
        min_ratings: Option<usize>,
        data: Option<&Ratings>,
    ) -> PyResult<Vec<(String, Option<String>, f32)>> {
        let m = &self.model;
        let index = find_item(m, item).map_err(inspect_error)?;
        let counts = match min_ratings {
            Some(_) => Some(self.counts(data).ok_or_else(|| {
                bad("min_ratings= counts ratings: pass data=RATINGS, or use a model fitted in this session".to_string())
            })?),
            None => None,
        };
        let keep = |other: u32| match (&counts, min_ratings) {
            (Some(c), Some(min)) => c.items[other as usize].1 >= min,
            _ => true,
        };
        Ok(scored_rows(similar_items_where(m, index, n, &keep)))
    }

    /// `collabgpu biases`: the `n` lowest and `n` highest item (or user) biases as
    /// `(end, id, title, bias, mean_rating, ratings)`, with mean rating and count from `data` or
    /// the training ratings when known.
    #[pyo3(signature = (n, users, data))]
    #[allow(clippy::type_complexity)]
    fn biases(
        &self,
        n: usize,
        users: bool,
        data: Option<&Ratings>,
    ) -> Vec<(
        &'static str,
        String,
        Option<String>,
        f32,
        Option<f64>,
        Option<usize>,
    )> {
        let counts = self.counts(data);
        let table = bias_table(&self.model, users, counts.as_ref(), 0, n);
        let rows = |end: &'static str, rows: Vec<collabgpu::inspect::BiasRow>| {
            rows.into_iter()
                .map(move |r| (end, r.id, r.title, r.bias, r.mean_rating, r.ratings))
        };
        rows("lowest", table.lowest)
            .chain(rows("highest", table.highest))
            .collect()
    }

    /// `collabgpu plot --model`: the item factors on their first two principal components, written
    /// to `path` (`.svg` or `.png`); returns the share of variance of each axis.
    #[pyo3(signature = (path, labels, data))]
    fn plot_factors(
        &self,
        py: Python<'_>,
        path: PathBuf,
        labels: usize,
        data: Option<&Ratings>,
    ) -> PyResult<Vec<f64>> {
        let counts = self.counts(data);
        py.detach(|| {
            let map = factor_map(&self.model, counts.as_ref(), labels)?;
            map.chart.save(&path)?;
            Ok(map.pca.variance_shares())
        })
        .map_err(inspect_error)
    }

    /// The points `plot_factors` draws: `(id, title, pc1, pc2, labelled)` for every item the axes
    /// are fitted to, and each axis's share of the variance.
    #[pyo3(signature = (labels, data))]
    #[allow(clippy::type_complexity)]
    fn factor_coordinates(
        &self,
        py: Python<'_>,
        labels: usize,
        data: Option<&Ratings>,
    ) -> PyResult<(Vec<(String, Option<String>, f64, f64, bool)>, Vec<f64>)> {
        let counts = self.counts(data);
        let map = py
            .detach(|| factor_map(&self.model, counts.as_ref(), labels))
            .map_err(inspect_error)?;
        let m = &self.model;
        let k = m.params.factors;
        let labelled: HashSet<u32> = map.labelled.iter().copied().collect();
        let rows = map
            .fitted
            .iter()
            .map(|&item| {
                let c = map
                    .pca
                    .project(&m.params.item_factors[item as usize * k..][..k]);
                (
                    m.items.raw(item).to_string(),
                    m.titles.as_ref().map(|t| t[item as usize].clone()),
                    c[0],
                    c.get(1).copied().unwrap_or(0.0),
                    labelled.contains(&item),
                )
            })
            .collect();
        Ok((rows, map.pca.variance_shares()))
    }

    /// `(U, I, K, P, Q, bu, bi)` with the tensors as f32 `bytes`.
    #[allow(clippy::type_complexity)]
    fn parameters<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        usize,
        usize,
        usize,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
        Bound<'py, PyBytes>,
    ) {
        let p = &self.model.params;
        let bytes = |v: &[f32]| PyBytes::new(py, bytemuck::cast_slice(v));
        (
            p.users(),
            p.items(),
            p.factors,
            bytes(&p.user_factors),
            bytes(&p.item_factors),
            bytes(&p.user_bias),
            bytes(&p.item_bias),
        )
    }

    fn user_ids(&self) -> Vec<String> {
        self.model.users.raw_ids().to_vec()
    }

    fn item_ids(&self) -> Vec<String> {
        self.model.items.raw_ids().to_vec()
    }

    fn titles(&self) -> Option<Vec<String>> {
        self.model.titles.clone()
    }

    /// `"title"` when the model's items are titles, else `"id"`.
    fn item_key(&self) -> &'static str {
        match self.model.item_key() {
            ItemKey::Title => "title",
            ItemKey::Id => "id",
        }
    }

    /// The training configuration as JSON (the model file's `config`).
    fn config_json(&self) -> String {
        self.model.config.to_json().to_string()
    }

    fn has_data(&self) -> bool {
        self.data.is_some()
    }

    /// Writes the CLI's model file, atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.model.save(&path))
            .map_err(model_file_error)
    }
}

/// Reads a model file written by `collabgpu train --out` or `save`.
#[pyfunction]
fn load_model(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
    let model = py
        .detach(|| ModelFile::load(&path))
        .map_err(model_file_error)?;
    Ok(Model { model, data: None })
}

/// `collabgpu info --json`'s adapter list, as JSON.
#[pyfunction]
#[pyo3(signature = (wgpu_backend = None))]
fn adapters_json(py: Python<'_>, wgpu_backend: Option<String>) -> PyResult<String> {
    let adapters = py
        .detach(|| list_adapters(wgpu_backend.as_deref()))
        .map_err(|e| value_error(&e))?;
    let entries: Vec<serde_json::Value> = adapters.iter().map(adapter_report).collect();
    Ok(serde_json::Value::from(entries).to_string())
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Ratings>()?;
    module.add_class::<Model>()?;
    module.add_function(wrap_pyfunction!(load_ratings, module)?)?;
    module.add_function(wrap_pyfunction!(ratings_from_columns, module)?)?;
    module.add_function(wrap_pyfunction!(fit, module)?)?;
    module.add_function(wrap_pyfunction!(load_model, module)?)?;
    module.add_function(wrap_pyfunction!(adapters_json, module)?)?;
    Ok(())
}
