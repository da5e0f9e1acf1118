//! `gan_train`, `gan_evaluate` and `gan_plot` on a few tiny images written by
//! the test, through the same job files that `xp` writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::{Kind, Tensor};
use xp::spec::Value;
use xp::stages::{StageJob, Upstream};

use crate::model::{save_weights, Activation, Layer, ModelSpec};

fn job(root: &Path, kind: &str, params: &[(&str, Value)], upstream: &[(&str, &Path)]) -> StageJob {
    let output = root.join(kind);
    std::fs::create_dir_all(&output).unwrap();
    StageJob {
        stage: format!("test/{kind}"),
        kind: kind.to_string(),
        workspace: root.to_path_buf(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        output,
        upstream: upstream
            .iter()
            .map(|(kind, path)| Upstream {
                stage: format!("test/{kind}"),
                kind: kind.to_string(),
                outputs: vec![path.to_path_buf()],
            })
            .collect(),
        threads: 1,
        distdir: None,
    }
}

/// Writes a `normalise`-style folder of 8x8 images whose brightness grows
/// with the class, and a `train`-style folder with an untrained classifier
/// (its features are as good as any for checking the plumbing).
fn write_inputs(root: &Path) -> (PathBuf, PathBuf) {
    let data = root.join("normalise");
    std::fs::create_dir_all(&data).unwrap();
    tch::manual_seed(3);
    let labels = Tensor::arange(60, (Kind::Int64, tch::Device::Cpu)).remainder(3);
    let images = (Tensor::rand([60, 1, 8, 8], (Kind::Float, tch::Device::Cpu)) * 0.3
        + labels.to_kind(Kind::Float).view([60, 1, 1, 1]) * 0.3)
        .clamp(0.0, 1.0);
    let tensors = [
        ("train_x", images.narrow(0, 0, 48)),
        ("train_y", labels.narrow(0, 0, 48)),
        ("test_x", images.narrow(0, 48, 12)),
        ("test_y", labels.narrow(0, 48, 12)),
    ];
    Tensor::write_safetensors(&tensors, data.join("data.safetensors")).unwrap();
    let meta = r#"{"task": "classification", "num_classes": 3, "input_shape": [1, 8, 8]}"#;
    std::fs::write(data.join("meta.json"), meta).unwrap();

    let trained = root.join("train");
    std::fs::create_dir_all(&trained).unwrap();
    let spec = ModelSpec {
        input_shape: vec![1, 8, 8],
        layers: vec![
            Layer::Flatten,
            Layer::Dense {
                units: 6,
                activation: Activation::Relu,
            },
            Layer::Dense {
                units: 3,
                activation: Activation::None,
            },
        ],
        task: "classification".into(),
        seed: 0,
    };
    let vs = VarStore::new(tch::Device::Cpu);
    spec.network(&vs.root()).unwrap();
    save_weights(&vs, &trained.join("weights.safetensors")).unwrap();
    std::fs::write(
        trained.join("model.json"),
        serde_json::to_string(&spec).unwrap(),
    )
    .unwrap();
    (data, trained)
}

fn train(root: &Path) -> PathBuf {
    let _guard = crate::torch_rng_lock();
    let (data, trained) = write_inputs(root);
    let params = [
        ("epochs", Value::Int(2)),
        ("batch_size", Value::Int(16)),
        ("latent", Value::Int(8)),
        ("embedding", Value::Int(4)),
        ("generator_width", Value::Int(4)),
        ("discriminator_width", Value::Int(4)),
        ("metric_samples", Value::Int(30)),
        ("checkpoint_every", Value::Int(1)),
        ("seed", Value::Int(5)),
    ];
    let job = job(
        root,
        "gan_train",
        &params,
        &[("normalise", &data), ("train", &trained)],
    );
    crate::kinds::run(&job).unwrap();
    job.output
}

#[test]
fn training_is_deterministic() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (train(first.path()), train(second.path()));
    let files = [
        "generator.safetensors",
        "discriminator.safetensors",
        "history.json",
        "gan.json",
        "checkpoints/generator-epoch-001.safetensors",
    ];
    for file in files {
        assert!(
            std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(),
            "{file} differs"
        );
    }
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("history.json")).unwrap()).unwrap();
    let epochs = history["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert!(epochs
        .iter()
        .all(|e| e["frechet_distance"].as_f64().unwrap().is_finite()));
    assert!(a.join("volatile/timing.json").exists());
}

#[test]
fn evaluate_and_plot_read_the_trained_gan() {
    let root = tempfile::tempdir().unwrap();
    let trained_gan = train(root.path());
    let _guard = crate::torch_rng_lock();
    let (data, classifier) = (root.path().join("normalise"), root.path().join("train"));
    let upstream = [
        ("normalise", data.as_path()),
        ("train", &classifier),
        ("gan_train", &trained_gan),
    ];
    let evaluate = job(
        root.path(),
        "gan_evaluate",
        &[("samples", Value::Int(100))],
        &upstream,
    );
    crate::kinds::run(&evaluate).unwrap();
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(evaluate.output.join("metrics.json")).unwrap())
            .unwrap();
    // At most as many samples as test images.
    assert_eq!(metrics["samples"].as_i64(), Some(12));
    assert_eq!(metrics["main_metric"].as_str(), Some("frechet_distance"));
    assert!(metrics["frechet_distance_real"].as_f64().unwrap() >= 0.0);
    assert_eq!(metrics["per_class_accuracy"].as_array().unwrap().len(), 3);

    let plot = job(
        root.path(),
        "gan_plot",
        &[("columns", Value::Int(4))],
        &[("normalise", &data), ("gan_train", &trained_gan)],
    );
    crate::kinds::run(&plot).unwrap();
    for file in [
        "classes.png",
        "interpolation_latent.png",
        "interpolation_class.png",
        "truncation.png",
        "losses.png",
        "metrics.png",
        "accuracy.png",
    ] {
        assert!(plot.output.join(file).exists(), "{file} is missing");
    }
}

#[test]
fn truncated_noise_stays_within_the_limit() {
    let _guard = crate::torch_rng_lock();
    tch::manual_seed(0);
    let z = super::noise(200, 16, Some(0.5));
    assert!(z.abs().max().double_value(&[]) <= 0.5);
    assert!(z.std(true).double_value(&[]) > 0.2);
}
