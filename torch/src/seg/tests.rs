use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::{ModuleT, VarStore};
use tch::{Kind, Tensor};
use xp::spec::Value;
use xp::stages::{StageJob, Upstream};

use super::generate::{generate, scene};
use super::metrics::Confusion;
use super::model::{SegNet, SegSpec};
use super::reader::{
    layout_pair, pairs, read_pair, read_pairs, write_label_png, write_rgb_png, Pair,
};
use super::{id, Scenes, IGNORE};

#[test]
fn generator_same_seed_same_bytes() {
    let first = scene(96, 48, 7, 3);
    let second = scene(96, 48, 7, 3);
    assert!(first.0 == second.0, "images differ");
    assert!(first.1 == second.1, "labels differ");
    let other_seed = scene(96, 48, 8, 3);
    assert!(first.0 != other_seed.0, "another seed gave the same image");
    let other_index = scene(96, 48, 7, 4);
    assert!(
        first.1 != other_index.1,
        "another scene gave the same labels"
    );
}

#[test]
fn generator_batches_match_single_scenes() {
    let batch = generate(64, 32, 3, 5, 10);
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for index in 10..13 {
        let (rgb, label) = scene(64, 32, 5, index);
        images.extend(rgb);
        labels.extend(label);
    }
    assert!(batch.images == images);
    assert!(batch.labels == labels);
}

#[test]
fn generator_label_set() {
    let split = generate(128, 64, 40, 1, 0);
    assert_eq!(split.images.len(), 40 * 128 * 64 * 3);
    assert_eq!(split.labels.len(), 40 * 128 * 64);
    let mut counts = [0usize; 256];
    for &label in &split.labels {
        counts[label as usize] += 1;
    }
    let expected = [
        id::ROAD,
        id::SIDEWALK,
        id::BUILDING,
        id::POLE,
        id::VEGETATION,
        id::TERRAIN,
        id::SKY,
        id::PERSON,
        id::CAR,
        IGNORE,
    ];
    for (label, &count) in counts.iter().enumerate() {
        let label = label as u8;
        if expected.contains(&label) {
            assert!(count > 0, "label {label} never occurs");
        } else {
            assert_eq!(count, 0, "label {label} occurs");
        }
    }
    // Road and sky are large classes in every driving scene.
    assert!(counts[id::ROAD as usize] > split.labels.len() / 10);
    assert!(counts[id::SKY as usize] > split.labels.len() / 20);
}

#[test]
fn generator_scenes_vary() {
    let (first, _) = scene(64, 32, 1, 0);
    let brightness = |rgb: &[u8]| rgb.iter().map(|&v| v as f64).sum::<f64>() / rgb.len() as f64;
    let levels: Vec<f64> = (0..12)
        .map(|i| brightness(&scene(64, 32, 1, i).0))
        .collect();
    let spread = levels.iter().cloned().fold(f64::MIN, f64::max)
        - levels.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread > 15.0,
        "mean brightness varies by only {spread:.1} over 12 scenes"
    );
    assert!(first.iter().any(|&v| v != first[0]));
}

/// Writes `count` generated scenes as pairs of `split`/`city` under `root`.
fn write_layout(
    root: &Path,
    split: &str,
    city: &str,
    count: u64,
    size: (usize, usize),
) -> Vec<Pair> {
    (0..count)
        .map(|index| {
            let pair = layout_pair(root, split, city, &format!("{city}_{index:06}_000019"));
            std::fs::create_dir_all(pair.image.parent().unwrap()).unwrap();
            std::fs::create_dir_all(pair.label.parent().unwrap()).unwrap();
            let (rgb, labels) = scene(size.0, size.1, 3, index);
            write_rgb_png(&pair.image, size.0 as u32, size.1 as u32, &rgb).unwrap();
            write_label_png(&pair.label, size.0 as u32, size.1 as u32, &labels).unwrap();
            pair
        })
        .collect()
}

#[test]
fn reader_reads_cityscapes_layout() {
    let root = tempfile::tempdir().unwrap();
    let mut written = write_layout(root.path(), "train", "bremen", 2, (64, 32));
    written.extend(write_layout(root.path(), "train", "aachen", 1, (64, 32)));
    let found = pairs(root.path(), "train").unwrap();
    assert_eq!(found.len(), 3);
    // Sorted by city, then by name.
    assert_eq!(found[0], written[2]);
    assert_eq!(found[1], written[0]);
    let split = read_pairs(&found, 64, 32).unwrap();
    let (rgb, labels) = scene(64, 32, 3, 0);
    let size = 64 * 32;
    assert!(split.images[size * 3..size * 6] == rgb[..]);
    assert!(split.labels[size..size * 2] == labels[..]);
}

#[test]
fn reader_resizes_labels_to_nearest() {
    let root = tempfile::tempdir().unwrap();
    let written = write_layout(root.path(), "val", "ulm", 1, (64, 32));
    let split = read_pairs(&written, 32, 16).unwrap();
    assert_eq!(split.images.len(), 32 * 16 * 3);
    let (_, original) = scene(64, 32, 3, 0);
    // Nearest-pixel resizing keeps every value one of the original labels.
    assert!(split.labels.iter().all(|label| original.contains(label)));
}

#[test]
fn reader_rejects_size_mismatch() {
    let root = tempfile::tempdir().unwrap();
    let pair = write_layout(root.path(), "train", "ulm", 1, (64, 32)).remove(0);
    write_label_png(&pair.label, 32, 32, &vec![0u8; 32 * 32]).unwrap();
    let message = format!("{:#}", read_pair(&pair).unwrap_err());
    assert!(
        message.contains("ulm_000000_000019_gtFine_labelTrainIds.png"),
        "{message}"
    );
    assert!(message.contains("64x32"), "{message}");
    assert!(message.contains("32x32"), "{message}");
}

#[test]
fn reader_rejects_unknown_label_value() {
    let root = tempfile::tempdir().unwrap();
    let pair = write_layout(root.path(), "train", "ulm", 1, (64, 32)).remove(0);
    let mut labels = vec![0u8; 64 * 32];
    labels[64 * 3 + 5] = 40;
    write_label_png(&pair.label, 64, 32, &labels).unwrap();
    let message = format!("{:#}", read_pair(&pair).unwrap_err());
    assert!(message.contains("_gtFine_labelTrainIds.png"), "{message}");
    assert!(message.contains("value 40 at pixel (5, 3)"), "{message}");
}

#[test]
fn reader_rejects_unreadable_png() {
    let root = tempfile::tempdir().unwrap();
    let pair = write_layout(root.path(), "train", "ulm", 1, (64, 32)).remove(0);
    std::fs::write(&pair.image, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let message = format!("{:#}", read_pair(&pair).unwrap_err());
    assert!(
        message.contains("ulm_000000_000019_leftImg8bit.png"),
        "{message}"
    );
    assert!(message.contains("not a readable PNG"), "{message}");
}

#[test]
fn reader_rejects_colour_label_file() {
    let root = tempfile::tempdir().unwrap();
    let pair = write_layout(root.path(), "train", "ulm", 1, (64, 32)).remove(0);
    write_rgb_png(&pair.label, 64, 32, &vec![0u8; 64 * 32 * 3]).unwrap();
    let message = format!("{:#}", read_pair(&pair).unwrap_err());
    assert!(message.contains("8-bit greyscale"), "{message}");
}

#[test]
fn reader_rejects_missing_label_file() {
    let root = tempfile::tempdir().unwrap();
    let pair = write_layout(root.path(), "train", "ulm", 1, (64, 32)).remove(0);
    std::fs::remove_file(&pair.label).unwrap();
    let message = format!("{:#}", pairs(root.path(), "train").unwrap_err());
    assert!(message.contains("has no label file"), "{message}");
    assert!(
        message.contains("ulm_000000_000019_leftImg8bit.png"),
        "{message}"
    );
}

#[test]
fn reader_rejects_empty_split() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("leftImg8bit/val/ulm")).unwrap();
    let message = format!("{:#}", pairs(root.path(), "val").unwrap_err());
    assert!(
        message.contains("no `*_leftImg8bit.png` images"),
        "{message}"
    );
}

#[test]
fn confusion_scores_known_case() {
    // Truth: 4 road, 2 sky, 1 ignored. Prediction: one road pixel called sky,
    // and the ignored pixel called car (not counted).
    let truth = Tensor::from_slice(&[0u8, 0, 0, 0, 10, 10, IGNORE]).view([1, 1, 7]);
    let predicted = Tensor::from_slice(&[0i64, 0, 0, 10, 10, 10, 13]).view([1, 1, 7]);
    let mut confusion = Confusion::new();
    confusion.add(&predicted, &truth);
    assert_eq!(confusion.0[0][0], 3);
    assert_eq!(confusion.0[0][10], 1);
    assert_eq!(confusion.0[10][10], 2);
    assert_eq!(confusion.0.iter().flatten().sum::<i64>(), 6);
    let iou = confusion.iou();
    assert_eq!(iou[0], Some(0.75));
    assert_eq!(iou[10], Some(2.0 / 3.0));
    assert_eq!(iou[13], None);
    assert!((confusion.mean_iou() - (0.75 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    assert!((confusion.pixel_accuracy() - 5.0 / 6.0).abs() < 1e-12);
}

fn spec(upsampling: &str, skips: bool, dilations: Vec<i64>) -> SegSpec {
    SegSpec {
        classes: 19,
        widths: vec![4, 8, 16],
        convs: 1,
        dilations,
        upsampling: upsampling.into(),
        skips,
        seed: 0,
    }
}

#[test]
fn network_keeps_image_size() {
    let _guard = crate::torch_rng_lock();
    for (upsampling, skips, dilations) in
        [("transpose", true, vec![]), ("bilinear", false, vec![2, 4])]
    {
        let vs = VarStore::new(tch::Device::Cpu);
        let network = SegNet::new(&vs.root(), &spec(upsampling, skips, dilations)).unwrap();
        let images = Tensor::zeros([2, 3, 16, 32], (Kind::Float, tch::Device::Cpu));
        let logits = network.forward_t(&images, false);
        assert_eq!(logits.size(), [2, 19, 16, 32], "{upsampling}");
    }
}

#[test]
fn network_rejects_indivisible_size() {
    let message = spec("transpose", true, vec![])
        .check_size(30, 16)
        .unwrap_err()
        .to_string();
    assert!(message.contains("multiples of 4"), "{message}");
    let mut bad = spec("nearest", true, vec![]);
    assert!(bad
        .check()
        .unwrap_err()
        .to_string()
        .contains("`upsampling`"));
    bad.upsampling = "bilinear".into();
    bad.widths.clear();
    assert!(bad.check().unwrap_err().to_string().contains("`widths`"));
}

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

/// Runs generate, build, train, evaluate and plot on tiny scenes, and
/// returns the parsed `metrics.json`.
fn run_stages(root: &Path) -> serde_json::Value {
    let _guard = crate::torch_rng_lock();
    let generate_params = [
        ("width", Value::Int(64)),
        ("height", Value::Int(32)),
        ("scenes", Value::Int(24)),
        ("test_scenes", Value::Int(6)),
        ("samples", Value::Int(2)),
    ];
    let generated = job(root, "seg_generate", &generate_params, &[]);
    crate::kinds::run(&generated).unwrap();
    let data = generated.output.as_path();
    let build_params = [
        ("width", Value::Int(4)),
        ("levels", Value::Int(3)),
        ("dilations", Value::Str("2".into())),
    ];
    let built = job(root, "seg_build", &build_params, &[("seg_generate", data)]);
    crate::kinds::run(&built).unwrap();
    let train_params = [
        ("epochs", Value::Int(2)),
        ("batch_size", Value::Int(8)),
        ("class_weights", Value::Str("balanced".into())),
    ];
    let trained = job(
        root,
        "seg_train",
        &train_params,
        &[("seg_generate", data), ("seg_build", &built.output)],
    );
    crate::kinds::run(&trained).unwrap();
    let evaluated = job(
        root,
        "seg_evaluate",
        &[],
        &[("seg_generate", data), ("seg_train", &trained.output)],
    );
    crate::kinds::run(&evaluated).unwrap();
    let street = root.join("street.png");
    let (rgb, _) = scene(120, 80, 99, 0);
    write_rgb_png(&street, 120, 80, &rgb).unwrap();
    let plot_params = [("real_image", Value::Str("street.png".into()))];
    let plot_upstream = [
        ("seg_generate", data),
        ("seg_train", trained.output.as_path()),
        ("seg_evaluate", evaluated.output.as_path()),
    ];
    crate::kinds::run(&job(root, "seg_plot", &plot_params, &plot_upstream)).unwrap();
    let text = std::fs::read_to_string(evaluated.output.join("metrics.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn stages_run_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    let metrics = run_stages(root.path());
    assert_eq!(metrics["main_metric"], "mean_iou");
    assert_eq!(metrics["higher_is_better"], true);
    assert_eq!(metrics["data"], "synthetic");
    assert_eq!(metrics["n_test"], 6);
    let mean = metrics["mean_iou"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean), "mean IoU {mean}");
    let accuracy = metrics["pixel_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "pixel accuracy {accuracy}");
    assert_eq!(metrics["confusion_matrix"].as_array().unwrap().len(), 19);
    assert!(metrics["per_class_iou"]["road"].is_number());
    assert!(metrics["per_class_iou"]["train"].is_null());
    for file in [
        "scenes.png",
        "iou.png",
        "training.png",
        "validation.png",
        "confusion.png",
        "real.png",
    ] {
        assert!(
            root.path().join("seg_plot").join(file).is_file(),
            "{file} is missing"
        );
    }
    let history = std::fs::read_to_string(root.path().join("seg_train/history.json")).unwrap();
    assert!(history.contains("val_mean_iou"), "{history}");
}

#[test]
fn plot_finds_real_image_in_download() {
    let root = tempfile::tempdir().unwrap();
    run_stages(root.path());
    let _guard = crate::torch_rng_lock();
    let downloaded = root.path().join("download");
    std::fs::create_dir_all(&downloaded).unwrap();
    let (rgb, _) = scene(200, 100, 5, 1);
    write_rgb_png(&downloaded.join("frame.png"), 200, 100, &rgb).unwrap();
    let upstream = [
        ("seg_generate", root.path().join("seg_generate")),
        ("seg_train", root.path().join("seg_train")),
        ("seg_evaluate", root.path().join("seg_evaluate")),
        ("download", downloaded.clone()),
    ];
    let upstream: Vec<(&str, &Path)> = upstream.iter().map(|(k, p)| (*k, p.as_path())).collect();
    let found = job(
        root.path(),
        "seg_plot",
        &[("real_image", Value::Str("frame.png".into()))],
        &upstream,
    );
    std::fs::remove_dir_all(&found.output).unwrap();
    std::fs::create_dir_all(&found.output).unwrap();
    crate::kinds::run(&found).unwrap();
    assert!(found.output.join("real.png").is_file());

    let missing = job(
        root.path(),
        "seg_plot",
        &[("real_image", Value::Str("nowhere.png".into()))],
        &upstream,
    );
    let message = format!("{:#}", crate::kinds::run(&missing).unwrap_err());
    assert!(message.contains("`nowhere.png`"), "{message}");
}

#[test]
fn stages_are_deterministic() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    run_stages(first.path());
    run_stages(second.path());
    let files = [
        "seg_generate/data.safetensors",
        "seg_generate/samples/leftImg8bit/test/synthetic/synthetic_000001_leftImg8bit.png",
        "seg_build/init.safetensors",
        "seg_train/weights.safetensors",
        "seg_train/history.json",
        "seg_evaluate/metrics.json",
    ];
    for file in files {
        let read = |root: &Path| std::fs::read(root.join(file)).unwrap();
        assert!(read(first.path()) == read(second.path()), "{file} differs");
    }
}

#[test]
fn import_reads_generated_samples() {
    let root = tempfile::tempdir().unwrap();
    let _guard = crate::torch_rng_lock();
    let generate_params = [
        ("width", Value::Int(64)),
        ("height", Value::Int(32)),
        ("scenes", Value::Int(3)),
        ("test_scenes", Value::Int(3)),
        ("samples", Value::Int(3)),
    ];
    let generated = job(root.path(), "seg_generate", &generate_params, &[]);
    crate::kinds::run(&generated).unwrap();
    // The samples are in split `test`; use them as both splits.
    let import_params = [
        ("root", Value::Str("seg_generate/samples".into())),
        ("train_split", Value::Str("test".into())),
        ("test_split", Value::Str("test".into())),
    ];
    let imported = job(root.path(), "seg_import", &import_params, &[]);
    crate::kinds::run(&imported).unwrap();
    let original = Scenes::read(&generated.output).unwrap();
    let read = Scenes::read(&imported.output).unwrap();
    assert_eq!(read.meta.source, "real");
    assert_eq!((read.meta.width, read.meta.height), (64, 32));
    assert!(read.test_images == original.test_images, "images differ");
    assert!(read.test_labels == original.test_labels, "labels differ");
}

#[test]
fn import_names_bad_file() {
    let root = tempfile::tempdir().unwrap();
    let pair = write_layout(&root.path().join("data"), "train", "ulm", 1, (64, 32)).remove(0);
    write_layout(&root.path().join("data"), "val", "ulm", 1, (64, 32));
    let mut labels = vec![0u8; 64 * 32];
    labels[0] = 19;
    write_label_png(&pair.label, 64, 32, &labels).unwrap();
    let imported = job(
        root.path(),
        "seg_import",
        &[("root", Value::Str("data".into()))],
        &[],
    );
    let message = format!("{:#}", crate::kinds::run(&imported).unwrap_err());
    assert!(
        message.contains("train/ulm/ulm_000000_000019_gtFine_labelTrainIds.png"),
        "{message}"
    );
    assert!(message.contains("value 19"), "{message}");
}
