//! The classifier trained by a `train` stage, split into a feature extractor
//! (every layer before its last dense layer) and that last layer, so one pass
//! gives both the features for the Fréchet distance and the logits.

use std::path::Path;

use anyhow::{Context, Result};
use tch::nn::{self, Module, ModuleT, VarStore};
use tch::Tensor;

use crate::model::{load_weights, ModelSpec};

pub struct Classifier {
    features: nn::SequentialT,
    head: nn::Linear,
    /// Size of a feature vector (128 for the tutorial's CNN).
    pub width: i64,
    // Holds the variables the layers use.
    _vs: VarStore,
}

impl Classifier {
    /// Loads `model.json` and `weights.safetensors` from a `train` stage's output.
    pub fn load(trained: &Path) -> Result<Classifier> {
        let spec = ModelSpec::read(&trained.join("model.json"))?;
        let (features_spec, last) = spec.split_at_last_dense()?;
        let mut vs = VarStore::new(tch::Device::Cpu);
        let features = features_spec.network(&vs.root())?;
        let probe = Tensor::zeros(
            [&[1i64][..], &spec.input_shape[..]].concat(),
            (tch::Kind::Float, tch::Device::Cpu),
        );
        let width = tch::no_grad(|| features.forward_t(&probe, false)).size()[1];
        let head = nn::linear(
            vs.root() / format!("layer{}", last.0),
            width,
            last.1,
            Default::default(),
        );
        load_weights(&mut vs, &trained.join("weights.safetensors"))
            .context("the classifier's weights do not fit its description")?;
        Ok(Classifier {
            features,
            head,
            width,
            _vs: vs,
        })
    }

    /// Features [N, width] and logits [N, classes] of pixels in [0, 1], in
    /// evaluation mode, without gradients.
    pub fn run(&self, images: &Tensor) -> (Tensor, Tensor) {
        tch::no_grad(|| {
            let count = images.size()[0];
            let mut features = Vec::new();
            for start in (0..count).step_by(256) {
                let length = 256.min(count - start);
                features.push(
                    self.features
                        .forward_t(&images.narrow(0, start, length), false),
                );
            }
            let features = Tensor::cat(&features, 0);
            let logits = self.head.forward(&features);
            (features, logits)
        })
    }
}

/// Computes the fraction of rows of `logits` whose largest entry is at the label in `labels`.
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(tch::Kind::Double)
        .mean(tch::Kind::Double)
        .double_value(&[])
}
