//! The `gan_plot` stage kind: figures of a trained class-conditional GAN, the
//! counterparts of the MIT tutorial's BigGAN figures.
//!
//! Upstream: one `normalise` stage (for the class names) and one `gan_train`
//! stage. Parameters: `title` (default: the stage id), `columns` (10), the
//! images per row, `truncations` (`[2.0, 1.0, 0.5, 0.25]`), and `seed` (0).
//!
//! Output:
//! - `classes.png`: one row per class, each image from a different latent vector;
//! - `interpolation_latent.png`: per row, one class while the latent vector
//!   moves in a straight line between two random points;
//! - `interpolation_class.png`: per row, one latent vector while the class
//!   embedding moves from one class to the next;
//! - `truncation.png`: one row per truncation level, one column per class;
//!   lower levels trade variety for typical, cleaner images;
//! - `losses.png`: discriminator and generator loss per epoch;
//! - `metrics.png`: the Fréchet distance per epoch, and `accuracy.png`: the
//!   classifier's accuracy on the requested class per epoch.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::style::{BLUE, RED};
use serde::Deserialize;
use tch::nn::VarStore;
use tch::{Kind, Tensor};
use xp::spec::Value;
use xp::stages::StageJob;

use crate::dataset::Meta;
use crate::gan::{noise, to_pixels, GanSpec, Generator};
use crate::model::load_weights;
use crate::plot::{self, image_rows, ImageRow, Labels, Series};

#[derive(Deserialize)]
struct History {
    epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct Epoch {
    epoch: i64,
    discriminator_loss: f64,
    generator_loss: f64,
    frechet_distance: f64,
    accuracy: f64,
}

struct Figures<'a> {
    generator: Generator,
    spec: GanSpec,
    names: Vec<String>,
    title: String,
    columns: i64,
    output: &'a Path,
}

pub fn run(job: &StageJob) -> Result<()> {
    let meta: Meta = read_json(&job.upstream_of_kind("normalise")?.join("meta.json"))?;
    let trained = job.upstream_of_kind("gan_train")?;
    let spec = GanSpec::read(&trained.join("gan.json"))?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let generator = Generator::new(&vs.root(), &spec)?;
    load_weights(&mut vs, &trained.join("generator.safetensors"))?;
    let names = match meta.class_names {
        Some(names) if names.len() as i64 == spec.classes => names,
        _ => (0..spec.classes).map(|c| c.to_string()).collect(),
    };
    let seed = job.int("seed", 0)?;
    let figures = Figures {
        generator,
        spec,
        names,
        title: job.string("title", &job.stage)?,
        columns: job.int("columns", 10)?.max(2),
        output: &job.output,
    };
    tch::manual_seed(seed);
    figures.classes()?;
    figures.latent_interpolation()?;
    figures.class_interpolation()?;
    figures.truncation(&truncations(job)?, seed)?;
    let history: History = read_json(&trained.join("history.json"))?;
    curves(&job.output, &figures.title, &history)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is invalid", path.display()))
}

fn truncations(job: &StageJob) -> Result<Vec<f64>> {
    let Some(value) = job.param("truncations") else {
        return Ok(vec![2.0, 1.0, 0.5, 0.25]);
    };
    let numbers = match value {
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::Float(x) => Some(*x),
                Value::Int(i) => Some(*i as f64),
                _ => None,
            })
            .collect::<Option<Vec<f64>>>(),
        _ => None,
    };
    numbers
        .filter(|n| n.iter().all(|&t| t > 0.0))
        .with_context(|| {
            format!(
                "parameter `truncations` of stage `{}` must be a list of positive numbers",
                job.stage
            )
        })
}

/// Splits generated pixels [N, C, H, W] into one list of pixels per image (first channel).
fn pixels(images: &Tensor) -> Result<Vec<Vec<f32>>> {
    let count = images.size()[0];
    (0..count)
        .map(|i| {
            Ok(Vec::<f32>::try_from(
                &images.get(i).get(0).flatten(0, -1).to_kind(Kind::Float),
            )?)
        })
        .collect()
}

/// Points on the straight lines from each row of `from` to the same row of
/// `to`: `steps` per line, rows first.
fn lerp(from: &Tensor, to: &Tensor, steps: i64) -> Tensor {
    let t = Tensor::linspace(0.0, 1.0, steps, (Kind::Float, tch::Device::Cpu)).view([1, steps, 1]);
    let (from, to) = (from.unsqueeze(1), to.unsqueeze(1));
    (&from + (to - &from) * t).flatten(0, 1)
}

impl Figures<'_> {
    fn width(&self) -> usize {
        self.spec.image_shape[2] as usize
    }

    fn draw(
        &self,
        file: &str,
        caption: &str,
        labels: Vec<String>,
        images: &Tensor,
        columns: &[String],
    ) -> Result<()> {
        let all = pixels(images)?;
        let per_row = all.len() / labels.len().max(1);
        let rows: Vec<ImageRow> = labels
            .into_iter()
            .zip(all.chunks(per_row.max(1)))
            .map(|(label, images)| ImageRow {
                label,
                images: images.to_vec(),
            })
            .collect();
        image_rows(
            &self.output.join(file),
            &format!("{}: {caption}", self.title),
            &rows,
            self.width(),
            columns,
        )
    }

    fn classes(&self) -> Result<()> {
        let (classes, columns) = (self.spec.classes, self.columns);
        let labels = Tensor::arange(classes, (Kind::Int64, tch::Device::Cpu))
            .repeat_interleave_self_int(columns, 0, None);
        let images = self
            .generator
            .generate(&noise(classes * columns, self.spec.latent, None), &labels);
        self.draw(
            "classes.png",
            "one row per class",
            self.names.clone(),
            &images,
            &[],
        )
    }

    fn latent_interpolation(&self) -> Result<()> {
        let (rows, steps) = (self.spec.classes.min(6), self.columns);
        let from = noise(rows, self.spec.latent, None);
        let to = noise(rows, self.spec.latent, None);
        let latent = lerp(&from, &to, steps);
        let labels = Tensor::arange(rows, (Kind::Int64, tch::Device::Cpu))
            .repeat_interleave_self_int(steps, 0, None);
        let images = self.generator.generate(&latent, &labels);
        let names = self.names[..rows as usize].to_vec();
        self.draw(
            "interpolation_latent.png",
            "interpolation in latent space, one class per row",
            names,
            &images,
            &[],
        )
    }

    fn class_interpolation(&self) -> Result<()> {
        let (rows, steps) = (self.spec.classes.min(6), self.columns);
        let classes = self.spec.classes;
        let from_class = Tensor::arange(rows, (Kind::Int64, tch::Device::Cpu));
        let to_class = (&from_class + 1).remainder(classes);
        let embedded = tch::no_grad(|| {
            lerp(
                &self.generator.embed(&from_class),
                &self.generator.embed(&to_class),
                steps,
            )
        });
        let latent = noise(rows, self.spec.latent, None).repeat_interleave_self_int(steps, 0, None);
        let images = tch::no_grad(|| to_pixels(&self.generator.decode(&latent, &embedded, false)));
        let names: Vec<String> = (0..rows as usize)
            .map(|r| {
                format!(
                    "{} → {}",
                    self.names[r],
                    self.names[(r + 1) % classes as usize]
                )
            })
            .collect();
        self.draw(
            "interpolation_class.png",
            "interpolation between class embeddings",
            names,
            &images,
            &[],
        )
    }

    fn truncation(&self, levels: &[f64], seed: i64) -> Result<()> {
        let classes = self.spec.classes;
        let labels = Tensor::arange(classes, (Kind::Int64, tch::Device::Cpu));
        let mut batches = Vec::new();
        for &level in levels {
            // The same seed for each level keeps every value within the
            // limit, so rows differ only where the truncation bites.
            tch::manual_seed(seed + 1);
            batches.push(
                self.generator
                    .generate(&noise(classes, self.spec.latent, Some(level)), &labels),
            );
        }
        let names = levels.iter().map(|l| format!("truncation {l}")).collect();
        let images = Tensor::cat(&batches, 0);
        self.draw(
            "truncation.png",
            "samples at several truncation levels",
            names,
            &images,
            &self.names,
        )
    }
}

fn curves(output: &Path, title: &str, history: &History) -> Result<()> {
    let points = |f: fn(&Epoch) -> f64| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, f(e)))
            .collect()
    };
    let losses = [
        Series {
            name: "discriminator",
            points: points(|e| e.discriminator_loss),
            color: BLUE,
        },
        Series {
            name: "generator",
            points: points(|e| e.generator_loss),
            color: RED,
        },
    ];
    let caption = format!("{title}: losses per epoch");
    plot::line_chart(
        &output.join("losses.png"),
        &Labels {
            title: &caption,
            x: "epoch",
            y: "binary cross-entropy",
        },
        &losses,
    )?;
    let frechet = [Series {
        name: "generated vs real",
        points: points(|e| e.frechet_distance),
        color: BLUE,
    }];
    let caption = format!("{title}: Fréchet distance per epoch");
    let labels = Labels {
        title: &caption,
        x: "epoch",
        y: "Fréchet distance (classifier features)",
    };
    plot::line_chart(&output.join("metrics.png"), &labels, &frechet)?;
    let accuracy = [Series {
        name: "requested class recognised",
        points: points(|e| e.accuracy),
        color: BLUE,
    }];
    let caption = format!("{title}: classifier accuracy on generated images");
    plot::line_chart(
        &output.join("accuracy.png"),
        &Labels {
            title: &caption,
            x: "epoch",
            y: "accuracy",
        },
        &accuracy,
    )
}
