//! The `seg_import` stage kind: reads real image and label PNG pairs in the
//! Cityscapes layout (see the `seg::reader` module) into the scene format of
//! `seg_generate`, so the segmentation stages train and evaluate on them.
//!
//! No upstream; list the data folder in the stage's `inputs` so that the
//! cache notices when the files change. Parameters: `root` (required), the
//! folder holding `leftImg8bit/` and `gtFine/`, relative to the workspace;
//! `train_split` (`train`) and `test_split` (`val`); `width` and `height`
//! (0 = the size of the first training image): pairs of another size are
//! resized, images bilinearly and labels to the nearest pixel.
//!
//! Output: `data.safetensors` and `meta.json` with source `real`. Invalid
//! files (unreadable PNG, image and label sizes that differ, label values
//! that are neither a train id nor 255) stop the stage with an error naming
//! the file.

use anyhow::{bail, Result};
use xp::stages::StageJob;

use crate::seg::reader::{pairs, read_pair, read_pairs};
use crate::seg::Scenes;

pub fn run(job: &StageJob) -> Result<()> {
    let root = job.string("root", "")?;
    if root.is_empty() {
        bail!(
            "stage `{}` needs the parameter `root`, the folder of the Cityscapes-layout data",
            job.stage
        );
    }
    let root = job.workspace.join(root);
    let train_pairs = pairs(&root, &job.string("train_split", "train")?)?;
    let test_pairs = pairs(&root, &job.string("test_split", "val")?)?;
    let (mut width, mut height) = (job.int("width", 0)?, job.int("height", 0)?);
    if width < 0 || height < 0 {
        bail!(
            "`width` and `height` of stage `{}` must not be negative",
            job.stage
        );
    }
    if width == 0 || height == 0 {
        let (image, _) = read_pair(&train_pairs[0])?;
        (width, height) = (image.width() as i64, image.height() as i64);
    }
    let train = read_pairs(&train_pairs, width as u32, height as u32)?;
    let test = read_pairs(&test_pairs, width as u32, height as u32)?;
    eprintln!(
        "read {} training and {} test pairs from `{}` at {width}x{height}",
        train_pairs.len(),
        test_pairs.len(),
        root.display()
    );
    Scenes::new("real", width, height, train, test).write(&job.output)
}
