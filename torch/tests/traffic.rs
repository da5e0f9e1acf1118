//! A tiny end-to-end run of `pipelines/traffic.toml` through `xp run`: it
//! trains a DQN for a few hundred decisions, scores it and the reference
//! policies on short runs, and draws the charts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn xp_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_xp-torch")).with_file_name("xp");
    assert!(path.is_file(), "{} is missing; run `cargo build --workspace` first", path.display());
    path
}

fn read_metrics(dir: &Path, stage: &str) -> serde_json::Value {
    let path = dir.join("build/traffic").join(stage).join("metrics.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("read {}", path.display()));
    serde_json::from_str(&text).expect("metrics.json is JSON")
}

#[test]
fn tiny_traffic_pipeline_trains_scores_and_plots() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/traffic.toml");
    std::fs::copy(&committed, dir.path().join("traffic.toml")).expect("copy the pipeline");
    let output = Command::new(xp_binary())
        .args(["run", "traffic.toml", "--profile", "tiny"])
        .current_dir(dir.path())
        .env_remove("XP_CACHE")
        .env_remove("XP_DISTDIR")
        .output()
        .expect("start xp");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let nothing = read_metrics(dir.path(), "score_nothing");
    assert_eq!(nothing["main_metric"], "median_mph");
    assert_eq!(nothing["higher_is_better"], true);
    assert_eq!(nothing["runs"], 3);
    let dqn = read_metrics(dir.path(), "score");
    assert_eq!(dqn["policy"], "dqn");
    assert!(dqn["median_mph"].as_f64().unwrap() > 0.0);
    let train = dir.path().join("build/traffic/train");
    for file in ["weights.safetensors", "brain.json", "history.json", "volatile/timing.json"] {
        assert!(train.join(file).is_file(), "train wrote {file}");
    }
    let plot = dir.path().join("build/traffic/plot");
    for file in ["learning_curve.png", "reward.png", "space_time.png", "actions.png"] {
        assert!(plot.join(file).is_file(), "plot wrote {file}");
    }
}
