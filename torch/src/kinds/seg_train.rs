//! The `seg_train` stage kind: trains the network of a `seg_build` stage on
//! the scenes of a data stage, with pixel-wise cross-entropy that skips
//! pixels labelled 255.
//!
//! Upstream: one scene data stage (`seg_generate` or `seg_import`) and one
//! `seg_build` stage. Parameters and defaults:
//! - Adam: `lr` (0.003), `weight_decay` (0), `schedule` (`poly`: the rate
//!   falls as `lr (1 - step / steps)^0.9`, DeepLab's schedule; or
//!   `constant`);
//! - `epochs` (5), `batch_size` (8);
//! - `validation_split` (0.1): the fraction of the training scenes, taken
//!   from the end, that is kept out of training and scored after every epoch;
//! - `flip` (true): mirrors each training scene left to right with
//!   probability 1/2;
//! - `class_weights` (`none`, or `balanced`: each class weighted by the
//!   inverse square root of its share of the training pixels, scaled to a
//!   mean of 1);
//! - `seed` (0): seeds the shuffling and the flips.
//!
//! Output: `weights.safetensors`, `seg_model.json` (a copy of the
//! architecture), `history.json` (per epoch: `loss`, `val_loss`,
//! `val_mean_iou`, `val_pixel_accuracy`, `lr`) and `volatile/timing.json`.
//! With the same seed, threads and inputs, everything but the timing is
//! identical byte for byte.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::nn::{self, ModuleT, OptimizerConfig, VarStore};
use tch::{Kind, Reduction, Tensor};
use xp::stages::StageJob;

use crate::model::{load_weights, save_weights};
use crate::seg::metrics::Confusion;
use crate::seg::model::{SegNet, SegSpec};
use crate::seg::{data_upstream, to_input, write_json, Scenes, CLASSES, CLASS_COUNT, IGNORE};

#[derive(Serialize)]
struct Epoch {
    epoch: i64,
    loss: f64,
    val_loss: Option<f64>,
    val_mean_iou: Option<f64>,
    val_pixel_accuracy: Option<f64>,
    lr: f64,
}

#[derive(Serialize)]
struct Timing {
    epoch: i64,
    seconds: f64,
}

struct Settings {
    lr: f64,
    poly: bool,
    epochs: i64,
    batch_size: i64,
    flip: bool,
}

pub fn run(job: &StageJob) -> Result<()> {
    let scenes = Scenes::read(data_upstream(job)?)?;
    let built = job.upstream_of_kind("seg_build")?;
    let spec = SegSpec::read(&built.join("seg_model.json"))?;
    spec.check_size(scenes.meta.width, scenes.meta.height)?;
    let settings = Settings {
        lr: job.float("lr", 0.003)?,
        poly: match job.string("schedule", "poly")?.as_str() {
            "poly" => true,
            "constant" => false,
            other => bail!(
                "`schedule` of stage `{}` must be `poly` or `constant`, not `{other}`",
                job.stage
            ),
        },
        epochs: job.int("epochs", 5)?,
        batch_size: job.int("batch_size", 8)?,
        flip: job.boolean("flip", true)?,
    };
    if settings.epochs < 1 || settings.batch_size < 1 || settings.lr <= 0.0 {
        bail!(
            "`epochs`, `batch_size` and `lr` of stage `{}` must be positive",
            job.stage
        );
    }
    let weights = class_weights(job, &scenes)?;

    let total = scenes.train_images.size()[0];
    let fraction = job.float("validation_split", 0.1)?;
    if !(0.0..1.0).contains(&fraction) {
        bail!(
            "`validation_split` of stage `{}` must be in [0, 1)",
            job.stage
        );
    }
    let validation = (total as f64 * fraction).round() as i64;
    let trained = total - validation;
    if trained < 1 {
        bail!(
            "stage `{}` has no training scenes left after the validation split",
            job.stage
        );
    }
    let (train_images, train_labels) = (
        scenes.train_images.narrow(0, 0, trained),
        scenes.train_labels.narrow(0, 0, trained),
    );
    let (val_images, val_labels) = (
        scenes.train_images.narrow(0, trained, validation),
        scenes.train_labels.narrow(0, trained, validation),
    );

    let mut vs = VarStore::new(tch::Device::Cpu);
    let network = SegNet::new(&vs.root(), &spec)?;
    load_weights(&mut vs, &built.join("init.safetensors"))?;
    let decay = job.float("weight_decay", 0.0)?;
    let mut optimizer = nn::Adam {
        wd: decay,
        ..Default::default()
    }
    .build(&vs, settings.lr)?;
    tch::manual_seed(job.int("seed", 0)?);

    let steps_per_epoch = (trained + settings.batch_size - 1) / settings.batch_size;
    let steps = steps_per_epoch * settings.epochs;
    let (mut history, mut timing) = (Vec::new(), Vec::new());
    let mut step = 0;
    for epoch in 1..=settings.epochs {
        let started = Instant::now();
        let order = Tensor::randperm(trained, (Kind::Int64, tch::Device::Cpu));
        let (mut loss_sum, mut batches) = (0.0, 0);
        let mut lr = settings.lr;
        for start in (0..trained).step_by(settings.batch_size as usize) {
            lr = if settings.poly {
                settings.lr * (1.0 - step as f64 / steps as f64).powf(0.9)
            } else {
                settings.lr
            };
            optimizer.set_lr(lr);
            let chosen = order.narrow(0, start, settings.batch_size.min(trained - start));
            let (images, labels) = batch(&train_images, &train_labels, &chosen, settings.flip);
            let logits = network.forward_t(&to_input(&images), true);
            let loss = logits.cross_entropy_loss(
                &labels.to_kind(Kind::Int64),
                weights.as_ref(),
                Reduction::Mean,
                IGNORE as i64,
                0.0,
            );
            optimizer.backward_step(&loss);
            loss_sum += loss.double_value(&[]);
            batches += 1;
            step += 1;
        }
        let loss = loss_sum / batches.max(1) as f64;
        let scored = (validation > 0).then(|| {
            score(
                &network,
                &val_images,
                &val_labels,
                weights.as_ref(),
                settings.batch_size,
            )
        });
        let seconds = started.elapsed().as_secs_f64();
        let record = Epoch {
            epoch,
            loss,
            val_loss: scored.as_ref().map(|s| s.0),
            val_mean_iou: scored.as_ref().map(|s| s.1.mean_iou()),
            val_pixel_accuracy: scored.as_ref().map(|s| s.1.pixel_accuracy()),
            lr,
        };
        eprintln!(
            "epoch {epoch}: loss {loss:.4} validation loss {} mean IoU {} pixel accuracy {} {seconds:.1}s",
            shown(record.val_loss),
            shown(record.val_mean_iou),
            shown(record.val_pixel_accuracy)
        );
        history.push(record);
        timing.push(Timing { epoch, seconds });
    }

    save_weights(&vs, &job.output.join("weights.safetensors"))?;
    write_json(&job.output.join("seg_model.json"), &spec)?;
    write_json(
        &job.output.join("history.json"),
        &serde_json::json!({ "epochs": history }),
    )?;
    let volatile = job.output.join("volatile");
    std::fs::create_dir_all(&volatile).context("failed to create `volatile/`")?;
    write_json(&volatile.join("timing.json"), &timing)
}

fn shown(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

/// Returns the scenes `chosen`, each mirrored left to right with
/// probability 1/2 when `flip` is on.
fn batch(images: &Tensor, labels: &Tensor, chosen: &Tensor, flip: bool) -> (Tensor, Tensor) {
    let (images, labels) = (
        images.index_select(0, chosen),
        labels.index_select(0, chosen),
    );
    if !flip {
        return (images, labels);
    }
    let mirrored = Tensor::rand([chosen.size()[0]], (Kind::Float, tch::Device::Cpu)).lt(0.5);
    let images = images
        .flip([3])
        .where_self(&mirrored.view([-1, 1, 1, 1]), &images);
    let labels = labels
        .flip([2])
        .where_self(&mirrored.view([-1, 1, 1]), &labels);
    (images, labels)
}

/// Returns the mean loss and the confusion matrix on held-out scenes.
fn score(
    network: &SegNet,
    images: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    batch_size: i64,
) -> (f64, Confusion) {
    let count = images.size()[0];
    let mut confusion = Confusion::new();
    let (mut loss_sum, mut pixels) = (0.0, 0.0);
    tch::no_grad(|| {
        for start in (0..count).step_by(batch_size as usize) {
            let size = batch_size.min(count - start);
            let truth = labels.narrow(0, start, size);
            let logits = network.forward_t(&to_input(&images.narrow(0, start, size)), false);
            let target = truth.to_kind(Kind::Int64);
            let loss =
                logits.cross_entropy_loss(&target, weights, Reduction::Mean, IGNORE as i64, 0.0);
            let labelled = target.ne(IGNORE as i64).sum(Kind::Double).double_value(&[]);
            loss_sum += loss.double_value(&[]) * labelled;
            pixels += labelled;
            confusion.add(&logits.argmax(1, false), &truth);
        }
    });
    (loss_sum / pixels.max(1.0), confusion)
}

/// Returns the loss weight of each class for the `class_weights` setting.
fn class_weights(job: &StageJob, scenes: &Scenes) -> Result<Option<Tensor>> {
    match job.string("class_weights", "none")?.as_str() {
        "none" => Ok(None),
        "balanced" => {
            let counts = &scenes.meta.train_class_pixels;
            let total: i64 = counts.iter().sum();
            let raw: Vec<f64> = counts
                .iter()
                .map(|&count| {
                    if count > 0 {
                        (total as f64 / count as f64).sqrt()
                    } else {
                        0.0
                    }
                })
                .collect();
            let present = raw.iter().filter(|&&w| w > 0.0).count().max(1);
            let mean = raw.iter().sum::<f64>() / present as f64;
            let weights: Vec<f32> = raw
                .iter()
                .map(|&w| if w > 0.0 { (w / mean) as f32 } else { 1.0 })
                .collect();
            debug_assert_eq!(weights.len(), CLASSES.len());
            Ok(Some(Tensor::from_slice(&weights).view([CLASS_COUNT])))
        }
        other => bail!(
            "`class_weights` of stage `{}` must be `none` or `balanced`, not `{other}`",
            job.stage
        ),
    }
}
