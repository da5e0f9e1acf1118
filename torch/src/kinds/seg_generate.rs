//! The `seg_generate` stage kind: renders synthetic driving scenes with
//! exact per-pixel labels (see the `seg::generate` module for what a scene
//! contains).
//!
//! No upstream. Parameters and defaults:
//! - `width` (128) and `height` (64), in pixels;
//! - `scenes` (3000), the training scenes, and `test_scenes` (300), the
//!   held-out scenes, which are rendered after the training ones;
//! - `seed` (1);
//! - `samples` (4): how many held-out scenes to also write as PNG files in
//!   the Cityscapes layout under `samples/` (split `test`, city
//!   `synthetic`), each with a colour version of its label file.
//!
//! Output: `data.safetensors` and `meta.json` (source `synthetic`), the
//! format `seg_import` writes too. The same parameters give the same bytes.

use anyhow::{bail, Context, Result};
use xp::stages::StageJob;

use crate::seg::generate::generate;
use crate::seg::reader::{layout_pair, write_label_png, write_rgb_png};
use crate::seg::{class_colour, Scenes};

pub fn run(job: &StageJob) -> Result<()> {
    let width = job.int("width", 128)?;
    let height = job.int("height", 64)?;
    let scenes = job.int("scenes", 3000)?;
    let test_scenes = job.int("test_scenes", 300)?;
    let seed = job.int("seed", 1)?;
    let samples = job.int("samples", 4)?.clamp(0, test_scenes);
    if !(8..=4096).contains(&width) || !(8..=4096).contains(&height) {
        bail!(
            "`width` and `height` of stage `{}` must be 8 to 4096 pixels, not {width}x{height}",
            job.stage
        );
    }
    if scenes < 1 || test_scenes < 1 {
        bail!(
            "`scenes` and `test_scenes` of stage `{}` must be at least 1",
            job.stage
        );
    }
    let (w, h) = (width as usize, height as usize);
    let train = generate(w, h, scenes as usize, seed as u64, 0);
    let test = generate(w, h, test_scenes as usize, seed as u64, scenes as u64);
    eprintln!("rendered {scenes} training and {test_scenes} held-out synthetic scenes of {width}x{height}");

    let root = job.output.join("samples");
    for index in 0..samples as usize {
        let name = format!("synthetic_{index:06}");
        let pair = layout_pair(&root, "test", "synthetic", &name);
        for path in [&pair.image, &pair.label] {
            let folder = path.parent().context("a sample path has no folder")?;
            std::fs::create_dir_all(folder)
                .with_context(|| format!("failed to create `{}`", folder.display()))?;
        }
        let pixels = w * h;
        let labels = &test.labels[index * pixels..(index + 1) * pixels];
        write_rgb_png(
            &pair.image,
            w as u32,
            h as u32,
            &test.images[index * pixels * 3..(index + 1) * pixels * 3],
        )?;
        write_label_png(&pair.label, w as u32, h as u32, labels)?;
        let colours: Vec<u8> = labels
            .iter()
            .flat_map(|&label| class_colour(label))
            .collect();
        let colour_path = pair
            .label
            .with_file_name(format!("{name}_gtFine_color.png"));
        write_rgb_png(&colour_path, w as u32, h as u32, &colours)?;
    }
    Scenes::new("synthetic", width, height, train, test).write(&job.output)
}
