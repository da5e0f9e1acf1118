//! The `gan_evaluate` stage kind: judges a trained generator with the
//! classifier of the same data.
//!
//! Upstream: one `normalise` stage (the images), one `train` stage (the
//! classifier) and one `gan_train` stage. Parameters: `samples` (1000), the
//! size of each set compared, at most the number of test images; `seed` (0),
//! which picks the real sample and the latent vectors; `truncation` (0 = off),
//! the truncation of the latent vectors.
//!
//! Three sets of `samples` images are passed through the classifier: a real
//! sample of the training images (what the GAN learnt from), as many generated
//! images asked for the same classes, and held-out test images. Output:
//! `metrics.json` with
//! - `frechet_distance`: generated against the real sample, in the
//!   classifier's feature space (main metric, lower is better);
//! - `frechet_distance_real`: held-out test images against the real sample,
//!   the floor a perfect generator would reach with this many samples;
//! - `accuracy`, `per_class_accuracy`: how often the classifier recognises a
//!   generated image as the class it was generated for, overall and per class;
//! - `accuracy_real`: the classifier's accuracy on the held-out images.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::nn::VarStore;
use tch::{Kind, Tensor};
use xp::stages::StageJob;

use crate::dataset::Dataset;
use crate::gan::classifier::{accuracy, Classifier};
use crate::gan::frechet::{frechet_distance, Statistics};
use crate::gan::{noise, GanSpec, Generator};
use crate::model::load_weights;

#[derive(Serialize)]
struct Metrics {
    main_metric: &'static str,
    higher_is_better: bool,
    samples: i64,
    feature_size: i64,
    truncation: Option<f64>,
    frechet_distance: f64,
    frechet_distance_real: f64,
    accuracy: f64,
    per_class_accuracy: Vec<f64>,
    accuracy_real: f64,
    class_names: Option<Vec<String>>,
}

pub fn run(job: &StageJob) -> Result<()> {
    let data = Dataset::read(job.upstream_of_kind("normalise")?)?;
    let classifier = Classifier::load(job.upstream_of_kind("train")?)?;
    let trained = job.upstream_of_kind("gan_train")?;
    let spec = GanSpec::read(&trained.join("gan.json"))?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let generator = Generator::new(&vs.root(), &spec)?;
    load_weights(&mut vs, &trained.join("generator.safetensors"))?;

    let (train_count, test_count) = (data.train_x.size()[0], data.test_x.size()[0]);
    let samples = job.int("samples", 1000)?.min(train_count).min(test_count);
    if samples < 2 {
        bail!(
            "stage `{}` needs at least 2 training and 2 test images",
            job.stage
        );
    }
    let truncation = Some(job.float("truncation", 0.0)?).filter(|&t| t > 0.0);
    tch::manual_seed(job.int("seed", 0)?);
    let chosen =
        Tensor::randperm(train_count, (Kind::Int64, tch::Device::Cpu)).narrow(0, 0, samples);
    let real_labels = data.train_y.index_select(0, &chosen).to_kind(Kind::Int64);
    let (real, _) = classifier.run(&data.train_x.index_select(0, &chosen).to_kind(Kind::Float));
    let real = Statistics::of(&real);

    let images = generator.generate(&noise(samples, spec.latent, truncation), &real_labels);
    let (generated, logits) = classifier.run(&images);
    let held_out_labels = data.test_y.narrow(0, 0, samples).to_kind(Kind::Int64);
    let (held_out, held_out_logits) =
        classifier.run(&data.test_x.narrow(0, 0, samples).to_kind(Kind::Float));

    let metrics = Metrics {
        main_metric: "frechet_distance",
        higher_is_better: false,
        samples,
        feature_size: classifier.width,
        truncation,
        frechet_distance: frechet_distance(&Statistics::of(&generated), &real),
        frechet_distance_real: frechet_distance(&Statistics::of(&held_out), &real),
        accuracy: accuracy(&logits, &real_labels),
        per_class_accuracy: per_class(&logits, &real_labels, spec.classes)?,
        accuracy_real: accuracy(&held_out_logits, &held_out_labels),
        class_names: data.meta.class_names.clone(),
    };
    eprintln!(
        "Fréchet distance {:.3} (held-out real images: {:.3}); accuracy on generated images {:.4} \
         (on real: {:.4})",
        metrics.frechet_distance,
        metrics.frechet_distance_real,
        metrics.accuracy,
        metrics.accuracy_real
    );
    let text = serde_json::to_string_pretty(&metrics).context("failed to encode the metrics")?;
    std::fs::write(job.output.join("metrics.json"), text).context("failed to write `metrics.json`")
}

fn per_class(logits: &Tensor, labels: &Tensor, classes: i64) -> Result<Vec<f64>> {
    let predicted = Vec::<i64>::try_from(&logits.argmax(-1, false))?;
    let truth = Vec::<i64>::try_from(labels)?;
    let (mut right, mut seen) = (
        vec![0usize; classes as usize],
        vec![0usize; classes as usize],
    );
    for (&t, &p) in truth.iter().zip(&predicted) {
        seen[t as usize] += 1;
        right[t as usize] += usize::from(t == p);
    }
    Ok(right
        .iter()
        .zip(&seen)
        .map(|(&r, &s)| r as f64 / s.max(1) as f64)
        .collect())
}
