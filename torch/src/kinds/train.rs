//! The `train` stage kind: fits a built model to the training data.
//!
//! Upstream: one `normalise` stage (the data) and one `build` stage (the model
//! and its initial weights). Parameters and defaults:
//! - `optimizer`: `adam` (default) or `sgd`; `lr` (0.001); `momentum` (0, SGD only);
//! - `batch_size` (32), `epochs` (10);
//! - `validation_split` (0.1): the last fraction of the training samples, taken
//!   before shuffling as Keras does, held out to measure validation loss;
//! - `patience` (0 = off): stop when the validation loss has not improved for
//!   this many epochs, and keep the weights of the best epoch;
//! - `seed` (0): seeds the shuffling and dropout.
//!
//! Regression minimises the mean squared error and reports the mean absolute
//! error; classification minimises cross-entropy and reports accuracy.
//!
//! Output: `weights.safetensors`, `model.json` (copied from `build`),
//! `history.json` (per epoch: loss, metric, validation loss and metric) and
//! `volatile/timing.json` (per epoch: seconds and samples per second). With the
//! same seed, threads and inputs, everything but the timing is identical byte
//! for byte; xp leaves `volatile/` out of the output's hash, so a rerun that
//! only changes the timing does not rerun the stages downstream.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::nn::{self, ModuleT, OptimizerConfig, VarStore};
use tch::{Kind, Tensor};
use xp::stages::StageJob;

use crate::dataset::Dataset;
use crate::model::{load_weights, predict, save_weights, ModelSpec};

#[derive(Serialize)]
struct Epoch {
    epoch: i64,
    loss: f64,
    metric: f64,
    val_loss: Option<f64>,
    val_metric: Option<f64>,
}

#[derive(Serialize)]
struct Timing {
    epoch: i64,
    seconds: f64,
    samples_per_second: f64,
}

#[derive(Serialize)]
struct History {
    loss: &'static str,
    metric: &'static str,
    epochs: Vec<Epoch>,
    best_epoch: i64,
    stopped_early: bool,
    #[serde(skip)]
    timing: Vec<Timing>,
}

struct Settings {
    batch_size: i64,
    epochs: i64,
    validation_split: f64,
    patience: i64,
}

pub fn run(job: &StageJob) -> Result<()> {
    let data = Dataset::read(job.upstream_of_kind("normalise")?)?;
    let built = job.upstream_of_kind("build")?;
    let spec = ModelSpec::read(&built.join("model.json"))?;
    let settings = Settings {
        batch_size: job.int("batch_size", 32)?,
        epochs: job.int("epochs", 10)?,
        validation_split: job.float("validation_split", 0.1)?,
        patience: job.int("patience", 0)?,
    };
    if settings.batch_size < 1 || settings.epochs < 1 {
        bail!("`batch_size` and `epochs` of stage `{}` must be at least 1", job.stage);
    }
    if !(0.0..1.0).contains(&settings.validation_split) {
        bail!("`validation_split` of stage `{}` must be in [0, 1)", job.stage);
    }

    tch::manual_seed(job.int("seed", 0)?);
    let mut vs = VarStore::new(tch::Device::Cpu);
    let network = spec.network(&vs.root())?;
    load_weights(&mut vs, &built.join("init.safetensors"))?;
    let mut optimizer = optimizer(job, &vs)?;

    let history = fit(&network, &mut vs, &mut optimizer, &data, &settings)?;
    save_weights(&vs, &job.output.join("weights.safetensors"))?;
    std::fs::copy(built.join("model.json"), job.output.join("model.json"))
        .context("failed to copy `model.json`")?;
    let text = serde_json::to_string_pretty(&history).context("failed to encode the history")?;
    std::fs::write(job.output.join("history.json"), text).context("failed to write `history.json`")?;
    let volatile = job.output.join("volatile");
    std::fs::create_dir_all(&volatile).context("failed to create `volatile/`")?;
    let text = serde_json::to_string_pretty(&history.timing).context("failed to encode the timing")?;
    std::fs::write(volatile.join("timing.json"), text).context("failed to write `volatile/timing.json`")
}

fn optimizer(job: &StageJob, vs: &VarStore) -> Result<nn::Optimizer> {
    let lr = job.float("lr", 0.001)?;
    let built = match job.string("optimizer", "adam")?.as_str() {
        "adam" => nn::Adam::default().build(vs, lr),
        "sgd" => nn::Sgd { momentum: job.float("momentum", 0.0)?, ..Default::default() }.build(vs, lr),
        other => bail!("unknown optimizer `{other}` in stage `{}`: expected `adam` or `sgd`", job.stage),
    };
    built.context("failed to create the optimizer")
}

/// Loss and metric of a batch: MSE and MAE, or cross-entropy and accuracy.
fn loss_and_metric(output: &Tensor, target: &Tensor, classification: bool) -> (Tensor, f64) {
    if classification {
        let loss = output.cross_entropy_for_logits(target);
        let correct = output.argmax(-1, false).eq_tensor(target).to_kind(Kind::Float).mean(Kind::Float);
        (loss, correct.double_value(&[]))
    } else {
        let loss = output.mse_loss(target, tch::Reduction::Mean);
        let mae = (output - target).abs().mean(Kind::Float);
        (loss, mae.double_value(&[]))
    }
}

fn fit(
    network: &impl ModuleT,
    vs: &mut VarStore,
    optimizer: &mut nn::Optimizer,
    data: &Dataset,
    settings: &Settings,
) -> Result<History> {
    let classification = data.is_classification();
    let total = data.train_x.size()[0];
    let split_at = ((total as f64) * (1.0 - settings.validation_split)) as i64;
    if split_at < 1 {
        bail!("no training samples are left after the validation split");
    }
    let (train_x, train_y) = (data.train_x.narrow(0, 0, split_at), data.train_y.narrow(0, 0, split_at));
    let validation = (split_at < total).then(|| {
        let length = total - split_at;
        (data.train_x.narrow(0, split_at, length), data.train_y.narrow(0, split_at, length))
    });

    let mut epochs = Vec::new();
    let mut timing = Vec::new();
    let mut best: Option<(f64, i64, Vec<Tensor>)> = None;
    let mut stopped_early = false;
    for epoch in 1..=settings.epochs {
        let started = Instant::now();
        let order = Tensor::randperm(split_at, (Kind::Int64, tch::Device::Cpu));
        let (mut loss_sum, mut metric_sum) = (0.0, 0.0);
        for start in (0..split_at).step_by(settings.batch_size as usize) {
            let length = settings.batch_size.min(split_at - start);
            let indices = order.narrow(0, start, length);
            let output = network.forward_t(&train_x.index_select(0, &indices), true);
            let (loss, metric) = loss_and_metric(&output, &train_y.index_select(0, &indices), classification);
            optimizer.backward_step(&loss);
            loss_sum += loss.double_value(&[]) * length as f64;
            metric_sum += metric * length as f64;
        }
        let seconds = started.elapsed().as_secs_f64();
        let (val_loss, val_metric) = match &validation {
            Some((x, y)) => {
                let (loss, metric) = loss_and_metric(&predict(network, x, 256), y, classification);
                (Some(loss.double_value(&[])), Some(metric))
            }
            None => (None, None),
        };
        let record = Epoch {
            epoch,
            loss: loss_sum / split_at as f64,
            metric: metric_sum / split_at as f64,
            val_loss,
            val_metric,
        };
        let samples_per_second = split_at as f64 / seconds;
        eprintln!(
            "epoch {epoch}: loss {:.5} metric {:.5} val_loss {:?} {samples_per_second:.0} samples/s",
            record.loss, record.metric, record.val_loss
        );
        epochs.push(record);
        timing.push(Timing { epoch, seconds, samples_per_second });
        if let (true, Some(current)) = (settings.patience > 0, val_loss) {
            let improved = best.as_ref().is_none_or(|(loss, _, _)| current < *loss);
            if improved {
                best = Some((current, epoch, snapshot(vs)));
            } else if epoch - best.as_ref().map_or(0, |b| b.1) >= settings.patience {
                stopped_early = true;
                break;
            }
        }
    }
    let best_epoch = match best {
        Some((_, epoch, weights)) => {
            restore(vs, &weights);
            epoch
        }
        None => epochs.len() as i64,
    };
    let (loss, metric) = if classification { ("cross_entropy", "accuracy") } else { ("mse", "mae") };
    Ok(History { loss, metric, epochs, best_epoch, stopped_early, timing })
}

/// Copies every variable, in the variable store's name order.
fn snapshot(vs: &VarStore) -> Vec<Tensor> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables.into_iter().map(|(_, t)| t.detach().copy()).collect()
}

fn restore(vs: &VarStore, weights: &[Tensor]) {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for ((_, variable), saved) in variables.iter_mut().zip(weights) {
            variable.copy_(saved);
        }
    });
}
