//! End-to-end runs of the kind on small files that each test writes.

use std::collections::BTreeMap;

use tempfile::TempDir;
use xp::stages::Upstream;
use zip::CompressionMethod;

use super::*;
use crate::data::idx::tests::encode_idx;
use crate::data::npz::tests::{encode_npy, encode_zip};
use crate::data::split::split_indices;
use crate::data::testing::{gzip, write};

/// A temp dir with a download folder, an empty output folder and a job.
struct Fixture {
    _dir: TempDir,
    download: PathBuf,
    job: StageJob,
}

fn fixture(params: &[(&str, Value)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let download = dir.path().join("download");
    let output = dir.path().join("out");
    std::fs::create_dir_all(&download).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    let job = StageJob {
        stage: "test/normalise".to_string(),
        kind: "normalise".to_string(),
        workspace: dir.path().to_path_buf(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        output,
        upstream: vec![Upstream {
            stage: "test/download".to_string(),
            kind: "download".to_string(),
            outputs: vec![download.clone()],
        }],
        threads: 1,
        distdir: None,
    };
    Fixture {
        _dir: dir,
        download,
        job,
    }
}

fn text(value: &str) -> Value {
    Value::Str(value.to_string())
}

/// Runs the job and returns its tensors by name and its meta.json.
fn run_ok(fixture: &Fixture) -> (BTreeMap<String, Tensor>, Json) {
    run(&fixture.job).unwrap();
    let tensors = Tensor::read_safetensors(fixture.job.output.join("data.safetensors")).unwrap();
    let meta = std::fs::read_to_string(fixture.job.output.join("meta.json")).unwrap();
    (
        tensors.into_iter().collect(),
        serde_json::from_str(&meta).unwrap(),
    )
}

fn run_err(fixture: &Fixture) -> String {
    format!("{:#}", run(&fixture.job).unwrap_err())
}

fn floats(tensor: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(tensor.flatten(0, -1)).unwrap()
}

fn longs(tensor: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(tensor).unwrap()
}

/// 20 rows: features `i` and `100 + i * i`, target `3 * i`.
fn regression_csv() -> String {
    (0..20)
        .map(|i| format!("{i},{},{}\n", 100 + i * i, 3 * i))
        .collect()
}

#[test]
fn csv_regression_standardised_from_train() {
    let f = fixture(&[
        ("format", text("csv")),
        ("file", text("r.csv")),
        ("task", text("regression")),
        ("test_fraction", Value::Float(0.25)),
        ("seed", Value::Int(7)),
    ]);
    write(&f.download, "r.csv", regression_csv().as_bytes());
    let (tensors, meta) = run_ok(&f);
    assert_eq!(tensors["train_x"].size(), vec![15, 2]);
    assert_eq!(tensors["train_x"].kind(), Kind::Float);
    assert_eq!(tensors["train_y"].size(), vec![15, 1]);
    assert_eq!(tensors["train_y"].kind(), Kind::Float);
    assert_eq!(tensors["test_x"].size(), vec![5, 2]);
    assert_eq!(tensors["test_y"].size(), vec![5, 1]);

    let split = split_indices(20, 0.25, 7).unwrap();
    let expected_y: Vec<f32> = split.train.iter().map(|&i| 3.0 * i as f32).collect();
    assert_eq!(
        floats(&tensors["train_y"]),
        expected_y,
        "targets are unchanged"
    );
    let train_mean = split.train.iter().map(|&i| i as f64).sum::<f64>() / 15.0;
    let all_mean = 9.5;
    let meta_mean = meta["feature_mean"][0].as_f64().unwrap();
    assert!(
        (meta_mean - train_mean).abs() < 1e-9,
        "{meta_mean} vs {train_mean}"
    );
    assert!(
        (meta_mean - all_mean).abs() > 1e-6,
        "the split must change the mean"
    );
    let column: Vec<f32> = floats(&tensors["train_x"]).into_iter().step_by(2).collect();
    assert!(
        column.iter().sum::<f32>().abs() < 1e-4,
        "train features are centred"
    );

    assert_eq!(meta["task"], "regression");
    assert_eq!(meta["input_shape"], json!([2]));
    assert_eq!(meta["n_train"], 15);
    assert_eq!(meta["n_test"], 5);
    assert_eq!(meta["feature_scaling"], "standardise");
    assert_eq!(meta["split"], json!({ "test_fraction": 0.25, "seed": 7 }));
    assert!(meta.get("num_classes").is_none());
}

#[test]
fn csv_limits_keep_first_samples() {
    let f = fixture(&[
        ("format", text("csv")),
        ("file", text("r.csv")),
        ("task", text("regression")),
        ("limit_train", Value::Int(4)),
        ("limit_test", Value::Int(100)),
    ]);
    write(&f.download, "r.csv", regression_csv().as_bytes());
    let (tensors, meta) = run_ok(&f);
    let split = split_indices(20, 0.2, 42).unwrap();
    let expected: Vec<f32> = split.train[..4].iter().map(|&i| 3.0 * i as f32).collect();
    assert_eq!(floats(&tensors["train_y"]), expected);
    assert_eq!(
        tensors["test_y"].size(),
        vec![4, 1],
        "a limit above the count keeps all"
    );
    assert_eq!(meta["n_train"], 4);
    let train_mean = split.train[..4].iter().map(|&i| i as f64).sum::<f64>() / 4.0;
    assert!((meta["feature_mean"][0].as_f64().unwrap() - train_mean).abs() < 1e-9);
}

#[test]
fn csv_header_label_column_classification() {
    let f = fixture(&[
        ("format", text("csv")),
        ("file", text("c.csv.gz")),
        ("task", text("classification")),
        ("has_header", Value::Bool(true)),
        ("label_column", Value::Int(0)),
    ]);
    let rows: String = (0..10)
        .map(|i| format!("{},{i},{}\n", i % 3, i * 2))
        .collect();
    write(
        &f.download,
        "c.csv.gz",
        &gzip(format!("label,a,b\n{rows}").as_bytes()),
    );
    let (tensors, meta) = run_ok(&f);
    assert_eq!(tensors["train_x"].size(), vec![8, 2]);
    assert_eq!(tensors["train_y"].kind(), Kind::Int64);
    assert_eq!(tensors["train_y"].size(), vec![8]);
    let split = split_indices(10, 0.2, 42).unwrap();
    let expected: Vec<i64> = split.train.iter().map(|&i| (i % 3) as i64).collect();
    assert_eq!(longs(&tensors["train_y"]), expected);
    assert_eq!(meta["task"], "classification");
    assert_eq!(meta["num_classes"], 3);
    assert_eq!(meta["feature_scaling"], "standardise");
}

#[test]
fn csv_784_features_become_images() {
    let f = fixture(&[
        ("format", text("csv")),
        ("file", text("m.csv")),
        ("task", text("classification")),
    ]);
    let row = |i: usize| {
        let pixels: Vec<String> = (0..784).map(|p| ((p + i) % 256).to_string()).collect();
        format!("{},{}\n", pixels.join(","), i % 10)
    };
    write(
        &f.download,
        "m.csv",
        (0..10).map(row).collect::<String>().as_bytes(),
    );
    let (tensors, meta) = run_ok(&f);
    assert_eq!(tensors["train_x"].size(), vec![8, 1, 28, 28]);
    assert_eq!(tensors["test_x"].size(), vec![2, 1, 28, 28]);
    let pixels = floats(&tensors["train_x"]);
    assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    assert_eq!(pixels.iter().copied().fold(0.0f32, f32::max), 1.0);
    assert_eq!(meta["input_shape"], json!([1, 28, 28]));
    assert_eq!(meta["feature_scaling"], "divide_by_255");
    assert!(meta.get("feature_mean").is_none());
}

#[test]
fn csv_image_shape_checked() {
    let f = fixture(&[
        ("format", text("csv")),
        ("file", text("m.csv")),
        ("task", text("classification")),
        ("image_shape", text("1x3x3")),
    ]);
    write(
        &f.download,
        "m.csv",
        "1,2,3,4,0\n5,6,7,8,1\n1,1,1,1,0\n".as_bytes(),
    );
    let message = run_err(&f);
    assert!(message.contains("`1x3x3` of stage `test/normalise` does not match the 4 features"));
}

fn write_idx_files(download: &Path) {
    let train_images: Vec<u8> = (0..20).map(|i| (i * 13) as u8).collect();
    write(
        download,
        "train-img.gz",
        &gzip(&encode_idx(&[5, 2, 2], &train_images)),
    );
    write(
        download,
        "train-lab.gz",
        &gzip(&encode_idx(&[5], &[0, 1, 2, 1, 0])),
    );
    write(download, "test-img", &encode_idx(&[2, 2, 2], &[255; 8]));
    write(download, "test-lab", &encode_idx(&[2], &[2, 2]));
}

fn idx_params() -> Vec<(&'static str, Value)> {
    vec![
        ("format", text("idx")),
        ("train_images", text("train-img.gz")),
        ("train_labels", text("train-lab.gz")),
        ("test_images", text("test-img")),
        ("test_labels", text("test-lab")),
    ]
}

#[test]
fn idx_images_with_limit_and_names() {
    let mut params = idx_params();
    params.push(("limit_train", Value::Int(3)));
    params.push((
        "class_names",
        Value::List(vec![text("a"), text("b"), text("c"), text("d")]),
    ));
    let f = fixture(&params);
    write_idx_files(&f.download);
    let (tensors, meta) = run_ok(&f);
    assert_eq!(tensors["train_x"].size(), vec![3, 1, 2, 2]);
    assert_eq!(tensors["test_x"].size(), vec![2, 1, 2, 2]);
    assert_eq!(longs(&tensors["train_y"]), vec![0, 1, 2]);
    assert_eq!(longs(&tensors["test_y"]), vec![2, 2]);
    let expected: Vec<f32> = (0..12).map(|i| (i * 13) as f32 / 255.0).collect();
    assert_eq!(floats(&tensors["train_x"]), expected);
    assert_eq!(meta["num_classes"], 4, "class_names sets the class count");
    assert_eq!(meta["class_names"], json!(["a", "b", "c", "d"]));
    assert_eq!(meta["n_train"], 3);
    assert!(meta.get("split").is_none());
    let sources = meta["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 4);
    assert_eq!(sources[2]["file"], "test-img");
    let digest = Sha256::digest(encode_idx(&[2, 2, 2], &[255; 8]));
    assert_eq!(sources[2]["sha256"], format!("{digest:x}"));
}

#[test]
fn idx_count_mismatch_rejected() {
    let f = fixture(&idx_params());
    write_idx_files(&f.download);
    write(&f.download, "test-lab", &encode_idx(&[3], &[2, 2, 2]));
    assert!(run_err(&f).contains("there are 2 images but 3 labels"));
}

#[test]
fn npz_images_read() {
    let f = fixture(&[("format", text("npz")), ("file", text("mnist.npz"))]);
    let zip = encode_zip(
        &[
            ("x_train.npy", encode_npy(&[3, 2, 3], &[51; 18])),
            ("y_train.npy", encode_npy(&[3], &[9, 8, 7])),
            ("x_test.npy", encode_npy(&[1, 2, 3], &[0; 6])),
            ("y_test.npy", encode_npy(&[1], &[5])),
        ],
        CompressionMethod::Stored,
    );
    write(&f.download, "mnist.npz", &zip);
    let (tensors, meta) = run_ok(&f);
    assert_eq!(tensors["train_x"].size(), vec![3, 1, 2, 3]);
    assert_eq!(floats(&tensors["train_x"]), vec![0.2; 18]);
    assert_eq!(longs(&tensors["train_y"]), vec![9, 8, 7]);
    assert_eq!(tensors["test_x"].size(), vec![1, 1, 2, 3]);
    assert_eq!(meta["num_classes"], 10);
    assert_eq!(meta["input_shape"], json!([1, 2, 3]));
}

#[test]
fn bad_params_rejected() {
    let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
        (vec![], "needs the parameter `format`"),
        (
            vec![("format", text("hdf5"))],
            "must be \"csv\", \"idx\" or \"npz\", not `hdf5`",
        ),
        (
            vec![("format", text("csv")), ("file", text("r.csv"))],
            "`task` of stage `test/normalise` must be",
        ),
        (
            vec![("format", text("csv")), ("task", text("regression"))],
            "needs the parameter `file`",
        ),
        (
            vec![
                ("format", text("csv")),
                ("file", text("../r.csv")),
                ("task", text("regression")),
            ],
            "must be a file name in the download output, not the path `../r.csv`",
        ),
        (
            vec![
                ("format", text("csv")),
                ("file", text("x.csv")),
                ("task", text("regression")),
            ],
            "`x.csv` (parameter `file`) is not in the download output",
        ),
        (
            vec![
                ("format", text("csv")),
                ("file", text("r.csv")),
                ("task", text("regression")),
                ("limit_train", Value::Int(0)),
            ],
            "`limit_train` of stage `test/normalise` must be at least 1, not 0",
        ),
        (
            vec![
                ("format", text("csv")),
                ("file", text("r.csv")),
                ("task", text("regression")),
                ("label_column", Value::Int(3)),
            ],
            "`label_column` of stage `test/normalise` is 3, outside the 3 columns of `r.csv`",
        ),
        (
            vec![
                ("format", text("csv")),
                ("file", text("r.csv")),
                ("task", text("regression")),
                ("class_names", Value::List(vec![text("a")])),
            ],
            "`class_names` of stage `test/normalise` is set, but the task is regression",
        ),
        (
            vec![
                ("format", text("csv")),
                ("file", text("r.csv")),
                ("task", text("regression")),
                ("seed", Value::Int(-1)),
            ],
            "`seed` of stage `test/normalise` must not be negative, not -1",
        ),
        (
            vec![
                ("format", text("npz")),
                ("file", text("r.csv")),
                ("task", text("regression")),
            ],
            "must be \"classification\" for image files",
        ),
    ];
    for (params, expected) in cases {
        let f = fixture(&params);
        write(&f.download, "r.csv", regression_csv().as_bytes());
        let message = run_err(&f);
        assert!(message.contains(expected), "params {params:?}: {message}");
    }
}

#[test]
fn too_few_class_names_rejected() {
    let mut params = idx_params();
    params.push(("class_names", Value::List(vec![text("a"), text("b")])));
    let f = fixture(&params);
    write_idx_files(&f.download);
    assert!(run_err(&f).contains("names 2 classes, but the label 2 occurs"));
}

#[test]
fn fractional_label_rejected() {
    let f = fixture(&[
        ("format", text("csv")),
        ("file", text("c.csv")),
        ("task", text("classification")),
    ]);
    let rows: String = (0..10)
        .map(|i| format!("{i},{}\n", if i == 4 { 1.5 } else { 1.0 }))
        .collect();
    write(&f.download, "c.csv", rows.as_bytes());
    let message = run_err(&f);
    assert!(
        message.contains("`c.csv` data row 5: the label 1.5 is not a non-negative integer"),
        "{message}"
    );
}

#[test]
fn missing_download_upstream_rejected() {
    let mut f = fixture(&[("format", text("csv"))]);
    f.job.upstream.clear();
    assert!(run_err(&f).contains("needs a `download` stage upstream"));
}
