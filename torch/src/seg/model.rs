//! An encoder-decoder segmentation network in the style of U-Net, built from
//! a [`SegSpec`].
//!
//! The encoder has one block per entry of `widths`: `convs` 3x3
//! convolutions, each followed by batch normalisation and ReLU, with a 2x2
//! max pooling before every block but the first. Optional dilated 3x3
//! convolutions (one per entry of `dilations`, each a residual unit) widen
//! the receptive field at the coarsest resolution. The decoder climbs back
//! level by level: it doubles the resolution (a 2x2 transposed convolution,
//! or bilinear interpolation followed by a 1x1 convolution), concatenates
//! the encoder's output of that level when `skips` is on, and applies a
//! block of that level's width. A 1x1 convolution gives one logit per class
//! and pixel.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// The architecture, as `seg_build` writes it to `seg_model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegSpec {
    pub classes: i64,
    /// Channels of the encoder's blocks, from full resolution down; each
    /// level after the first halves the resolution.
    pub widths: Vec<i64>,
    /// 3x3 convolutions per block.
    pub convs: i64,
    /// Dilation rates of the residual 3x3 convolutions at the coarsest level.
    pub dilations: Vec<i64>,
    /// `transpose` or `bilinear`.
    pub upsampling: String,
    pub skips: bool,
    /// Seed of the initial weights.
    pub seed: i64,
}

impl SegSpec {
    pub fn read(path: &Path) -> Result<SegSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "`{}` is not a segmentation model description",
                path.display()
            )
        })
    }

    /// Checks the sizes and options.
    pub fn check(&self) -> Result<()> {
        if self.widths.is_empty() || self.widths.iter().any(|&w| w < 1) {
            bail!(
                "`widths` must list at least one positive channel count, not {:?}",
                self.widths
            );
        }
        if self.convs < 1 {
            bail!("`convs` must be at least 1, not {}", self.convs);
        }
        if self.dilations.iter().any(|&d| d < 1) {
            bail!("`dilations` must be positive, not {:?}", self.dilations);
        }
        if !["transpose", "bilinear"].contains(&self.upsampling.as_str()) {
            bail!(
                "`upsampling` must be `transpose` or `bilinear`, not `{}`",
                self.upsampling
            );
        }
        if self.classes < 2 {
            bail!(
                "a segmentation model needs at least 2 classes, not {}",
                self.classes
            );
        }
        Ok(())
    }

    /// Returns the factor that image sides must be a multiple of.
    pub fn size_multiple(&self) -> i64 {
        1 << (self.widths.len() - 1)
    }

    /// Rejects images whose sides the network cannot halve at every level.
    pub fn check_size(&self, width: i64, height: i64) -> Result<()> {
        let multiple = self.size_multiple();
        if width % multiple != 0 || height % multiple != 0 {
            bail!(
                "images of {width}x{height} do not fit a network of {} levels: width and height must be multiples of {multiple}",
                self.widths.len()
            );
        }
        Ok(())
    }
}

#[derive(Debug)]
struct ConvUnit {
    conv: nn::Conv2D,
    norm: nn::BatchNorm,
}

impl ConvUnit {
    fn new(path: &nn::Path, inputs: i64, outputs: i64, kernel: i64, dilation: i64) -> ConvUnit {
        let config = nn::ConvConfig {
            padding: dilation * (kernel / 2),
            dilation,
            bias: false,
            ..Default::default()
        };
        ConvUnit {
            conv: nn::conv2d(path / "conv", inputs, outputs, kernel, config),
            norm: nn::batch_norm2d(path / "norm", outputs, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.norm, train).relu()
    }
}

#[derive(Debug)]
struct Block(Vec<ConvUnit>);

impl Block {
    fn new(path: &nn::Path, inputs: i64, outputs: i64, convs: i64) -> Block {
        let units = (0..convs)
            .map(|i| {
                ConvUnit::new(
                    &(path / i),
                    if i == 0 { inputs } else { outputs },
                    outputs,
                    3,
                    1,
                )
            })
            .collect();
        Block(units)
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.0
            .iter()
            .fold(x.shallow_clone(), |x, unit| unit.forward(&x, train))
    }
}

#[derive(Debug)]
enum Upsample {
    Transpose(nn::ConvTranspose2D),
    Bilinear(nn::Conv2D),
}

#[derive(Debug)]
struct DecoderLevel {
    upsample: Upsample,
    block: Block,
}

/// The network; see the module documentation.
#[derive(Debug)]
pub struct SegNet {
    encoder: Vec<Block>,
    dilated: Vec<ConvUnit>,
    decoder: Vec<DecoderLevel>,
    head: nn::Conv2D,
    skips: bool,
}

impl SegNet {
    pub fn new(path: &nn::Path, spec: &SegSpec) -> Result<SegNet> {
        spec.check()?;
        let widths = &spec.widths;
        let mut encoder = Vec::new();
        let mut inputs = 3;
        for (level, &width) in widths.iter().enumerate() {
            encoder.push(Block::new(
                &(path / "encoder" / level),
                inputs,
                width,
                spec.convs,
            ));
            inputs = width;
        }
        let deepest = *widths.last().unwrap_or(&1);
        let dilated = spec
            .dilations
            .iter()
            .enumerate()
            .map(|(i, &rate)| ConvUnit::new(&(path / "dilated" / i), deepest, deepest, 3, rate))
            .collect();
        let mut decoder = Vec::new();
        for level in (0..widths.len().saturating_sub(1)).rev() {
            let (from, to) = (widths[level + 1], widths[level]);
            let up_path = path / "decoder" / level / "up";
            let upsample = if spec.upsampling == "transpose" {
                let config = nn::ConvTransposeConfig {
                    stride: 2,
                    ..Default::default()
                };
                Upsample::Transpose(nn::conv_transpose2d(up_path, from, to, 2, config))
            } else {
                Upsample::Bilinear(nn::conv2d(up_path, from, to, 1, Default::default()))
            };
            let block_inputs = if spec.skips { 2 * to } else { to };
            let block = Block::new(
                &(path / "decoder" / level / "block"),
                block_inputs,
                to,
                spec.convs,
            );
            decoder.push(DecoderLevel { upsample, block });
        }
        let head = nn::conv2d(
            path / "head",
            widths[0],
            spec.classes,
            1,
            Default::default(),
        );
        Ok(SegNet {
            encoder,
            dilated,
            decoder,
            head,
            skips: spec.skips,
        })
    }
}

impl ModuleT for SegNet {
    /// Maps images [N, 3, H, W] to logits [N, classes, H, W].
    fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let mut levels = Vec::with_capacity(self.encoder.len());
        let mut x = images.shallow_clone();
        for (level, block) in self.encoder.iter().enumerate() {
            if level > 0 {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            x = block.forward(&x, train);
            levels.push(x.shallow_clone());
        }
        for unit in &self.dilated {
            x = &x + unit.forward(&x, train);
        }
        for (decoder, skip) in self.decoder.iter().zip(levels.iter().rev().skip(1)) {
            let size = skip.size();
            x = match &decoder.upsample {
                Upsample::Transpose(conv) => x.apply(conv),
                Upsample::Bilinear(conv) => x
                    .upsample_bilinear2d([size[2], size[3]], false, None, None)
                    .apply(conv),
            };
            if self.skips {
                x = Tensor::cat(&[&x, skip], 1);
            }
            x = decoder.block.forward(&x, train);
        }
        x.apply(&self.head)
    }
}

/// Returns the predicted train ids [N, H, W] (i64) for u8 images
/// [N, 3, H, W], running `batch_size` images at a time in evaluation mode.
pub fn predict(network: &SegNet, images: &Tensor, batch_size: i64) -> Tensor {
    let count = images.size()[0];
    let mut parts = Vec::new();
    tch::no_grad(|| {
        for start in (0..count).step_by(batch_size.max(1) as usize) {
            let batch = images.narrow(0, start, batch_size.min(count - start));
            parts.push(
                network
                    .forward_t(&super::to_input(&batch), false)
                    .argmax(1, false),
            );
        }
    });
    Tensor::cat(&parts, 0)
}
