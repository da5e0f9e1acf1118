//! The `seg_plot` stage kind: figures of a trained and evaluated
//! segmentation network.
//!
//! Upstream: one scene data stage, one `seg_train` and one `seg_evaluate`
//! stage, and optionally a `download` stage. Parameters:
//! - `title` (default: the stage id), the start of every figure's title;
//! - `scenes` (4), how many held-out scenes to show;
//! - `real_image` (none), an image file to segment with the trained model.
//!   It is looked up among the files of the upstream `download` stage first,
//!   then as a path relative to the workspace. List a workspace file in the
//!   stage's `inputs` so that the cache notices when it changes.
//!
//! Output, with every title naming the data as synthetic or real:
//! - `scenes.png`: image, ground truth, prediction and prediction overlaid
//!   on the image for the first held-out scenes, with a colour legend of the
//!   classes present;
//! - `iou.png`: per-class IoU bars in the class colours, with the mean;
//! - `training.png`: training and validation loss per epoch, and
//!   `validation.png`: validation mean IoU and pixel accuracy per epoch;
//! - `confusion.png`: the confusion matrix of the classes present, each row
//!   in percent of that true class's pixels;
//! - `real.png` (with `real_image`): the image, the prediction and the
//!   overlay, titled as a model trained on synthetic scenes when it was.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use plotters::style::{BLUE, GREEN, RED};
use serde::Deserialize;
use tch::nn::VarStore;
use tch::{Kind, Tensor};
use xp::stages::StageJob;

use crate::model::load_weights;
use crate::plot::segmentation::{panel_rows, score_bars, Bar, Panel, Swatch};
use crate::plot::{self, Labels, Series};
use crate::seg::model::{predict, SegNet, SegSpec};
use crate::seg::reader::read_png;
use crate::seg::{class_colour, data_upstream, Scenes, CLASSES, IGNORE};

#[derive(Deserialize)]
struct History {
    epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
struct Epoch {
    epoch: i64,
    loss: f64,
    val_loss: Option<f64>,
    val_mean_iou: Option<f64>,
    val_pixel_accuracy: Option<f64>,
}

#[derive(Deserialize)]
struct Metrics {
    mean_iou: f64,
    pixel_accuracy: f64,
    per_class_iou: std::collections::BTreeMap<String, Option<f64>>,
    confusion_matrix: Vec<Vec<i64>>,
}

pub fn run(job: &StageJob) -> Result<()> {
    let scenes = Scenes::read(data_upstream(job)?)?;
    let trained = job.upstream_of_kind("seg_train")?;
    let evaluated = job.upstream_of_kind("seg_evaluate")?;
    let title = job.string("title", &job.stage)?;
    let data = if scenes.is_synthetic() {
        "synthetic"
    } else {
        "real"
    };
    let metrics: Metrics = read_json(&evaluated.join("metrics.json"))?;
    let history: History = read_json(&trained.join("history.json"))?;

    draw_scenes(job, &scenes, &title, data)?;
    draw_iou(job, &metrics, &title, data)?;
    draw_history(job, &history, &title, data)?;
    draw_confusion(job, &metrics, &title, data)?;
    if !job.string("real_image", "")?.is_empty() {
        draw_real(job, &scenes, &title, data)?;
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is invalid", path.display()))
}

fn colour_labels(labels: &[u8]) -> Vec<u8> {
    labels
        .iter()
        .flat_map(|&label| class_colour(label))
        .collect()
}

/// Blends the class colours half and half over the image. Ignored pixels
/// keep the image's colour.
fn overlay(rgb: &[u8], labels: &[u8]) -> Vec<u8> {
    let mut blended = rgb.to_vec();
    for (pixel, &label) in blended.chunks_mut(3).zip(labels) {
        if label == IGNORE {
            continue;
        }
        for (value, colour) in pixel.iter_mut().zip(class_colour(label)) {
            *value = ((*value as u16 + colour as u16) / 2) as u8;
        }
    }
    blended
}

/// Returns legend entries for the classes that occur in `labels`.
fn legend(labels: &[u8]) -> Vec<Swatch> {
    let mut present = [false; CLASSES.len()];
    for &label in labels {
        if let Some(seen) = present.get_mut(label as usize) {
            *seen = true;
        }
    }
    let mut swatches: Vec<Swatch> = CLASSES
        .iter()
        .zip(present)
        .filter(|(_, seen)| *seen)
        .map(|((name, colour), _)| Swatch {
            name: name.to_string(),
            colour: *colour,
        })
        .collect();
    if labels.contains(&IGNORE) {
        swatches.push(Swatch {
            name: "ignored (255)".into(),
            colour: [0, 0, 0],
        });
    }
    swatches
}

/// Returns an image tensor [3, H, W] (u8) as row-major RGB bytes.
fn rgb_bytes(image: &Tensor) -> Result<Vec<u8>> {
    Ok(Vec::<u8>::try_from(
        &image.permute([1, 2, 0]).contiguous().flatten(0, -1),
    )?)
}

fn draw_scenes(job: &StageJob, scenes: &Scenes, title: &str, data: &str) -> Result<()> {
    let predictions_path = job
        .upstream_of_kind("seg_evaluate")?
        .join("predictions.safetensors");
    let predictions = Tensor::read_safetensors(&predictions_path)
        .with_context(|| format!("failed to read `{}`", predictions_path.display()))?
        .into_iter()
        .find(|(name, _)| name == "predictions")
        .map(|(_, tensor)| tensor)
        .with_context(|| {
            format!(
                "`{}` has no tensor `predictions`",
                predictions_path.display()
            )
        })?;
    let count = job
        .int("scenes", 4)?
        .clamp(1, predictions.size()[0].min(scenes.test_images.size()[0]));
    let (width, height) = (scenes.meta.width as usize, scenes.meta.height as usize);
    let (mut rows, mut shown) = (Vec::new(), Vec::new());
    for index in 0..count {
        let rgb = rgb_bytes(&scenes.test_images.get(index))?;
        let truth = Vec::<u8>::try_from(&scenes.test_labels.get(index).flatten(0, -1))?;
        let predicted =
            Vec::<u8>::try_from(&predictions.get(index).to_kind(Kind::Uint8).flatten(0, -1))?;
        let panel = |rgb: Vec<u8>| Panel { width, height, rgb };
        rows.push(vec![
            panel(rgb.clone()),
            panel(colour_labels(&truth)),
            panel(colour_labels(&predicted)),
            panel(overlay(&rgb, &predicted)),
        ]);
        shown.extend(truth);
        shown.extend(predicted);
    }
    let headers = [
        format!("{data} image"),
        "ground truth".into(),
        "prediction".into(),
        "overlay".into(),
    ];
    let title = format!("{title}: held-out {data} scenes");
    panel_rows(
        &job.output.join("scenes.png"),
        &title,
        &headers,
        &rows,
        &legend(&shown),
    )
}

fn draw_iou(job: &StageJob, metrics: &Metrics, title: &str, data: &str) -> Result<()> {
    let bars: Vec<Bar> = CLASSES
        .iter()
        .filter_map(|(name, colour)| {
            let value = (*metrics.per_class_iou.get(*name)?)?;
            Some(Bar {
                name: name.to_string(),
                value,
                colour: *colour,
            })
        })
        .collect();
    let title = format!("{title}: IoU on held-out {data} scenes");
    let subtitle = format!(
        "mean IoU {:.3}, pixel accuracy {:.3}",
        metrics.mean_iou, metrics.pixel_accuracy
    );
    score_bars(
        &job.output.join("iou.png"),
        (&title, &subtitle),
        "intersection over union",
        &bars,
    )
}

fn draw_history(job: &StageJob, history: &History, title: &str, data: &str) -> Result<()> {
    let points = |value: fn(&Epoch) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f64, value(e)?)))
            .collect()
    };
    let mut losses = vec![Series {
        name: "training",
        points: points(|e| Some(e.loss)),
        color: BLUE,
    }];
    let validation_loss = points(|e| e.val_loss);
    if !validation_loss.is_empty() {
        losses.push(Series {
            name: "validation",
            points: validation_loss,
            color: RED,
        });
    }
    let loss_title = format!("{title}: cross-entropy on {data} scenes");
    let labels = Labels {
        title: &loss_title,
        x: "epoch",
        y: "loss per labelled pixel",
    };
    plot::line_chart(&job.output.join("training.png"), &labels, &losses)?;

    let scores = [
        Series {
            name: "mean IoU",
            points: points(|e| e.val_mean_iou),
            color: BLUE,
        },
        Series {
            name: "pixel accuracy",
            points: points(|e| e.val_pixel_accuracy),
            color: GREEN,
        },
    ];
    let scores: Vec<Series> = scores
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    if scores.is_empty() {
        return Ok(());
    }
    let score_title = format!("{title}: validation scores on {data} scenes");
    let labels = Labels {
        title: &score_title,
        x: "epoch",
        y: "score",
    };
    plot::line_chart(&job.output.join("validation.png"), &labels, &scores)
}

fn draw_confusion(job: &StageJob, metrics: &Metrics, title: &str, data: &str) -> Result<()> {
    let matrix = &metrics.confusion_matrix;
    let present: Vec<usize> = (0..matrix.len())
        .filter(|&c| {
            matrix[c].iter().sum::<i64>() > 0
                || matrix
                    .iter()
                    .any(|row| row.get(c).copied().unwrap_or(0) > 0)
        })
        .collect();
    let percent: Vec<Vec<i64>> = present
        .iter()
        .map(|&row| {
            let total = matrix[row].iter().sum::<i64>().max(1) as f64;
            present
                .iter()
                .map(|&column| (100.0 * matrix[row][column] as f64 / total).round() as i64)
                .collect()
        })
        .collect();
    let names: Vec<String> = present.iter().map(|&c| CLASSES[c].0.to_string()).collect();
    let title = format!("{title}: confusion (%), held-out {data} scenes");
    plot::heat_map(&job.output.join("confusion.png"), &title, &percent, &names)
}

/// Finds the real image: in the upstream `download` stage, else in the workspace.
fn real_image_path(job: &StageJob, name: &str) -> Result<PathBuf> {
    let downloaded = job
        .upstream
        .iter()
        .filter(|u| u.kind == "download")
        .flat_map(|u| u.outputs.iter())
        .map(|folder| folder.join(name))
        .find(|path| path.is_file());
    if let Some(path) = downloaded {
        return Ok(path);
    }
    let path = job.workspace.join(name);
    if !path.is_file() {
        bail!("`real_image` of stage `{}` names `{name}`, which is neither a downloaded file nor a file in the workspace", job.stage);
    }
    Ok(path)
}

fn draw_real(job: &StageJob, scenes: &Scenes, title: &str, data: &str) -> Result<()> {
    let name = job.string("real_image", "")?;
    let path = real_image_path(job, &name)?;
    let trained = job.upstream_of_kind("seg_train")?;
    let spec = SegSpec::read(&trained.join("seg_model.json"))?;
    let mut vs = VarStore::new(tch::Device::Cpu);
    let network = SegNet::new(&vs.root(), &spec)?;
    load_weights(&mut vs, &trained.join("weights.safetensors"))?;

    // The network saw scenes `meta.width` pixels wide; the photo is scaled to
    // that width, keeping its aspect ratio up to the network's size multiple.
    let photo = read_png(&path)?.to_rgb8();
    let multiple = spec.size_multiple();
    let width = scenes.meta.width;
    let scaled = photo.height() as f64 * width as f64 / photo.width().max(1) as f64;
    let height = ((scaled / multiple as f64).round() as i64).max(1) * multiple;
    let resized = image::imageops::resize(
        &photo,
        width as u32,
        height as u32,
        image::imageops::FilterType::Triangle,
    );
    let rgb = resized.into_raw();
    let input = Tensor::from_slice(&rgb)
        .view([1, height, width, 3])
        .permute([0, 3, 1, 2])
        .contiguous();
    let predicted = Vec::<u8>::try_from(
        &predict(&network, &input, 1)
            .to_kind(Kind::Uint8)
            .flatten(0, -1),
    )?;

    let (w, h) = (width as usize, height as usize);
    let rows = vec![vec![
        Panel {
            width: w,
            height: h,
            rgb: rgb.clone(),
        },
        Panel {
            width: w,
            height: h,
            rgb: colour_labels(&predicted),
        },
        Panel {
            width: w,
            height: h,
            rgb: overlay(&rgb, &predicted),
        },
    ]];
    let file = path
        .file_name()
        .map_or(name.clone(), |f| f.to_string_lossy().into_owned());
    let headers = [
        format!("real image ({file})"),
        "prediction".into(),
        "overlay".into(),
    ];
    let title = format!("{title}: model trained on {data} scenes, applied to a real image");
    panel_rows(
        &job.output.join("real.png"),
        &title,
        &headers,
        &rows,
        &legend(&predicted),
    )
}
