//! The `gan_train` stage kind: trains a class-conditional DCGAN (see the
//! `gan` module for the architecture) on the images of a `normalise` stage.
//!
//! Upstream: one `normalise` stage (images [N, C, H, W] in [0, 1] and class
//! labels) and one `train` stage, the classifier whose features measure the
//! generator after every epoch. Parameters and defaults:
//! - architecture: `latent` (100), `embedding` (50), `generator_width` (64),
//!   `discriminator_width` (64);
//! - Adam: `lr` (0.0002), `beta1` (0.5), `beta2` (0.999), for both networks;
//! - `limit_train` (0 = all): train on the first this many training images;
//! - `batch_size` (64), `epochs` (20), `label_smoothing` (0.1: the
//!   discriminator's target for real images is 1 minus it, one-sided);
//! - `metric_samples` (1000): the size of the fixed sample measured per epoch;
//! - `average_decay` (0.999; 0 = off): the generator that is measured and
//!   saved is an exponential moving average of the trained one's weights and
//!   batch-normalisation statistics, updated after every step with the decay
//!   `min(average_decay, (1 + t) / (10 + t))` at step t (the warm-up rule of
//!   TensorFlow's `ExponentialMovingAverage`), which smooths out the
//!   oscillation of GAN training;
//! - `checkpoint_every` (5): also keep the generator of every this many epochs;
//! - `seed` (0): seeds the initial weights, the shuffling, the latent vectors
//!   and the fixed sample.
//!
//! Per epoch, `history.json` records the mean discriminator and generator
//! losses. It also measures a fixed set of latent vectors, with every class
//! equally often, against a fixed sample of training images: the Fréchet
//! distance in the classifier's feature space, and the classifier's accuracy
//! on the class each image was generated for.
//!
//! Output: `gan.json` (a `GanSpec`), `generator.safetensors` (the averaged
//! generator, or the trained one when averaging is off),
//! `generator-trained.safetensors` (the trained one), `discriminator.safetensors`, `checkpoints/generator-epoch-NNN.safetensors`,
//! `history.json` and `volatile/timing.json` (seconds per epoch). With the
//! same seed, threads and inputs, everything but the timing is identical byte
//! for byte.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::{Kind, Reduction, Tensor};
use xp::stages::StageJob;

use crate::dataset::Dataset;
use crate::gan::classifier::{accuracy, Classifier};
use crate::gan::frechet::{frechet_distance, Statistics};
use crate::gan::{balanced_labels, noise, to_model, Discriminator, GanSpec, Generator};
use crate::model::save_weights;

#[derive(Serialize)]
struct Epoch {
    epoch: i64,
    discriminator_loss: f64,
    generator_loss: f64,
    frechet_distance: f64,
    accuracy: f64,
}

#[derive(Serialize)]
struct Timing {
    epoch: i64,
    seconds: f64,
}

struct Settings {
    batch_size: i64,
    epochs: i64,
    smoothing: f64,
    checkpoint_every: i64,
}

/// The fixed latent vectors and real sample that every epoch is measured on.
struct Probe {
    classifier: Classifier,
    latent: Tensor,
    labels: Tensor,
    real: Statistics,
}

struct Gan {
    generator: Generator,
    discriminator: Discriminator,
    generator_store: VarStore,
    discriminator_store: VarStore,
    generator_optimizer: nn::Optimizer,
    discriminator_optimizer: nn::Optimizer,
    average: Option<Average>,
}

/// An exponential moving average of the generator's variables.
struct Average {
    generator: Generator,
    store: VarStore,
    /// Pairs of (trained, averaged) variables, sharing storage with the stores.
    pairs: Vec<(Tensor, Tensor)>,
    decay: f64,
    steps: i64,
}

pub fn run(job: &StageJob) -> Result<()> {
    let mut data = Dataset::read(job.upstream_of_kind("normalise")?)?;
    let limit = job.int("limit_train", 0)?;
    if limit > 0 && limit < data.train_x.size()[0] {
        data.train_x = data.train_x.narrow(0, 0, limit);
        data.train_y = data.train_y.narrow(0, 0, limit);
    }
    let spec = spec(job, &data)?;
    let settings = Settings {
        batch_size: job.int("batch_size", 64)?,
        epochs: job.int("epochs", 20)?,
        smoothing: job.float("label_smoothing", 0.1)?,
        checkpoint_every: job.int("checkpoint_every", 5)?,
    };
    if settings.batch_size < 1 || settings.epochs < 1 {
        bail!(
            "`batch_size` and `epochs` of stage `{}` must be at least 1",
            job.stage
        );
    }
    if !(0.0..0.5).contains(&settings.smoothing) {
        bail!(
            "`label_smoothing` of stage `{}` must be in [0, 0.5)",
            job.stage
        );
    }

    tch::manual_seed(job.int("seed", 0)?);
    let mut gan = Gan::new(job, &spec)?;
    let probe = Probe::new(job, &data, &spec)?;
    let checkpoints = job.output.join("checkpoints");
    std::fs::create_dir_all(&checkpoints).context("failed to create `checkpoints/`")?;

    let (mut epochs, mut timing) = (Vec::new(), Vec::new());
    for epoch in 1..=settings.epochs {
        let started = Instant::now();
        let (d_loss, g_loss) = gan.epoch(&data, &settings);
        let (frechet, accuracy) = probe.measure(gan.measured());
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "epoch {epoch}: D loss {d_loss:.4} G loss {g_loss:.4} Fréchet {frechet:.3} \
             accuracy {accuracy:.4} {seconds:.1}s"
        );
        epochs.push(Epoch {
            epoch,
            discriminator_loss: d_loss,
            generator_loss: g_loss,
            frechet_distance: frechet,
            accuracy,
        });
        timing.push(Timing { epoch, seconds });
        if epoch % settings.checkpoint_every.max(1) == 0 || epoch == settings.epochs {
            save_weights(
                gan.measured_store(),
                &checkpoints.join(format!("generator-epoch-{epoch:03}.safetensors")),
            )?;
        }
    }

    save_weights(
        gan.measured_store(),
        &job.output.join("generator.safetensors"),
    )?;
    save_weights(
        &gan.generator_store,
        &job.output.join("generator-trained.safetensors"),
    )?;
    save_weights(
        &gan.discriminator_store,
        &job.output.join("discriminator.safetensors"),
    )?;
    write_json(&job.output.join("gan.json"), &spec)?;
    write_json(
        &job.output.join("history.json"),
        &serde_json::json!({ "epochs": epochs }),
    )?;
    let volatile = job.output.join("volatile");
    std::fs::create_dir_all(&volatile).context("failed to create `volatile/`")?;
    write_json(&volatile.join("timing.json"), &timing)
}

fn spec(job: &StageJob, data: &Dataset) -> Result<GanSpec> {
    let Some(classes) = data.meta.num_classes.filter(|_| data.is_classification()) else {
        bail!("stage `{}` needs a classification dataset upstream, with `num_classes` in its `meta.json`", job.stage);
    };
    let spec = GanSpec {
        image_shape: data.meta.input_shape.clone(),
        classes,
        latent: job.int("latent", 100)?,
        embedding: job.int("embedding", 50)?,
        generator_width: job.int("generator_width", 64)?,
        discriminator_width: job.int("discriminator_width", 64)?,
    };
    spec.check()
        .with_context(|| format!("stage `{}` cannot build its GAN", job.stage))?;
    Ok(spec)
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("failed to encode JSON")?;
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}

impl Gan {
    fn new(job: &StageJob, spec: &GanSpec) -> Result<Gan> {
        let generator_store = VarStore::new(tch::Device::Cpu);
        let discriminator_store = VarStore::new(tch::Device::Cpu);
        let generator = Generator::new(&generator_store.root(), spec)?;
        let discriminator = Discriminator::new(&discriminator_store.root(), spec)?;
        let adam = nn::Adam {
            beta1: job.float("beta1", 0.5)?,
            beta2: job.float("beta2", 0.999)?,
            ..Default::default()
        };
        let lr = job.float("lr", 0.0002)?;
        let generator_optimizer = adam
            .build(&generator_store, lr)
            .context("failed to create the generator's optimizer")?;
        let discriminator_optimizer = adam
            .build(&discriminator_store, lr)
            .context("failed to create the discriminator's optimizer")?;
        let decay = job.float("average_decay", 0.999)?;
        if !(0.0..1.0).contains(&decay) {
            bail!("`average_decay` of stage `{}` must be in [0, 1)", job.stage);
        }
        let average = if decay > 0.0 {
            Some(Average::new(spec, &generator_store, decay)?)
        } else {
            None
        };
        Ok(Gan {
            generator,
            discriminator,
            generator_store,
            discriminator_store,
            generator_optimizer,
            discriminator_optimizer,
            average,
        })
    }

    /// The generator that is measured and saved: the average when there is one.
    fn measured(&self) -> &Generator {
        self.average
            .as_ref()
            .map_or(&self.generator, |a| &a.generator)
    }

    fn measured_store(&self) -> &VarStore {
        self.average
            .as_ref()
            .map_or(&self.generator_store, |a| &a.store)
    }

    /// Trains on every training image once, in shuffled batches, and returns the mean losses.
    fn epoch(&mut self, data: &Dataset, settings: &Settings) -> (f64, f64) {
        let total = data.train_x.size()[0];
        let order = Tensor::randperm(total, (Kind::Int64, tch::Device::Cpu));
        let (mut d_sum, mut g_sum, mut batches) = (0.0, 0.0, 0);
        for start in (0..total).step_by(settings.batch_size as usize) {
            let indices = order.narrow(0, start, settings.batch_size.min(total - start));
            let real = to_model(&data.train_x.index_select(0, &indices).to_kind(Kind::Float));
            let labels = data.train_y.index_select(0, &indices).to_kind(Kind::Int64);
            let (d_loss, g_loss) = self.step(&real, &labels, settings.smoothing);
            d_sum += d_loss;
            g_sum += g_loss;
            batches += 1;
        }
        (d_sum / batches as f64, g_sum / batches as f64)
    }

    /// One discriminator step and one non-saturating generator step on the
    /// same fakes, generated for the classes of the real batch.
    fn step(&mut self, real: &Tensor, labels: &Tensor, smoothing: f64) -> (f64, f64) {
        let count = real.size()[0];
        let latent = noise(count, self.generator.latent(), None);
        let fake = self.generator.forward(&latent, labels, true);
        let bce = |logits: &Tensor, target: f64| {
            let targets = logits.full_like(target);
            logits.binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, Reduction::Mean)
        };
        let d_loss = bce(
            &self.discriminator.forward(real, labels, true),
            1.0 - smoothing,
        ) + bce(
            &self.discriminator.forward(&fake.detach(), labels, true),
            0.0,
        );
        self.discriminator_optimizer.backward_step(&d_loss);
        let g_loss = bce(&self.discriminator.forward(&fake, labels, true), 1.0);
        self.generator_optimizer.backward_step(&g_loss);
        if let Some(average) = &mut self.average {
            average.update();
        }
        (d_loss.double_value(&[]), g_loss.double_value(&[]))
    }
}

impl Average {
    fn new(spec: &GanSpec, trained: &VarStore, decay: f64) -> Result<Average> {
        let mut store = VarStore::new(tch::Device::Cpu);
        let generator = Generator::new(&store.root(), spec)?;
        store
            .copy(trained)
            .context("failed to copy the generator for its average")?;
        let averaged = store.variables();
        let mut pairs: Vec<(String, Tensor, Tensor)> = trained
            .variables()
            .into_iter()
            .filter_map(|(name, variable)| {
                Some((name.clone(), variable, averaged.get(&name)?.shallow_clone()))
            })
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let pairs = pairs
            .into_iter()
            .map(|(_, trained, average)| (trained, average))
            .collect();
        Ok(Average {
            generator,
            store,
            pairs,
            decay,
            steps: 0,
        })
    }

    fn update(&mut self) {
        let t = self.steps as f64;
        let decay = self.decay.min((1.0 + t) / (10.0 + t));
        tch::no_grad(|| {
            for (trained, average) in &mut self.pairs {
                let _ = average.g_mul_scalar_(decay);
                let _ = average.g_add_(&(trained.detach() * (1.0 - decay)));
            }
        });
        self.steps += 1;
    }
}

impl Probe {
    fn new(job: &StageJob, data: &Dataset, spec: &GanSpec) -> Result<Probe> {
        let classifier = Classifier::load(job.upstream_of_kind("train")?)?;
        let total = data.train_x.size()[0];
        let count = job.int("metric_samples", 1000)?.min(total);
        if count < 2 {
            bail!(
                "stage `{}` needs at least 2 training images for its metric",
                job.stage
            );
        }
        let chosen = Tensor::randperm(total, (Kind::Int64, tch::Device::Cpu)).narrow(0, 0, count);
        let (features, _) =
            classifier.run(&data.train_x.index_select(0, &chosen).to_kind(Kind::Float));
        let latent = noise(count, spec.latent, None);
        let labels = balanced_labels(count, spec.classes);
        Ok(Probe {
            classifier,
            latent,
            labels,
            real: Statistics::of(&features),
        })
    }

    /// Measures the Fréchet distance to the real sample and the classifier's accuracy.
    fn measure(&self, generator: &Generator) -> (f64, f64) {
        let images = generator.generate(&self.latent, &self.labels);
        let (features, logits) = self.classifier.run(&images);
        (
            frechet_distance(&Statistics::of(&features), &self.real),
            accuracy(&logits, &self.labels),
        )
    }
}
