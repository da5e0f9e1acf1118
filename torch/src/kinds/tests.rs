//! A tiny end-to-end run of build, train, evaluate and plot on data written
//! by the test, through the same job files that `xp` writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};
use xp::spec::Value;
use xp::stages::{StageJob, Upstream};

fn job(root: &Path, kind: &str, params: &[(&str, Value)], upstream: &[(&str, &Path)]) -> StageJob {
    let output = root.join(kind);
    std::fs::create_dir_all(&output).unwrap();
    StageJob {
        stage: format!("test/{kind}"),
        kind: kind.to_string(),
        workspace: root.to_path_buf(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
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

/// Writes a `normalise`-style folder: y = 3 x0 - 2 x1 + noise, or its sign as a class.
fn write_data(root: &Path, classification: bool) -> PathBuf {
    let folder = root.join("normalise");
    std::fs::create_dir_all(&folder).unwrap();
    tch::manual_seed(7);
    let x = Tensor::randn([240, 2], (Kind::Float, tch::Device::Cpu));
    let signal = x.select(1, 0) * 3.0 - x.select(1, 1) * 2.0;
    let y = if classification {
        signal.gt(0.0).to_kind(Kind::Int64)
    } else {
        (signal + Tensor::randn([240], (Kind::Float, tch::Device::Cpu)) * 0.1).unsqueeze(1)
    };
    let tensors = [
        ("train_x", x.narrow(0, 0, 200)),
        ("train_y", y.narrow(0, 0, 200)),
        ("test_x", x.narrow(0, 200, 40)),
        ("test_y", y.narrow(0, 200, 40)),
    ];
    Tensor::write_safetensors(&tensors, folder.join("data.safetensors")).unwrap();
    let meta = if classification {
        r#"{"task": "classification", "num_classes": 2, "input_shape": [2]}"#
    } else {
        r#"{"task": "regression", "input_shape": [2]}"#
    };
    std::fs::write(folder.join("meta.json"), meta).unwrap();
    folder
}

fn dense_layers(outputs: i64) -> Value {
    let layer = |units: i64, activation: &str| {
        let mut table = BTreeMap::new();
        table.insert("type".to_string(), Value::Str("dense".into()));
        table.insert("units".to_string(), Value::Int(units));
        table.insert("activation".to_string(), Value::Str(activation.into()));
        Value::Table(table)
    };
    Value::List(vec![layer(8, "relu"), layer(outputs, "none")])
}

fn run_all(root: &Path, classification: bool) -> serde_json::Value {
    let _guard = crate::torch_rng_lock();
    let data = write_data(root, classification);
    let outputs = if classification { 2 } else { 1 };
    let build = job(root, "build", &[("layers", dense_layers(outputs)), ("seed", Value::Int(1))], &[("normalise", &data)]);
    super::run(&build).unwrap();
    let train_params = [("epochs", Value::Int(60)), ("lr", Value::Float(0.01)), ("patience", Value::Int(10))];
    let train = job(root, "train", &train_params, &[("normalise", &data), ("build", &build.output)]);
    super::run(&train).unwrap();
    let evaluate = job(root, "evaluate", &[], &[("normalise", &data), ("train", &train.output)]);
    super::run(&evaluate).unwrap();
    let plot_upstream = [("normalise", data.as_path()), ("train", &train.output), ("evaluate", &evaluate.output)];
    super::run(&job(root, "plot", &[], &plot_upstream)).unwrap();
    let text = std::fs::read_to_string(evaluate.output.join("metrics.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn regression_learns_linear_signal() {
    let root = tempfile::tempdir().unwrap();
    let metrics = run_all(root.path(), false);
    let rmse = metrics["rmse"].as_f64().unwrap();
    assert!(rmse < 0.5, "rmse {rmse}");
    assert!(root.path().join("plot/loss.png").exists());
    assert!(root.path().join("plot/predicted_vs_actual.png").exists());
}

#[test]
fn classification_learns_sign() {
    let root = tempfile::tempdir().unwrap();
    let metrics = run_all(root.path(), true);
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "accuracy {accuracy}");
    assert_eq!(metrics["confusion_matrix"].as_array().unwrap().len(), 2);
    assert!(root.path().join("plot/confusion.png").exists());
}

#[test]
fn training_is_deterministic() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    run_all(first.path(), false);
    run_all(second.path(), false);
    let files = ["normalise/data.safetensors", "build/init.safetensors", "train/history.json", "train/weights.safetensors"];
    for file in files {
        let read = |root: &Path| std::fs::read(root.join(file)).unwrap();
        assert!(read(first.path()) == read(second.path()), "{file} differs");
    }
    assert!(first.path().join("train/volatile/timing.json").exists());
}
