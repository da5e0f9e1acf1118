//! A class-conditional DCGAN for small grey images, shared by the `gan_train`,
//! `gan_evaluate` and `gan_plot` stage kinds.
//!
//! The generator maps a latent vector and a learned class embedding to an
//! image: a linear projection to `2w x H/4 x W/4`, then two transposed
//! convolutions (4x4, stride 2) that double the size each, with batch
//! normalisation and ReLU between them and `tanh` at the end, so images come
//! out in [-1, 1]. The discriminator takes the image with one more channel, a
//! learned per-class map. It applies two 4x4 stride-2 convolutions (`w` then
//! `2w` filters, leaky ReLU 0.2, batch normalisation on the second) and a
//! linear layer to one logit. `w` is `generator_width` or
//! `discriminator_width`; the defaults (64 each, latent 100, embedding 50)
//! follow the DCGAN paper scaled to 28x28 images.
//!
//! The data stages store pixels in [0, 1]; [`to_model`] and [`to_pixels`]
//! convert between the two ranges.

pub mod classifier;
pub mod frechet;

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

/// The architecture of one GAN, as `gan_train` writes it to `gan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanSpec {
    /// Shape of one image: channels, height, width (both multiples of 4).
    pub image_shape: Vec<i64>,
    pub classes: i64,
    /// Size of the latent vector.
    pub latent: i64,
    /// Size of the generator's class embedding.
    pub embedding: i64,
    /// Channels after the generator's first transposed convolution.
    pub generator_width: i64,
    /// Filters of the discriminator's first convolution.
    pub discriminator_width: i64,
}

impl GanSpec {
    pub fn read(path: &Path) -> Result<GanSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a GAN description", path.display()))
    }

    /// Checks the sizes, and returns channels, height and width.
    pub fn check(&self) -> Result<(i64, i64, i64)> {
        let [channels, height, width] = self.image_shape[..] else {
            bail!(
                "a GAN needs images of channels x height x width, not {:?}",
                self.image_shape
            );
        };
        if height % 4 != 0 || width % 4 != 0 || height < 4 || width < 4 {
            bail!("image height and width must be multiples of 4, not {height}x{width}");
        }
        let sizes = [
            self.classes,
            self.latent,
            self.embedding,
            self.generator_width,
            self.discriminator_width,
        ];
        if sizes.iter().any(|&size| size < 1) {
            bail!("the GAN's classes, latent, embedding and widths must be at least 1: {self:?}");
        }
        Ok((channels, height, width))
    }
}

/// Converts pixels in [0, 1] to the model's range [-1, 1].
pub fn to_model(pixels: &Tensor) -> Tensor {
    pixels * 2.0 - 1.0
}

/// Converts the generator's output in [-1, 1] to pixels in [0, 1].
pub fn to_pixels(images: &Tensor) -> Tensor {
    (images + 1.0) / 2.0
}

fn leaky(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

pub struct Generator {
    embedding: nn::Embedding,
    project: nn::Linear,
    norm0: nn::BatchNorm,
    up1: nn::ConvTranspose2D,
    norm1: nn::BatchNorm,
    up2: nn::ConvTranspose2D,
    start: [i64; 3],
    latent: i64,
}

impl Generator {
    pub fn new(root: &nn::Path, spec: &GanSpec) -> Result<Generator> {
        let (channels, height, width) = spec.check()?;
        let wide = 2 * spec.generator_width;
        let start = [wide, height / 4, width / 4];
        let up = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        Ok(Generator {
            embedding: nn::embedding(
                root / "embedding",
                spec.classes,
                spec.embedding,
                Default::default(),
            ),
            project: nn::linear(
                root / "project",
                spec.latent + spec.embedding,
                start.iter().product(),
                no_bias,
            ),
            norm0: nn::batch_norm2d(root / "norm0", wide, Default::default()),
            up1: nn::conv_transpose2d(root / "up1", wide, spec.generator_width, 4, up),
            norm1: nn::batch_norm2d(root / "norm1", spec.generator_width, Default::default()),
            up2: nn::conv_transpose2d(root / "up2", spec.generator_width, channels, 4, up),
            start,
            latent: spec.latent,
        })
    }

    /// Size of the latent vector.
    pub fn latent(&self) -> i64 {
        self.latent
    }

    /// Looks up the embeddings [N, embedding] of class indices [N].
    pub fn embed(&self, labels: &Tensor) -> Tensor {
        self.embedding.forward(labels)
    }

    /// Images in [-1, 1] from latent vectors [N, latent] and class embeddings
    /// [N, embedding], which need not be those of a single class.
    pub fn decode(&self, latent: &Tensor, embedded: &Tensor, train: bool) -> Tensor {
        let [c, h, w] = self.start;
        let x = self
            .project
            .forward(&Tensor::cat(&[latent, embedded], 1))
            .view([-1, c, h, w]);
        let x = self.norm0.forward_t(&x, train).relu();
        let x = self.norm1.forward_t(&self.up1.forward(&x), train).relu();
        self.up2.forward(&x).tanh()
    }

    pub fn forward(&self, latent: &Tensor, labels: &Tensor, train: bool) -> Tensor {
        self.decode(latent, &self.embed(labels), train)
    }

    /// Pixels in [0, 1] in evaluation mode, in batches, without gradients.
    pub fn generate(&self, latent: &Tensor, labels: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let count = latent.size()[0];
            let batches: Vec<Tensor> = (0..count)
                .step_by(256)
                .map(|start| {
                    let length = 256.min(count - start);
                    self.forward(
                        &latent.narrow(0, start, length),
                        &labels.narrow(0, start, length),
                        false,
                    )
                })
                .collect();
            to_pixels(&Tensor::cat(&batches, 0))
        })
    }
}

pub struct Discriminator {
    label_map: nn::Embedding,
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    norm2: nn::BatchNorm,
    score: nn::Linear,
    shape: [i64; 3],
}

impl Discriminator {
    pub fn new(root: &nn::Path, spec: &GanSpec) -> Result<Discriminator> {
        let (channels, height, width) = spec.check()?;
        let w = spec.discriminator_width;
        let down = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        Ok(Discriminator {
            label_map: nn::embedding(
                root / "label_map",
                spec.classes,
                height * width,
                Default::default(),
            ),
            conv1: nn::conv2d(root / "conv1", channels + 1, w, 4, down),
            conv2: nn::conv2d(root / "conv2", w, 2 * w, 4, down),
            norm2: nn::batch_norm2d(root / "norm2", 2 * w, Default::default()),
            score: nn::linear(
                root / "score",
                2 * w * (height / 4) * (width / 4),
                1,
                Default::default(),
            ),
            shape: [channels, height, width],
        })
    }

    /// Computes one logit per image, where a positive logit means "real".
    pub fn forward(&self, images: &Tensor, labels: &Tensor, train: bool) -> Tensor {
        let [_, h, w] = self.shape;
        let map = self.label_map.forward(labels).view([-1, 1, h, w]);
        let x = leaky(&self.conv1.forward(&Tensor::cat(&[images, &map], 1)));
        let x = leaky(&self.norm2.forward_t(&self.conv2.forward(&x), train));
        self.score.forward(&x.flatten(1, -1)).view([-1])
    }
}

/// Draws standard normal latent vectors [count, latent]. With `truncation`,
/// every value beyond it is drawn again (the truncation trick of BigGAN).
pub fn noise(count: i64, latent: i64, truncation: Option<f64>) -> Tensor {
    let options = (Kind::Float, tch::Device::Cpu);
    let mut z = Tensor::randn([count, latent], options);
    let Some(limit) = truncation else { return z };
    for _ in 0..1000 {
        let outside = z.abs().gt(limit);
        if outside.any().int64_value(&[]) == 0 {
            return z;
        }
        z = Tensor::randn([count, latent], options).where_self(&outside, &z);
    }
    // Only a vanishingly small limit gets here; clamp what is left.
    z.clamp(-limit, limit)
}

/// `count` class indices cycling through 0..classes, so every class is
/// equally represented.
pub fn balanced_labels(count: i64, classes: i64) -> Tensor {
    Tensor::arange(count, (Kind::Int64, tch::Device::Cpu)).remainder(classes)
}

#[cfg(test)]
mod tests;
