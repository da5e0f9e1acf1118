//! The `plot` stage kind: PNG charts of a trained and evaluated model.
//!
//! Upstream: the `normalise`, `train` and `evaluate` stages of one model.
//! Parameters: `title` (default: the stage id), shown on every chart, and
//! `grid` (default 25), the number of test images shown for classification.
//!
//! Output:
//! - `loss.png`: training and validation loss per epoch;
//! - regression: `predicted_vs_actual.png` on the test set;
//! - classification: `samples.png` (test images with true and predicted
//!   labels, wrong ones in red) and `confusion.png` (the confusion matrix).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::style::{BLUE, RED};
use serde::Deserialize;
use tch::{Kind, Tensor};
use xp::stages::StageJob;

use crate::dataset::Dataset;
use crate::plot::images::Tile;
use crate::plot::{self, image_grid, Labels, Series};

#[derive(Deserialize)]
struct History {
    loss: String,
    epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct Epoch {
    epoch: i64,
    loss: f64,
    val_loss: Option<f64>,
}

#[derive(Deserialize)]
struct Metrics {
    #[serde(default)]
    confusion_matrix: Option<Vec<Vec<i64>>>,
    #[serde(default)]
    unit: Option<String>,
}

pub fn run(job: &StageJob) -> Result<()> {
    let data = Dataset::read(job.upstream_of_kind("normalise")?)?;
    let history: History = read_json(&job.upstream_of_kind("train")?.join("history.json"))?;
    let evaluated = job.upstream_of_kind("evaluate")?;
    let metrics: Metrics = read_json(&evaluated.join("metrics.json"))?;
    let predictions = read_predictions(&evaluated.join("predictions.safetensors"))?;
    let title = job.string("title", &job.stage)?;

    plot_loss(&job.output.join("loss.png"), &title, &history)?;
    if data.is_classification() {
        let names = class_names(&data);
        let grid = job.int("grid", 25)?.max(1) as usize;
        plot_samples(&job.output.join("samples.png"), &title, &data, &predictions, &names, grid)?;
        let matrix = metrics.confusion_matrix.context("`metrics.json` has no confusion matrix")?;
        let caption = format!("{title}: confusion matrix on the test set");
        plot::heat_map(&job.output.join("confusion.png"), &caption, &matrix, &names)
    } else {
        let unit = metrics.unit.unwrap_or_default();
        plot_predicted(&job.output.join("predicted_vs_actual.png"), &title, &data, &predictions, &unit)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is invalid", path.display()))
}

fn read_predictions(path: &Path) -> Result<Tensor> {
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?
        .into_iter()
        .collect();
    tensors.get("predictions").map(Tensor::shallow_clone).context("no `predictions` tensor")
}

fn plot_loss(path: &Path, title: &str, history: &History) -> Result<()> {
    let train: Vec<(f64, f64)> = history.epochs.iter().map(|e| (e.epoch as f64, e.loss)).collect();
    let validation: Vec<(f64, f64)> =
        history.epochs.iter().filter_map(|e| Some((e.epoch as f64, e.val_loss?))).collect();
    let mut series = vec![Series { name: "training", points: train, color: BLUE }];
    if !validation.is_empty() {
        series.push(Series { name: "validation", points: validation, color: RED });
    }
    let loss_name = if history.loss == "mse" { "mean squared error" } else { "cross-entropy" };
    let caption = format!("{title}: loss per epoch");
    let labels = Labels { title: &caption, x: "epoch", y: loss_name };
    plot::line_chart(path, &labels, &series)
}

fn plot_predicted(path: &Path, title: &str, data: &Dataset, predictions: &Tensor, unit: &str) -> Result<()> {
    let actual = Vec::<f64>::try_from(&data.test_y.to_kind(Kind::Double).flatten(0, -1))?;
    let predicted = Vec::<f64>::try_from(&predictions.to_kind(Kind::Double).flatten(0, -1))?;
    let points: Vec<(f64, f64)> = actual.into_iter().zip(predicted).collect();
    let suffix = if unit.is_empty() { String::new() } else { format!(" ({unit})") };
    let (x, y) = (format!("actual{suffix}"), format!("predicted{suffix}"));
    let caption = format!("{title}: predicted against actual, test set");
    plot::scatter_with_diagonal(path, &Labels { title: &caption, x: &x, y: &y }, &points)
}

fn class_names(data: &Dataset) -> Vec<String> {
    let classes = data.meta.num_classes.unwrap_or(0) as usize;
    match &data.meta.class_names {
        Some(names) if names.len() == classes => names.clone(),
        _ => (0..classes).map(|c| c.to_string()).collect(),
    }
}

fn plot_samples(
    path: &Path,
    title: &str,
    data: &Dataset,
    predictions: &Tensor,
    names: &[String],
    count: usize,
) -> Result<()> {
    let total = data.test_x.size()[0] as usize;
    let [_, height, width] = data.meta.input_shape[..] else {
        eprintln!("the samples are not images, so `samples.png` is not drawn");
        return Ok(());
    };
    let truth = Vec::<i64>::try_from(&data.test_y.to_kind(Kind::Int64))?;
    let guesses = Vec::<i64>::try_from(predictions)?;
    let label = |class: i64| names.get(class as usize).cloned().unwrap_or_else(|| class.to_string());
    let mut tiles = Vec::new();
    for index in 0..count.min(total) {
        // Only the first channel is shown.
        let image = data.test_x.get(index as i64).reshape([-1, height, width]).get(0);
        let pixels = Vec::<f32>::try_from(&image.flatten(0, -1).to_kind(Kind::Float))?;
        tiles.push(Tile {
            pixels,
            width: width as usize,
            truth: label(truth[index]),
            predicted: label(guesses[index]),
        });
    }
    let caption = format!("{title}: test images, true / predicted (wrong in red)");
    image_grid(path, &caption, &tiles, 5)
}
