//! The `evaluate` stage kind: scores trained weights on the test set.
//!
//! Upstream: one `normalise` stage (the data) and one `train` stage. Parameter:
//! `unit` (default empty), the unit of regression targets shown with RMSE and
//! MAE, such as `thousands of dollars` for Boston's MEDV.
//!
//! Output: `metrics.json` and `predictions.safetensors` (`predictions`: f32
//! [N, 1] for regression, class indices i64 [N] for classification; `scores`:
//! the model's raw outputs). `metrics.json` names its main metric, so reports
//! can rank runs without knowing the task:
//! - regression: `rmse`, `mae` (main: `rmse`, lower is better);
//! - classification: `accuracy`, `per_class_accuracy`, `confusion_matrix`
//!   (rows: true class, columns: predicted class; main: `accuracy`).

use anyhow::{Context, Result};
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Kind, Tensor};
use xp::stages::StageJob;

use crate::dataset::Dataset;
use crate::model::{load_weights, predict, ModelSpec};

#[derive(Serialize)]
struct Metrics {
    task: String,
    main_metric: &'static str,
    higher_is_better: bool,
    n_test: i64,
    #[serde(flatten)]
    scores: Scores,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Scores {
    Regression { rmse: f64, mae: f64, unit: String },
    Classification {
        accuracy: f64,
        per_class_accuracy: Vec<f64>,
        confusion_matrix: Vec<Vec<i64>>,
        class_names: Option<Vec<String>>,
    },
}

pub fn run(job: &StageJob) -> Result<()> {
    let data = Dataset::read(job.upstream_of_kind("normalise")?)?;
    let trained = job.upstream_of_kind("train")?;
    let spec = ModelSpec::read(&trained.join("model.json"))?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let network = spec.network(&vs.root())?;
    load_weights(&mut vs, &trained.join("weights.safetensors"))?;

    let scores = predict(&network, &data.test_x, 256);
    let n_test = data.test_x.size()[0];
    let (metrics, predictions) = if data.is_classification() {
        let classes = data.meta.num_classes.unwrap_or(0);
        let predicted = scores.argmax(-1, false);
        let metrics = classification(&data, &predicted, classes, n_test);
        (metrics, predicted)
    } else {
        (regression(job, &data, &scores, n_test)?, scores.shallow_clone())
    };
    let text = serde_json::to_string_pretty(&metrics).context("failed to encode the metrics")?;
    std::fs::write(job.output.join("metrics.json"), text).context("failed to write `metrics.json`")?;
    let tensors = [("predictions", predictions), ("scores", scores)];
    Tensor::write_safetensors(&tensors, job.output.join("predictions.safetensors"))
        .context("failed to write `predictions.safetensors`")
}

fn regression(job: &StageJob, data: &Dataset, scores: &Tensor, n_test: i64) -> Result<Metrics> {
    let errors = scores - &data.test_y;
    let rmse = errors.square().mean(Kind::Double).sqrt().double_value(&[]);
    let mae = errors.abs().mean(Kind::Double).double_value(&[]);
    let unit = job.string("unit", "")?;
    eprintln!("test RMSE {rmse:.3} {unit}, MAE {mae:.3} {unit}");
    Ok(Metrics {
        task: "regression".into(),
        main_metric: "rmse",
        higher_is_better: false,
        n_test,
        scores: Scores::Regression { rmse, mae, unit },
    })
}

fn classification(data: &Dataset, predicted: &Tensor, classes: i64, n_test: i64) -> Metrics {
    let truth: Vec<i64> = Vec::<i64>::try_from(&data.test_y.to_kind(Kind::Int64)).unwrap_or_default();
    let guesses: Vec<i64> = Vec::<i64>::try_from(predicted).unwrap_or_default();
    let mut confusion = vec![vec![0i64; classes as usize]; classes as usize];
    for (&t, &p) in truth.iter().zip(&guesses) {
        confusion[t as usize][p as usize] += 1;
    }
    let correct: i64 = (0..classes as usize).map(|c| confusion[c][c]).sum();
    let accuracy = correct as f64 / n_test.max(1) as f64;
    let per_class: Vec<f64> = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| row[c] as f64 / row.iter().sum::<i64>().max(1) as f64)
        .collect();
    let names = data.meta.class_names.clone();
    eprintln!("test accuracy {:.4}", accuracy);
    eprintln!("{:<16} {:>8} {:>8}", "class", "samples", "accuracy");
    for (c, row) in confusion.iter().enumerate() {
        let name = names.as_ref().and_then(|n| n.get(c).cloned()).unwrap_or_else(|| c.to_string());
        eprintln!("{name:<16} {:>8} {:>8.4}", row.iter().sum::<i64>(), per_class[c]);
    }
    Metrics {
        task: "classification".into(),
        main_metric: "accuracy",
        higher_is_better: true,
        n_test,
        scores: Scores::Classification {
            accuracy,
            per_class_accuracy: per_class,
            confusion_matrix: confusion,
            class_names: names,
        },
    }
}
