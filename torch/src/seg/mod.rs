//! Driving-scene segmentation, shared by the `seg_*` stage kinds: the
//! Cityscapes label set, the scene tensors the data stages write, a
//! procedural scene generator, a reader for real data in the Cityscapes
//! layout, and an encoder-decoder network.
//!
//! A data stage (`seg_generate` or `seg_import`) writes `data.safetensors`
//! with `train_images` and `test_images` (u8 RGB, [N, 3, H, W]) and
//! `train_labels` and `test_labels` (u8 Cityscapes train ids, [N, H, W],
//! 255 = ignored), and `meta.json` (a [`SceneMeta`]).

pub mod generate;
pub mod metrics;
pub mod model;
pub mod reader;

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};
use xp::stages::StageJob;

/// The label of pixels that no class covers; the loss and metrics skip them.
pub const IGNORE: u8 = 255;

/// Cityscapes' 19 training classes, indexed by train id, with their standard
/// display colours.
pub const CLASSES: [(&str, [u8; 3]); 19] = [
    ("road", [128, 64, 128]),
    ("sidewalk", [244, 35, 232]),
    ("building", [70, 70, 70]),
    ("wall", [102, 102, 156]),
    ("fence", [190, 153, 153]),
    ("pole", [153, 153, 153]),
    ("traffic light", [250, 170, 30]),
    ("traffic sign", [220, 220, 0]),
    ("vegetation", [107, 142, 35]),
    ("terrain", [152, 251, 152]),
    ("sky", [70, 130, 180]),
    ("person", [220, 20, 60]),
    ("rider", [255, 0, 0]),
    ("car", [0, 0, 142]),
    ("truck", [0, 0, 70]),
    ("bus", [0, 60, 100]),
    ("train", [0, 80, 100]),
    ("motorcycle", [0, 0, 230]),
    ("bicycle", [119, 11, 32]),
];

/// Number of classes, the size of the network's output.
pub const CLASS_COUNT: i64 = CLASSES.len() as i64;

/// Train ids by class name, for the generator's painting code.
pub mod id {
    pub const ROAD: u8 = 0;
    pub const SIDEWALK: u8 = 1;
    pub const BUILDING: u8 = 2;
    pub const POLE: u8 = 5;
    pub const VEGETATION: u8 = 8;
    pub const TERRAIN: u8 = 9;
    pub const SKY: u8 = 10;
    pub const PERSON: u8 = 11;
    pub const CAR: u8 = 13;
}

/// Returns the display colour of a label, black for ignored pixels.
pub fn class_colour(label: u8) -> [u8; 3] {
    CLASSES
        .get(label as usize)
        .map_or([0, 0, 0], |(_, colour)| *colour)
}

/// The description a data stage writes to `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneMeta {
    /// `synthetic` for generated scenes, `real` for imported ones; plots and
    /// metrics name the data with it.
    pub source: String,
    pub width: i64,
    pub height: i64,
    pub train_count: i64,
    pub test_count: i64,
    /// Class names by train id.
    pub class_names: Vec<String>,
    /// Labelled pixels per class in the training split, by train id.
    pub train_class_pixels: Vec<i64>,
}

impl SceneMeta {
    /// Reads `meta.json` from the output folder of a data stage.
    pub fn read(folder: &Path) -> Result<SceneMeta> {
        let path = folder.join("meta.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("`{}` is invalid", path.display()))
    }
}

/// Scenes and labels as a data stage writes them.
pub struct Scenes {
    pub meta: SceneMeta,
    pub train_images: Tensor,
    pub train_labels: Tensor,
    pub test_images: Tensor,
    pub test_labels: Tensor,
}

/// Kinds of the stages that write scenes.
pub const DATA_KINDS: [&str; 2] = ["seg_generate", "seg_import"];

/// Returns the output folder of the one scene data stage upstream of `job`.
pub fn data_upstream(job: &StageJob) -> Result<&Path> {
    let matching: Vec<_> = job
        .upstream
        .iter()
        .filter(|u| DATA_KINDS.contains(&u.kind.as_str()))
        .collect();
    match matching.as_slice() {
        [one] => match one.outputs.as_slice() {
            [path] => Ok(path),
            _ => bail!("stage `{}` must have exactly one output", one.stage),
        },
        [] => bail!(
            "stage `{}` needs a `seg_generate` or `seg_import` stage upstream",
            job.stage
        ),
        _ => bail!(
            "stage `{}` has more than one scene data stage upstream",
            job.stage
        ),
    }
}

impl Scenes {
    /// Builds the tensors from row-major RGB images and labels of one size.
    pub fn new(source: &str, width: i64, height: i64, train: Split, test: Split) -> Scenes {
        let mut train_class_pixels = vec![0i64; CLASSES.len()];
        for &label in &train.labels {
            if let Some(count) = train_class_pixels.get_mut(label as usize) {
                *count += 1;
            }
        }
        let meta = SceneMeta {
            source: source.to_string(),
            width,
            height,
            train_count: train.count(width, height),
            test_count: test.count(width, height),
            class_names: CLASSES.iter().map(|(name, _)| name.to_string()).collect(),
            train_class_pixels,
        };
        let (train_images, train_labels) = train.tensors(width, height);
        let (test_images, test_labels) = test.tensors(width, height);
        Scenes {
            meta,
            train_images,
            train_labels,
            test_images,
            test_labels,
        }
    }

    pub fn write(&self, folder: &Path) -> Result<()> {
        let tensors = [
            ("train_images", &self.train_images),
            ("train_labels", &self.train_labels),
            ("test_images", &self.test_images),
            ("test_labels", &self.test_labels),
        ];
        let path = folder.join("data.safetensors");
        Tensor::write_safetensors(&tensors, &path)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        let text = serde_json::to_string_pretty(&self.meta)
            .context("failed to encode the scene description")?;
        std::fs::write(folder.join("meta.json"), text).context("failed to write `meta.json`")
    }

    /// Reads the output folder of a data stage.
    pub fn read(folder: &Path) -> Result<Scenes> {
        let meta = SceneMeta::read(folder)?;
        let path = folder.join("data.safetensors");
        let tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?
            .into_iter()
            .collect();
        let take = |name: &str| {
            tensors
                .get(name)
                .map(Tensor::shallow_clone)
                .with_context(|| format!("`{}` has no tensor `{name}`", path.display()))
        };
        let scenes = Scenes {
            train_images: take("train_images")?,
            train_labels: take("train_labels")?,
            test_images: take("test_images")?,
            test_labels: take("test_labels")?,
            meta,
        };
        for (images, labels) in [
            (&scenes.train_images, &scenes.train_labels),
            (&scenes.test_images, &scenes.test_labels),
        ] {
            let (h, w) = (scenes.meta.height, scenes.meta.width);
            let count = images.size()[0];
            if images.size() != [count, 3, h, w] || labels.size() != [count, h, w] {
                bail!(
                    "`{}` contains images {:?} and labels {:?}, but `meta.json` gives {w}x{h}",
                    path.display(),
                    images.size(),
                    labels.size()
                );
            }
        }
        Ok(scenes)
    }

    /// True when the scenes come from the generator, so results must be
    /// labelled as synthetic.
    pub fn is_synthetic(&self) -> bool {
        self.meta.source == "synthetic"
    }
}

/// Images and labels of one split, row-major: RGB triples and train ids.
#[derive(Default)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    fn count(&self, width: i64, height: i64) -> i64 {
        self.labels.len() as i64 / (width * height).max(1)
    }

    /// Returns images as [N, 3, H, W] and labels as [N, H, W], both u8.
    fn tensors(&self, width: i64, height: i64) -> (Tensor, Tensor) {
        let count = self.count(width, height);
        let images = Tensor::from_slice(&self.images)
            .view([count, height, width, 3])
            .permute([0, 3, 1, 2])
            .contiguous();
        let labels = Tensor::from_slice(&self.labels).view([count, height, width]);
        (images, labels)
    }
}

/// Converts u8 RGB images [N, 3, H, W] to the network's input: floats
/// centred on 0 with a spread of about 1.
pub fn to_input(images: &Tensor) -> Tensor {
    (images.to_kind(Kind::Float) / 255.0 - 0.5) / 0.25
}

/// Writes `value` as pretty-printed JSON.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("failed to encode JSON")?;
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}

#[cfg(test)]
mod tests;
