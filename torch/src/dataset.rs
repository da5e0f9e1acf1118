//! The tensors a `normalise` stage writes: `data.safetensors` with `train_x`,
//! `train_y`, `test_x` and `test_y`, and `meta.json` describing them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use tch::Tensor;

/// The parts of `meta.json` that training and evaluation use.
#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    /// `regression` or `classification`.
    pub task: String,
    #[serde(default)]
    pub num_classes: Option<i64>,
    /// Shape of one sample, without the batch dimension.
    pub input_shape: Vec<i64>,
    #[serde(default)]
    pub class_names: Option<Vec<String>>,
}

pub struct Dataset {
    pub meta: Meta,
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
}

impl Dataset {
    /// Reads a `normalise` stage's output folder.
    pub fn read(folder: &Path) -> Result<Dataset> {
        let meta_path = folder.join("meta.json");
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("failed to read `{}`", meta_path.display()))?;
        let meta: Meta = serde_json::from_str(&text)
            .with_context(|| format!("`{}` is invalid", meta_path.display()))?;
        if meta.task == "classification" && meta.num_classes.is_none() {
            bail!("`{}` describes a classification task without `num_classes`", meta_path.display());
        }
        let data_path = folder.join("data.safetensors");
        let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&data_path)
            .with_context(|| format!("failed to read `{}`", data_path.display()))?
            .into_iter()
            .collect();
        let take = |name: &str| {
            tensors
                .get(name)
                .map(Tensor::shallow_clone)
                .with_context(|| format!("`{}` has no tensor `{name}`", data_path.display()))
        };
        Ok(Dataset {
            train_x: take("train_x")?,
            train_y: take("train_y")?,
            test_x: take("test_x")?,
            test_y: take("test_y")?,
            meta,
        })
    }

    pub fn is_classification(&self) -> bool {
        self.meta.task == "classification"
    }
}
