//! Loading images and labels from IDX files or an npz archive, which come
//! split into train and test parts.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use xp::stages::StageJob;

use super::{limit, source_path, Dataset, Part, Scaling, Targets};
use crate::data::idx::{read_idx_images, read_idx_labels};
use crate::data::npz::read_npz;
use crate::data::U8Array;

pub(super) fn load_idx(job: &StageJob, folder: &Path) -> Result<Dataset> {
    check_image_task(job)?;
    let paths = ["train_images", "train_labels", "test_images", "test_labels"]
        .map(|name| source_path(job, folder, name));
    let [train_images, train_labels, test_images, test_labels] = paths;
    let (train_images, train_labels) = (train_images?, train_labels?);
    let (test_images, test_labels) = (test_images?, test_labels?);
    let train = image_part(
        job,
        read_idx_images(&train_images)?,
        read_idx_labels(&train_labels)?,
        "limit_train",
    )?;
    let test = image_part(
        job,
        read_idx_images(&test_images)?,
        read_idx_labels(&test_labels)?,
        "limit_test",
    )?;
    image_dataset(
        train,
        test,
        vec![train_images, train_labels, test_images, test_labels],
    )
}

pub(super) fn load_npz(job: &StageJob, folder: &Path) -> Result<Dataset> {
    check_image_task(job)?;
    let path = source_path(job, folder, "file")?;
    let arrays = read_npz(&path, &["x_train", "y_train", "x_test", "y_test"])?;
    let [x_train, y_train, x_test, y_test]: [U8Array; 4] = arrays
        .try_into()
        .map_err(|_| anyhow::anyhow!("read_npz returned the wrong number of arrays"))?;
    let train = image_part(job, x_train, y_train, "limit_train")?;
    let test = image_part(job, x_test, y_test, "limit_test")?;
    image_dataset(train, test, vec![path])
}

fn check_image_task(job: &StageJob) -> Result<()> {
    let task = job.string("task", "classification")?;
    if task != "classification" {
        bail!(
            "parameter `task` of stage `{}` must be \"classification\" for image files, \
             not `{task}`",
            job.stage
        );
    }
    Ok(())
}

/// One part of an image dataset with its images' `[height, width]`.
struct ImagePart {
    part: Part,
    size: Vec<usize>,
}

/// Checks that images `[N, H, W]` and labels `[N]` agree, keeps the first
/// `limit` samples, and scales the pixels into [0, 1].
fn image_part(
    job: &StageJob,
    images: U8Array,
    labels: U8Array,
    limit_name: &str,
) -> Result<ImagePart> {
    if images.shape.len() != 3 || labels.shape.len() != 1 {
        bail!(
            "images must have shape [N, H, W] and labels [N], not {:?} and {:?}",
            images.shape,
            labels.shape
        );
    }
    if images.len() != labels.len() {
        bail!(
            "there are {} images but {} labels",
            images.len(),
            labels.len()
        );
    }
    let count = limit(job, limit_name)?.map_or(images.len(), |limit| limit.min(images.len()));
    let pixels_per_image = images.shape[1] * images.shape[2];
    let x = images.data[..count * pixels_per_image]
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    let y = labels.data[..count]
        .iter()
        .map(|&label| i64::from(label))
        .collect();
    Ok(ImagePart {
        part: Part {
            x,
            y: Targets::Classes(y),
        },
        size: images.shape[1..].to_vec(),
    })
}

fn image_dataset(train: ImagePart, test: ImagePart, sources: Vec<PathBuf>) -> Result<Dataset> {
    if train.size != test.size {
        bail!(
            "train images are {:?} but test images are {:?}",
            train.size,
            test.size
        );
    }
    Ok(Dataset {
        train: train.part,
        test: test.part,
        input_shape: [vec![1], train.size].concat(),
        scaling: Scaling::DivideBy255,
        class_names: None,
        split: None,
        sources,
    })
}
