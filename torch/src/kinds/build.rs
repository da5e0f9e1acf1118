//! The `build` stage kind: resolves a model description against the data's
//! input shape and writes seeded initial weights.
//!
//! Upstream: one `normalise` stage (its `meta.json` gives the input shape and
//! the task). Parameters:
//! - `layers`: a list of layer tables (see the model module for the table
//!   format); without it, `preset` picks one of the tutorial's models;
//! - `preset`: `boston` (Dense(20, relu) -> Dense(1)) or `mnist` (the CNN),
//!   by default `boston` for regression and `mnist` for classification;
//! - `seed` (default 0): seed of the initial weights.
//!
//! Output: `model.json` (a `ModelSpec`) and `init.safetensors`.

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;
use xp::stages::StageJob;

use crate::dataset::Meta;
use crate::model::{self, save_weights, Layer, ModelSpec};

pub fn run(job: &StageJob) -> Result<()> {
    let data = job.upstream_of_kind("normalise")?;
    let meta_path = data.join("meta.json");
    let meta: Meta = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .with_context(|| format!("failed to read `{}`", meta_path.display()))?,
    )
    .with_context(|| format!("`{}` is invalid", meta_path.display()))?;

    let layers = layers(job, &meta)?;
    let spec = ModelSpec {
        input_shape: meta.input_shape.clone(),
        layers,
        task: meta.task.clone(),
        seed: job.int("seed", 0)?,
    };
    check_output_size(&spec, &meta)?;

    tch::manual_seed(spec.seed);
    let vs = VarStore::new(tch::Device::Cpu);
    spec.network(&vs.root())?;
    let count: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    eprintln!("built a model of {} layers and {count} parameters", spec.layers.len());

    let text = serde_json::to_string_pretty(&spec).context("failed to encode the model")?;
    std::fs::write(job.output.join("model.json"), text).context("failed to write `model.json`")?;
    save_weights(&vs, &job.output.join("init.safetensors"))
}

fn layers(job: &StageJob, meta: &Meta) -> Result<Vec<Layer>> {
    if let Some(value) = job.param("layers") {
        let json = serde_json::to_value(value).context("failed to encode `layers`")?;
        return serde_json::from_value(json)
            .with_context(|| format!("parameter `layers` of stage `{}` is invalid", job.stage));
    }
    let default = if meta.task == "regression" { "boston" } else { "mnist" };
    match job.string("preset", default)?.as_str() {
        "boston" => Ok(model::boston_layers()),
        "mnist" => Ok(model::mnist_layers(meta.num_classes.unwrap_or(10))),
        other => bail!("unknown preset `{other}` in stage `{}`: expected `boston` or `mnist`", job.stage),
    }
}

/// Rejects a model whose output does not fit the task: one value for
/// regression, one logit per class for classification.
fn check_output_size(spec: &ModelSpec, meta: &Meta) -> Result<()> {
    let size = spec.output_size()?;
    let expected = match meta.task.as_str() {
        "regression" => 1,
        "classification" => meta.num_classes.unwrap_or(0),
        other => bail!("unknown task `{other}` in the data's meta.json"),
    };
    if size != expected {
        bail!("the model outputs {size} values per sample; a {} task needs {expected}", meta.task);
    }
    Ok(())
}
