//! The `seg_evaluate` stage kind: scores a trained segmentation network on
//! the held-out scenes of its data stage.
//!
//! Upstream: one scene data stage and one `seg_train` stage. Parameter:
//! `batch_size` (16), scenes per forward pass.
//!
//! Prints the per-class table (IoU and share of labelled pixels) and writes
//! `metrics.json`:
//! - `mean_iou`: the mean over the classes present in the held-out ground
//!   truth of intersection over union (main metric, higher is better);
//! - `pixel_accuracy`: the fraction of labelled pixels predicted right;
//! - `per_class_iou`: by class name, `null` for classes absent from the
//!   ground truth;
//! - `confusion_matrix`: pixel counts with rows by true class and columns by
//!   predicted class, both in train id order as in `class_names`;
//! - `data`: `synthetic` or `real`, from the data stage.
//!
//! Also writes `predictions.safetensors` (`predictions`: u8 train ids
//! [N, H, W]) for the plots.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Kind, Tensor};
use xp::stages::StageJob;

use crate::model::load_weights;
use crate::seg::metrics::Confusion;
use crate::seg::model::{predict, SegNet, SegSpec};
use crate::seg::{data_upstream, write_json, Scenes, CLASSES};

#[derive(Serialize)]
struct Metrics {
    main_metric: &'static str,
    higher_is_better: bool,
    data: String,
    n_test: i64,
    mean_iou: f64,
    pixel_accuracy: f64,
    per_class_iou: BTreeMap<String, Option<f64>>,
    class_names: Vec<String>,
    confusion_matrix: Vec<Vec<i64>>,
}

pub fn run(job: &StageJob) -> Result<()> {
    let scenes = Scenes::read(data_upstream(job)?)?;
    let trained = job.upstream_of_kind("seg_train")?;
    let spec = SegSpec::read(&trained.join("seg_model.json"))?;
    spec.check_size(scenes.meta.width, scenes.meta.height)?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let network = SegNet::new(&vs.root(), &spec)?;
    load_weights(&mut vs, &trained.join("weights.safetensors"))?;

    let predicted = predict(
        &network,
        &scenes.test_images,
        job.int("batch_size", 16)?.max(1),
    );
    let mut confusion = Confusion::new();
    confusion.add(&predicted, &scenes.test_labels);
    let iou = confusion.iou();
    let metrics = Metrics {
        main_metric: "mean_iou",
        higher_is_better: true,
        data: scenes.meta.source.clone(),
        n_test: scenes.test_images.size()[0],
        mean_iou: confusion.mean_iou(),
        pixel_accuracy: confusion.pixel_accuracy(),
        per_class_iou: CLASSES
            .iter()
            .zip(&iou)
            .map(|((name, _), value)| (name.to_string(), *value))
            .collect(),
        class_names: CLASSES.iter().map(|(name, _)| name.to_string()).collect(),
        confusion_matrix: confusion.0.clone(),
    };
    print_table(&metrics, &confusion, &iou);
    write_json(&job.output.join("metrics.json"), &metrics)?;
    let tensors = [("predictions", predicted.to_kind(Kind::Uint8))];
    Tensor::write_safetensors(&tensors, job.output.join("predictions.safetensors"))
        .context("failed to write `predictions.safetensors`")
}

fn print_table(metrics: &Metrics, confusion: &Confusion, iou: &[Option<f64>]) {
    let total: i64 = confusion.0.iter().flatten().sum();
    eprintln!("{} held-out {} scenes", metrics.n_test, metrics.data);
    eprintln!("{:<14} {:>8} {:>8}", "class", "IoU", "pixels");
    for (class, (name, _)) in CLASSES.iter().enumerate() {
        let Some(value) = iou[class] else { continue };
        let share = confusion.0[class].iter().sum::<i64>() as f64 / total.max(1) as f64;
        eprintln!("{name:<14} {value:>8.4} {:>7.2}%", share * 100.0);
    }
    eprintln!("{:<14} {:>8.4}", "mean IoU", metrics.mean_iou);
    eprintln!("{:<14} {:>8.4}", "pixel accuracy", metrics.pixel_accuracy);
}
