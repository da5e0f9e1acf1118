//! Models described in pipeline files: a list of layers, resolved against the
//! input shape into a tch network whose parameters live in a `VarStore`.
//!
//! Layer tables, as written in a `build` stage's `layers` parameter:
//!
//! | `type` | fields | notes |
//! |---|---|---|
//! | `dense` | `units`, `activation` | flattens nothing: put `flatten` first for images |
//! | `conv2d` | `filters`, `kernel`, `stride` (1), `padding` (0), `activation` | square kernels |
//! | `max_pool2d` | `size` | stride equal to the size |
//! | `dropout` | `rate` | active only in training |
//! | `flatten` | | |
//!
//! `activation` is `relu`, `tanh`, `sigmoid` or `none` (the default). A
//! classifier's last layer outputs logits; the loss applies the softmax.

mod weights;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::Tensor;

pub use weights::{load_weights, save_weights};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Tanh,
    Sigmoid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    Dense {
        units: i64,
        #[serde(default)]
        activation: Activation,
    },
    Conv2d {
        filters: i64,
        kernel: i64,
        #[serde(default = "one")]
        stride: i64,
        #[serde(default)]
        padding: i64,
        #[serde(default)]
        activation: Activation,
    },
    MaxPool2d {
        size: i64,
    },
    Dropout {
        rate: f64,
    },
    Flatten,
}

fn one() -> i64 {
    1
}

/// A model as `build` writes it to `model.json`: what `train` and `evaluate` rebuild.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Shape of one sample, without the batch dimension.
    pub input_shape: Vec<i64>,
    pub layers: Vec<Layer>,
    /// `regression` or `classification`.
    pub task: String,
    /// Seed of the initial weights.
    pub seed: i64,
}

/// The layers of the MIT basics tutorial's Boston model: Dense(20, relu) -> Dense(1).
pub fn boston_layers() -> Vec<Layer> {
    vec![
        Layer::Dense { units: 20, activation: Activation::Relu },
        Layer::Dense { units: 1, activation: Activation::None },
    ]
}

/// The tutorial's MNIST CNN: Conv(32, 3x3) -> Conv(64, 3x3) -> MaxPool(2) ->
/// Dropout(0.25) -> Flatten -> Dense(128) -> Dropout(0.5) -> Dense(10).
pub fn mnist_layers(classes: i64) -> Vec<Layer> {
    let conv = |filters| Layer::Conv2d {
        filters,
        kernel: 3,
        stride: 1,
        padding: 0,
        activation: Activation::Relu,
    };
    vec![
        conv(32),
        conv(64),
        Layer::MaxPool2d { size: 2 },
        Layer::Dropout { rate: 0.25 },
        Layer::Flatten,
        Layer::Dense { units: 128, activation: Activation::Relu },
        Layer::Dropout { rate: 0.5 },
        Layer::Dense { units: classes, activation: Activation::None },
    ]
}

impl ModelSpec {
    pub fn read(path: &std::path::Path) -> Result<ModelSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("`{}` is not a model", path.display()))
    }

    /// Builds the network under `root`, checking each layer against the shape
    /// that reaches it.
    pub fn network(&self, root: &nn::Path) -> Result<nn::SequentialT> {
        let mut shape = self.input_shape.clone();
        let mut network = nn::seq_t();
        for (index, layer) in self.layers.iter().enumerate() {
            let path = root / format!("layer{index}");
            let context = || format!("layer {index} ({layer:?}) on input shape {shape:?}");
            network = match *layer {
                Layer::Dense { units, activation } => {
                    let [features] = shape[..] else {
                        bail!("{}: a dense layer needs a flat input; add a flatten layer", context());
                    };
                    shape = vec![units];
                    let linear = nn::linear(path, features, units, Default::default());
                    network.add(linear).add_fn(move |x| activate(x, activation))
                }
                Layer::Conv2d { filters, kernel, stride, padding, activation } => {
                    let [channels, height, width] = shape[..] else {
                        bail!("{}: conv2d needs a channels x height x width input", context());
                    };
                    let out = |size: i64| (size + 2 * padding - kernel) / stride + 1;
                    if out(height) < 1 || out(width) < 1 {
                        bail!("{}: the kernel is larger than the input", context());
                    }
                    shape = vec![filters, out(height), out(width)];
                    let config = nn::ConvConfig { stride, padding, ..Default::default() };
                    let conv = nn::conv2d(path, channels, filters, kernel, config);
                    network.add(conv).add_fn(move |x| activate(x, activation))
                }
                Layer::MaxPool2d { size } => {
                    let [channels, height, width] = shape[..] else {
                        bail!("{}: max_pool2d needs a channels x height x width input", context());
                    };
                    shape = vec![channels, height / size, width / size];
                    network.add_fn(move |x| x.max_pool2d_default(size))
                }
                Layer::Dropout { rate } => {
                    if !(0.0..1.0).contains(&rate) {
                        bail!("{}: the dropout rate must be in [0, 1)", context());
                    }
                    network.add_fn_t(move |x, train| x.dropout(rate, train))
                }
                Layer::Flatten => {
                    shape = vec![shape.iter().product()];
                    network.add_fn(|x| x.flatten(1, -1))
                }
            };
        }
        Ok(network)
    }

    /// Splits the model before its last dense layer, to run the network up to
    /// the layer whose activations serve as features. Returns the layers
    /// before it as a model of their own (built under the same variable
    /// names), and the last dense layer's index and units.
    pub fn split_at_last_dense(&self) -> Result<(ModelSpec, (usize, i64))> {
        let Some((index, units)) = self.layers.iter().enumerate().rev().find_map(|(index, layer)| match layer {
            Layer::Dense { units, .. } => Some((index, *units)),
            _ => None,
        }) else {
            bail!("the model has no dense layer");
        };
        let prefix = ModelSpec { layers: self.layers[..index].to_vec(), ..self.clone() };
        Ok((prefix, (index, units)))
    }

    /// Returns the size of the network's output for one sample.
    pub fn output_size(&self) -> Result<i64> {
        match self.layers.last() {
            Some(Layer::Dense { units, .. }) => Ok(*units),
            _ => bail!("the last layer must be dense"),
        }
    }
}

fn activate(x: &Tensor, activation: Activation) -> Tensor {
    match activation {
        Activation::None => x.shallow_clone(),
        Activation::Relu => x.relu(),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => x.sigmoid(),
    }
}

/// Runs the network over `inputs` in batches without gradients, in evaluation mode.
pub fn predict(network: &impl ModuleT, inputs: &Tensor, batch_size: i64) -> Tensor {
    tch::no_grad(|| {
        let count = inputs.size()[0];
        let batches: Vec<Tensor> = (0..count)
            .step_by(batch_size as usize)
            .map(|start| {
                let length = batch_size.min(count - start);
                network.forward_t(&inputs.narrow(0, start, length), false)
            })
            .collect();
        Tensor::cat(&batches, 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnist_network_has_tutorial_parameter_count() {
        let _guard = crate::torch_rng_lock();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let spec = ModelSpec {
            input_shape: vec![1, 28, 28],
            layers: mnist_layers(10),
            task: "classification".into(),
            seed: 0,
        };
        let network = spec.network(&vs.root()).unwrap();
        let count: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        // Keras reports 1,199,882 parameters for this model.
        assert_eq!(count, 1_199_882);
        let output = network.forward_t(&Tensor::zeros([2, 1, 28, 28], tch::kind::FLOAT_CPU), false);
        assert_eq!(output.size(), vec![2, 10]);
    }

    #[test]
    fn dense_on_image_needs_flatten() {
        let _guard = crate::torch_rng_lock();
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let spec = ModelSpec {
            input_shape: vec![1, 28, 28],
            layers: vec![Layer::Dense { units: 3, activation: Activation::None }],
            task: "classification".into(),
            seed: 0,
        };
        let error = spec.network(&vs.root()).err().unwrap().to_string();
        assert!(error.contains("add a flatten layer"), "{error}");
    }

    #[test]
    fn layer_tables_parse() {
        let json = r#"[{"type": "conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
                       {"type": "flatten"}, {"type": "dense", "units": 2}]"#;
        let layers: Vec<Layer> = serde_json::from_str(json).unwrap();
        assert_eq!(layers.len(), 3);
        let unknown = r#"[{"type": "dense", "unit": 2}]"#;
        assert!(serde_json::from_str::<Vec<Layer>>(unknown).is_err());
    }
}
