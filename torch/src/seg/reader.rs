//! Reads image and label PNG pairs in the Cityscapes layout:
//!
//! ```text
//! ROOT/leftImg8bit/SPLIT/CITY/NAME_leftImg8bit.png          RGB image
//! ROOT/gtFine/SPLIT/CITY/NAME_gtFine_labelTrainIds.png      8-bit train ids
//! ```
//!
//! Label pixels hold train ids 0-18, or 255 for pixels no class covers
//! (Cityscapes' `createTrainIdLabelImgs.py` writes these files). MIT DriveSeg
//! labels converted to train ids fit the same layout.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, RgbImage};

use super::{Split, CLASSES, IGNORE};

const IMAGE_SUFFIX: &str = "_leftImg8bit.png";
const LABEL_SUFFIX: &str = "_gtFine_labelTrainIds.png";

/// One image and its label file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub image: PathBuf,
    pub label: PathBuf,
}

/// Lists the pairs of `split` under `root`, sorted by city and name.
pub fn pairs(root: &Path, split: &str) -> Result<Vec<Pair>> {
    let images = root.join("leftImg8bit").join(split);
    let mut cities = sorted_entries(&images)?;
    cities.retain(|path| path.is_dir());
    let mut pairs = Vec::new();
    for city in cities {
        for image in sorted_entries(&city)? {
            let Some(name) = image.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(IMAGE_SUFFIX) else {
                continue;
            };
            let city_name = city.file_name().unwrap_or_default();
            let label = root
                .join("gtFine")
                .join(split)
                .join(city_name)
                .join(format!("{stem}{LABEL_SUFFIX}"));
            if !label.is_file() {
                bail!(
                    "image `{}` has no label file `{}`",
                    image.display(),
                    label.display()
                );
            }
            pairs.push(Pair { image, label });
        }
    }
    if pairs.is_empty() {
        bail!(
            "no `*{IMAGE_SUFFIX}` images found under `{}`",
            images.display()
        );
    }
    Ok(pairs)
}

fn sorted_entries(folder: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder)
        .with_context(|| format!("failed to read the folder `{}`", folder.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(
            entry
                .with_context(|| format!("failed to read the folder `{}`", folder.display()))?
                .path(),
        );
    }
    paths.sort();
    Ok(paths)
}

/// Reads the pairs into one split of `width` x `height` scenes. Pairs of
/// another size are resized: images bilinearly, labels to the nearest pixel.
pub fn read_pairs(pairs: &[Pair], width: u32, height: u32) -> Result<Split> {
    let mut split = Split::default();
    for pair in pairs {
        let (image, label) = read_pair(pair)?;
        let (image, label) = if image.dimensions() == (width, height) {
            (image, label)
        } else {
            (
                image::imageops::resize(&image, width, height, FilterType::Triangle),
                image::imageops::resize(&label, width, height, FilterType::Nearest),
            )
        };
        split.images.extend_from_slice(image.as_raw());
        split.labels.extend_from_slice(label.as_raw());
    }
    Ok(split)
}

/// Reads one pair and checks that the sizes match and every label value is
/// a train id or 255.
pub fn read_pair(pair: &Pair) -> Result<(RgbImage, GrayImage)> {
    let image = read_png(&pair.image)?.to_rgb8();
    let label = match read_png(&pair.label)? {
        DynamicImage::ImageLuma8(label) => label,
        other => bail!(
            "label file `{}` must be an 8-bit greyscale PNG of train ids, not {:?}",
            pair.label.display(),
            other.color()
        ),
    };
    if image.dimensions() != label.dimensions() {
        bail!(
            "image `{}` is {}x{} but its label file `{}` is {}x{}",
            pair.image.display(),
            image.width(),
            image.height(),
            pair.label.display(),
            label.width(),
            label.height()
        );
    }
    if let Some((x, y, value)) = label
        .enumerate_pixels()
        .map(|(x, y, p)| (x, y, p.0[0]))
        .find(|&(_, _, v)| !is_label(v))
    {
        bail!(
            "label file `{}` has value {value} at pixel ({x}, {y}); train ids are 0-{} and 255 (ignored)",
            pair.label.display(),
            CLASSES.len() - 1
        );
    }
    Ok((image, label))
}

fn is_label(value: u8) -> bool {
    (value as usize) < CLASSES.len() || value == IGNORE
}

/// Reads a PNG (or any format the `image` crate decodes) with an error that
/// names the file.
pub fn read_png(path: &Path) -> Result<DynamicImage> {
    let reader = image::io::Reader::open(path)
        .with_context(|| format!("failed to open the image `{}`", path.display()))?;
    let reader = reader
        .with_guessed_format()
        .with_context(|| format!("failed to read the image `{}`", path.display()))?;
    reader
        .decode()
        .with_context(|| format!("`{}` is not a readable PNG image", path.display()))
}

/// Writes row-major RGB bytes as a PNG.
pub fn write_rgb_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> Result<()> {
    image::save_buffer(path, rgb, width, height, image::ColorType::Rgb8)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// Writes row-major train ids as an 8-bit greyscale PNG.
pub fn write_label_png(path: &Path, width: u32, height: u32, labels: &[u8]) -> Result<()> {
    image::save_buffer(path, labels, width, height, image::ColorType::L8)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// Returns the paths of scene `name` of `city` in `split` under `root`.
pub fn layout_pair(root: &Path, split: &str, city: &str, name: &str) -> Pair {
    Pair {
        image: root
            .join("leftImg8bit")
            .join(split)
            .join(city)
            .join(format!("{name}{IMAGE_SUFFIX}")),
        label: root
            .join("gtFine")
            .join(split)
            .join(city)
            .join(format!("{name}{LABEL_SUFFIX}")),
    }
}
