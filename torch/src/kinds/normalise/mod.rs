//! The `normalise` kind: reads a dataset from the output of the `download`
//! stage upstream, splits it into train and test parts, scales the features and
//! writes tensors that training and evaluation load without further work.
//!
//! # Parameters
//!
//! - `format` (required): `"csv"`, `"idx"` or `"npz"`.
//! - With `format = "csv"`:
//!   - `file` (required): a file name in the download output, plain or gzip.
//!   - `task` (required): `"regression"` or `"classification"`.
//!   - `label_column` (default -1): the label's column. A negative index
//!     counts from the end, so -1 is the last column.
//!   - `has_header` (default false): whether the first line contains names.
//!   - `image_shape` (optional): the shape of one sample's features, such as
//!     `"1x28x28"`. It defaults to `"1x28x28"` for classification with 784
//!     features, and to none otherwise.
//! - With `format = "idx"`: `train_images`, `train_labels`, `test_images`
//!   and `test_labels` (required file names).
//! - With `format = "npz"`: `file` (required), an archive with the members
//!   `x_train`, `y_train`, `x_test` and `y_test`, as in Keras' `mnist.npz`.
//! - `task` for `idx` and `npz`: the default and only value is
//!   `"classification"`.
//! - `test_fraction` (default 0.2) and `seed` (default 42): the seeded split of
//!   a CSV file. IDX and npz files come split and ignore both.
//! - `limit_train`, `limit_test` (optional, at least 1): keep only the first N
//!   samples of each part after the split. CSV parts are in shuffled order, so
//!   this keeps a random subset. IDX and npz parts keep file order.
//! - `class_names` (optional, classification only): a list of strings, one per
//!   class, in label order. Every label must be below its length, which then
//!   sets `num_classes`. Without it, `num_classes` is the largest label + 1.
//!
//! Features with an image shape (every IDX and npz source) are pixels, which
//! are divided by 255 into [0, 1] and must lie in [0, 255]. Other features are
//! standardised with the mean and population standard deviation of the train
//! part, after the limits. Regression targets are left unchanged.
//!
//! # Outputs
//!
//! `data.safetensors` contains four tensors, where N is the part's sample count
//! and the input shape is `[features]` or `[C, H, W]`:
//!
//! | name | dtype | shape |
//! |---|---|---|
//! | `train_x`, `test_x` | f32 | `[N, ...input shape]` |
//! | `train_y`, `test_y` (regression) | f32 | `[N, 1]` |
//! | `train_y`, `test_y` (classification) | i64 | `[N]` |
//!
//! `meta.json` contains `task`, `input_shape`, `n_train`, `n_test`,
//! `feature_scaling` (`"standardise"` or `"divide_by_255"`), `num_classes` and
//! `class_names` (classification, the names when given), `feature_mean` and
//! `feature_std` (standardised features), `split` (CSV: `test_fraction`,
//! `seed`), and `sources`: each input file's name and sha256.

mod csv;
mod images;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};
use xp::spec::Value;
use xp::stages::StageJob;

use crate::data::standardise::FeatureStats;

/// Runs a `normalise` stage.
pub fn run(job: &StageJob) -> Result<()> {
    let folder = job.upstream_of_kind("download")?;
    let format = job.string("format", "")?;
    let mut dataset = match format.as_str() {
        "csv" => csv::load_csv(job, folder)?,
        "idx" => images::load_idx(job, folder)?,
        "npz" => images::load_npz(job, folder)?,
        "" => bail!(
            "stage `{}` needs the parameter `format`: \"csv\", \"idx\" or \"npz\"",
            job.stage
        ),
        other => bail!(
            "parameter `format` of stage `{}` must be \"csv\", \"idx\" or \"npz\", not `{other}`",
            job.stage
        ),
    };
    dataset.class_names = class_names(job, &dataset)?;
    write_tensors(&dataset, &job.output.join("data.safetensors"))?;
    let meta = serde_json::to_string_pretty(&meta_json(&dataset)?)?;
    let meta_path = job.output.join("meta.json");
    std::fs::write(&meta_path, meta + "\n")
        .with_context(|| format!("failed to write `{}`", meta_path.display()))
}

/// A dataset ready to be written: scaled features and targets of each part.
struct Dataset {
    train: Part,
    test: Part,
    /// The shape of one sample, without the batch dimension.
    input_shape: Vec<usize>,
    scaling: Scaling,
    class_names: Option<Vec<String>>,
    /// The CSV split's test fraction and seed.
    split: Option<(f64, u64)>,
    sources: Vec<PathBuf>,
}

struct Part {
    /// Row-major features, `input_shape` per sample.
    x: Vec<f32>,
    y: Targets,
}

enum Targets {
    Regression(Vec<f32>),
    Classes(Vec<i64>),
}

impl Targets {
    fn len(&self) -> usize {
        match self {
            Targets::Regression(values) => values.len(),
            Targets::Classes(labels) => labels.len(),
        }
    }
}

enum Scaling {
    Standardise(FeatureStats),
    DivideBy255,
}

/// Returns the path of the download output file named by parameter `name`.
fn source_path(job: &StageJob, folder: &Path, name: &str) -> Result<PathBuf> {
    let file = job.string(name, "")?;
    if file.is_empty() {
        bail!(
            "stage `{}` needs the parameter `{name}`: a file name in the download output",
            job.stage
        );
    }
    if file.contains(['/', '\\']) || file == "." || file == ".." {
        bail!(
            "parameter `{name}` of stage `{}` must be a file name in the download output, \
             not the path `{file}`",
            job.stage
        );
    }
    let path = folder.join(&file);
    if !path.is_file() {
        let mut present: Vec<String> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        present.sort();
        bail!(
            "`{file}` (parameter `{name}`) is not in the download output `{}`, which contains: {}",
            folder.display(),
            present.join(", ")
        );
    }
    Ok(path)
}

/// Returns the optional sample limit `name`, which must be at least 1.
fn limit(job: &StageJob, name: &str) -> Result<Option<usize>> {
    if job.param(name).is_none() {
        return Ok(None);
    }
    match job.int(name, 0)? {
        limit if limit >= 1 => Ok(Some(limit as usize)),
        limit => bail!(
            "parameter `{name}` of stage `{}` must be at least 1, not {limit}",
            job.stage
        ),
    }
}

/// Reads the `class_names` parameter and checks it against the labels.
fn class_names(job: &StageJob, dataset: &Dataset) -> Result<Option<Vec<String>>> {
    let Some(value) = job.param("class_names") else {
        return Ok(None);
    };
    let names: Option<Vec<String>> = match value {
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    let Some(names) = names else {
        bail!(
            "parameter `class_names` of stage `{}` must be a list of strings",
            job.stage
        );
    };
    match max_label(dataset) {
        None => bail!(
            "parameter `class_names` of stage `{}` is set, but the task is regression",
            job.stage
        ),
        Some(max) if max >= names.len() as i64 => {
            let count = names.len();
            bail!(
                "parameter `class_names` of stage `{}` names {count} classes, but the label {max} \
                 occurs",
                job.stage
            )
        }
        Some(_) => Ok(Some(names)),
    }
}

/// Returns the largest class label in either part, or `None` for regression.
fn max_label(dataset: &Dataset) -> Option<i64> {
    let labels = |part: &Part| match &part.y {
        Targets::Classes(labels) => Some(labels.iter().copied().max().unwrap_or(-1)),
        Targets::Regression(_) => None,
    };
    Some(labels(&dataset.train)?.max(labels(&dataset.test)?))
}

fn write_tensors(dataset: &Dataset, path: &Path) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, part) in [("train", &dataset.train), ("test", &dataset.test)] {
        let count = part.y.len() as i64;
        let shape: Vec<i64> = std::iter::once(count)
            .chain(dataset.input_shape.iter().map(|&s| s as i64))
            .collect();
        tensors.push((
            format!("{name}_x"),
            Tensor::from_slice(&part.x).view(shape.as_slice()),
        ));
        let y = match &part.y {
            Targets::Regression(values) => Tensor::from_slice(values).view([count, 1]),
            Targets::Classes(labels) => Tensor::from_slice(labels).to_kind(Kind::Int64),
        };
        tensors.push((format!("{name}_y"), y));
    }
    Tensor::write_safetensors(&tensors, path)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

fn meta_json(dataset: &Dataset) -> Result<Json> {
    let mut meta = json!({
        "task": if max_label(dataset).is_some() { "classification" } else { "regression" },
        "input_shape": dataset.input_shape,
        "n_train": dataset.train.y.len(),
        "n_test": dataset.test.y.len(),
    });
    if let Some(max) = max_label(dataset) {
        let count = dataset
            .class_names
            .as_ref()
            .map_or(max + 1, |names| names.len() as i64);
        meta["num_classes"] = json!(count);
    }
    if let Some(names) = &dataset.class_names {
        meta["class_names"] = json!(names);
    }
    match &dataset.scaling {
        Scaling::Standardise(stats) => {
            meta["feature_scaling"] = json!("standardise");
            meta["feature_mean"] = json!(stats.mean);
            meta["feature_std"] = json!(stats.std);
        }
        Scaling::DivideBy255 => meta["feature_scaling"] = json!("divide_by_255"),
    }
    if let Some((test_fraction, seed)) = dataset.split {
        meta["split"] = json!({ "test_fraction": test_fraction, "seed": seed });
    }
    let sources: Result<Vec<Json>> = dataset
        .sources
        .iter()
        .map(|path| Ok(json!({ "file": file_name(path), "sha256": sha256_file(path)? })))
        .collect();
    meta["sources"] = json!(sources?);
    Ok(meta)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn file_name(path: &Path) -> String {
    crate::data::file_name(path)
}
