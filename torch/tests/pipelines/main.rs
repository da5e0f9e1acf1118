//! Tiny end-to-end runs of the committed tutorial pipelines through `xp run`,
//! on small datasets the tests write in the real files' formats.
//!
//! Each test copies a pipeline file and rewrites its download sources to
//! point at nothing reachable and its checksums to those of the written
//! files, which it puts in a mirror folder (`--distdir`), so no test touches
//! the network.

mod data;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// Returns the `xp` binary built beside `xp-torch`.
fn xp_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_xp-torch")).with_file_name("xp");
    assert!(path.is_file(), "{} is missing; run `cargo build --workspace` first", path.display());
    path
}

struct Trial {
    dir: tempfile::TempDir,
    pipeline: String,
}

impl Trial {
    /// Copies `pipelines/NAME.toml` with every source of the given files
    /// replaced by an unreachable `file://` URL and the files' real sha256.
    fn new(name: &str, files: &[(&str, Vec<u8>)]) -> Trial {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines").join(format!("{name}.toml"));
        let mut text = std::fs::read_to_string(&committed).expect("read the committed pipeline");
        let mirror = dir.path().join("mirror");
        std::fs::create_dir_all(&mirror).unwrap();
        for (file, bytes) in files {
            std::fs::write(mirror.join(file), bytes).unwrap();
            let sha = hex(&Sha256::digest(bytes));
            text = rewrite_sources(&text, file, &sha);
        }
        let pipeline = format!("{name}.toml");
        std::fs::write(dir.path().join(&pipeline), text).unwrap();
        Trial { dir, pipeline }
    }

    fn xp(&self, extra: &[&str]) -> Output {
        let mirror = self.dir.path().join("mirror");
        let mut args = vec!["run", &self.pipeline, "--profile", "quick", "--distdir"];
        let mirror = mirror.to_string_lossy().into_owned();
        args.push(&mirror);
        args.extend_from_slice(extra);
        Command::new(xp_binary())
            .args(&args)
            .current_dir(self.dir.path())
            .env_remove("XP_CACHE")
            .env_remove("XP_DISTDIR")
            .output()
            .expect("start xp")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// Rewrites each source line that names `file`.
fn rewrite_sources(text: &str, file: &str, sha: &str) -> String {
    text.lines()
        .map(|line| {
            if line.contains("url =") && line.contains(&format!("/{file}\"")) {
                format!("  {{ url = \"file:///nonexistent/xp-test/{file}\", sha256 = \"{sha}\" }},")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns the labels printed for each stage, in order.
fn succeeded(output: &Output) -> Vec<(String, String)> {
    assert!(output.status.success(), "xp failed:\n{}", stderr(output));
    stderr(output)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .filter(|(_, stage)| stage.contains('/'))
        .collect()
}

fn ran(labels: &[(String, String)]) -> Vec<String> {
    labels.iter().filter(|(label, _)| label == "done").map(|(_, stage)| stage.clone()).collect()
}

fn metrics(trial: &Trial, pipeline: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(trial.path(&format!("build/{pipeline}/evaluate/metrics.json")))
        .expect("read metrics.json");
    serde_json::from_str(&text).expect("parse metrics.json")
}

#[test]
fn boston_runs_and_reruns_only_training() {
    let trial = Trial::new("boston", &[("boston_housing.csv", data::boston_csv(120))]);
    let first = succeeded(&trial.xp(&["-S", "epochs=3"]));
    assert_eq!(ran(&first).len(), 6, "{first:?}");
    let metrics = metrics(&trial, "boston");
    assert!(metrics["rmse"].as_f64().unwrap().is_finite());
    assert!(trial.path("build/boston/plot/predicted_vs_actual.png").exists());
    assert!(trial.path("build/boston/plot/loss.png").exists());

    let cached = succeeded(&trial.xp(&["-S", "epochs=3"]));
    assert!(ran(&cached).is_empty(), "{cached:?}");
    let changed = succeeded(&trial.xp(&["-S", "epochs=3", "-S", "lr=0.01"]));
    assert_eq!(ran(&changed), vec!["boston/train", "boston/evaluate", "boston/plot"]);
    // Retraining gives the same weights; only the volatile timing differs.
    let forced = succeeded(&trial.xp(&["-S", "epochs=3", "-S", "lr=0.01", "--force", "train"]));
    assert_eq!(ran(&forced), vec!["boston/train"]);
}

#[test]
fn mnist_subset_runs() {
    let trial = Trial::new("mnist", &[("mnist_5k.csv.gz", data::mnist_csv_gz(150))]);
    succeeded(&trial.xp(&["-S", "epochs=1", "-S", "limit_train=100"]));
    let metrics = metrics(&trial, "mnist");
    assert_eq!(metrics["confusion_matrix"].as_array().unwrap().len(), 10);
    assert!(trial.path("build/mnist/plot/samples.png").exists());
    assert!(trial.path("build/mnist/plot/confusion.png").exists());
}

#[test]
fn fashion_mnist_runs() {
    let files = data::fashion_idx(60, 20);
    let trial = Trial::new("fashion-mnist", &files.iter().map(|(n, b)| (*n, b.clone())).collect::<Vec<_>>());
    succeeded(&trial.xp(&["-S", "epochs=1", "-S", "limit_train=60", "-S", "limit_test=20"]));
    let metrics = metrics(&trial, "fashion-mnist");
    assert_eq!(metrics["n_test"].as_i64(), Some(20));
    assert_eq!(metrics["class_names"][9].as_str(), Some("Ankle boot"));
}

#[test]
fn gan_runs_after_mnist_and_reuses_its_stages() {
    let mut files = vec![("mnist_5k.csv.gz", data::mnist_csv_gz(150))];
    files.extend(data::fashion_idx(60, 20).into_iter().map(|(n, b)| (n, b.clone())));
    let trial = Trial::new("gan", &files);
    // `gan.toml` includes the two data pipelines; its copy needs theirs.
    for name in ["mnist", "fashion-mnist"] {
        let other = Trial::new(name, &files);
        std::fs::copy(other.path(&format!("{name}.toml")), trial.path(&format!("{name}.toml"))).unwrap();
    }
    let small = ["-S", "epochs=1", "-S", "limit_train=100", "-S", "limit_test=20", "-S", "fashion_images=60"];
    let mnist = Command::new(xp_binary())
        .args(["run", "mnist.toml", "--profile", "quick", "--distdir", &trial.path("mirror").to_string_lossy()])
        .args(&small[..4])
        .current_dir(trial.path("."))
        .env_remove("XP_CACHE")
        .env_remove("XP_DISTDIR")
        .output()
        .expect("start xp");
    succeeded(&mnist);
    let labels = succeeded(&trial.xp(&small));
    let cached: Vec<&str> =
        labels.iter().filter(|(label, _)| label == "cached").map(|(_, stage)| stage.as_str()).collect();
    assert!(cached.contains(&"mnist/normalise"), "{labels:?}");
    assert!(cached.contains(&"mnist/build"), "{labels:?}");
    assert!(cached.contains(&"mnist/train"), "{labels:?}");
    let ran = ran(&labels);
    assert!(ran.contains(&"gan/mnist_judge".to_string()), "{ran:?}");
    assert!(ran.contains(&"gan/mnist_train".to_string()), "{ran:?}");
    assert!(ran.contains(&"gan/fashion_plot".to_string()), "{ran:?}");

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trial.path("build/gan/mnist_evaluate/metrics.json")).unwrap())
            .unwrap();
    assert!(metrics["frechet_distance"].as_f64().unwrap().is_finite());
    assert!(metrics["accuracy"].as_f64().unwrap() >= 0.0);
    for file in ["classes.png", "truncation.png", "interpolation_class.png", "metrics.png"] {
        assert!(trial.path(&format!("build/gan/fashion_plot/{file}")).exists(), "{file} is missing");
    }
}

/// Arguments that shrink the segmentation pipeline to a run of seconds.
const TINY_SEGMENTATION: [&str; 14] = [
    "-S", "width=64", "-S", "height=32", "-S", "scenes=16", "-S", "test_scenes=4", "-S", "epochs=1", "-S", "model_width=4", "-S",
    "levels=3",
];

#[test]
fn segmentation_runs_and_reruns_from_build() {
    let trial = Trial::new("segmentation", &[]);
    // A stage that applies the model to a real photo, here a PNG the test writes.
    let mut text = std::fs::read_to_string(trial.path("segmentation.toml")).unwrap();
    text.push_str(
        "\n[stages.photo]\nkind = \"seg_plot\"\nneeds = [\"generate\", \"train\", \"evaluate_synthetic\"]\n\
         inputs = [\"street.png\"]\nparams = { real_image = \"street.png\" }\n",
    );
    std::fs::write(trial.path("segmentation.toml"), text).unwrap();
    let photo: Vec<u8> = (0..90 * 60).flat_map(|i| [(i % 90 * 2) as u8, (i / 90 * 4) as u8, 128]).collect();
    image::save_buffer(trial.path("street.png"), &photo, 90, 60, image::ColorType::Rgb8).unwrap();

    let first = succeeded(&trial.xp(&TINY_SEGMENTATION));
    assert_eq!(ran(&first).len(), 6, "{first:?}");
    let text = std::fs::read_to_string(trial.path("build/segmentation/evaluate_synthetic/metrics.json")).unwrap();
    let metrics: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(metrics["main_metric"], "mean_iou");
    assert_eq!(metrics["data"], "synthetic");
    assert!(metrics["mean_iou"].as_f64().unwrap().is_finite());
    for file in ["scenes.png", "iou.png", "training.png", "confusion.png"] {
        assert!(trial.path(&format!("build/segmentation/plot/{file}")).exists(), "{file} is missing");
    }
    assert!(trial.path("build/segmentation/photo/real.png").exists());

    let cached = succeeded(&trial.xp(&TINY_SEGMENTATION));
    assert!(ran(&cached).is_empty(), "{cached:?}");
    let mut wider = TINY_SEGMENTATION.to_vec();
    wider.extend(["-S", "model_width=6"]);
    let changed = succeeded(&trial.xp(&wider));
    let mut rerun = ran(&changed);
    rerun.sort();
    let expected =
        ["segmentation/build", "segmentation/evaluate_synthetic", "segmentation/photo", "segmentation/plot", "segmentation/train"];
    assert_eq!(rerun, expected);
}
