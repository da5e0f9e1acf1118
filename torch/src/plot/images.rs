//! Grids of images with labels, and heat maps.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::{drawing, register_fonts, FONT};

/// One image to show: grey pixels in [0, 1], row by row, and its labels.
pub struct Tile {
    pub pixels: Vec<f32>,
    pub width: usize,
    pub truth: String,
    pub predicted: String,
}

/// Draws images in a grid with "true / predicted" under each; wrong
/// predictions are written in red.
pub fn image_grid(path: &Path, title: &str, tiles: &[Tile], columns: usize) -> Result<()> {
    register_fonts();
    let cell = 150usize;
    let rows = tiles.len().div_ceil(columns.max(1));
    let size = ((columns * cell) as u32, (rows * (cell + 30) + 50) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    root.draw(&Text::new(title, (10, 10), (FONT, 22).into_font())).map_err(drawing(path))?;
    for (index, tile) in tiles.iter().enumerate() {
        let left = (index % columns * cell) as i32 + 10;
        let top = (index / columns * (cell + 30)) as i32 + 50;
        let height = tile.pixels.len() / tile.width.max(1);
        let scale = ((cell - 20) / tile.width.max(height).max(1)).max(1) as i32;
        for (offset, &value) in tile.pixels.iter().enumerate() {
            let grey = (255.0 * (1.0 - value.clamp(0.0, 1.0))) as u8;
            let x = left + (offset % tile.width) as i32 * scale;
            let y = top + (offset / tile.width) as i32 * scale;
            let square = Rectangle::new([(x, y), (x + scale, y + scale)], RGBColor(grey, grey, grey).filled());
            root.draw(&square).map_err(drawing(path))?;
        }
        let wrong = tile.truth != tile.predicted;
        let color = if wrong { RED } else { BLACK };
        let caption = format!("{} / {}", tile.truth, tile.predicted);
        let style = TextStyle::from((FONT, 14).into_font()).color(&color);
        let y = top + height as i32 * scale + 4;
        root.draw(&Text::new(caption, (left, y), style)).map_err(drawing(path))?;
    }
    root.present().map_err(drawing(path))
}

/// Draws a square matrix of counts as shaded cells with the count in each,
/// rows labelled by true class and columns by predicted class.
pub fn heat_map(path: &Path, title: &str, matrix: &[Vec<i64>], names: &[String]) -> Result<()> {
    register_fonts();
    let n = matrix.len();
    let cell = 56i32;
    let margin = (150i32, 80i32);
    let side = margin.0 + cell * n as i32 + 20;
    let root = BitMapBackend::new(path, (side as u32, (margin.1 + cell * n as i32 + 140) as u32))
        .into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    root.draw(&Text::new(title, (10, 10), (FONT, 22).into_font())).map_err(drawing(path))?;
    let label = |text: String, at: (i32, i32)| Text::new(text, at, (FONT, 14).into_font());
    root.draw(&label("rows: true class, columns: predicted class".into(), (10, 40)))
        .map_err(drawing(path))?;
    let largest = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    for (row, counts) in matrix.iter().enumerate() {
        let y = margin.1 + row as i32 * cell;
        root.draw(&label(names[row].clone(), (10, y + cell / 3))).map_err(drawing(path))?;
        for (column, &count) in counts.iter().enumerate() {
            let x = margin.0 + column as i32 * cell;
            let shade = count as f64 / largest;
            let color = ViridisRGB::get_color(shade);
            let square = Rectangle::new([(x, y), (x + cell, y + cell)], color.filled());
            root.draw(&square).map_err(drawing(path))?;
            let ink = if shade > 0.6 { BLACK } else { WHITE };
            let style = TextStyle::from((FONT, 13).into_font()).color(&ink);
            root.draw(&Text::new(count.to_string(), (x + 6, y + cell / 3), style)).map_err(drawing(path))?;
        }
    }
    let bottom = margin.1 + n as i32 * cell + 8;
    for (column, name) in names.iter().enumerate() {
        let x = margin.0 + column as i32 * cell;
        let style = TextStyle::from((FONT, 13).into_font()).transform(FontTransform::Rotate90);
        root.draw(&Text::new(name.clone(), (x + cell / 2, bottom), style)).map_err(drawing(path))?;
    }
    root.present().map_err(drawing(path))
}

/// One labelled row of grey images, each `width` pixels wide with values in
/// [0, 1], row by row.
pub struct ImageRow {
    pub label: String,
    pub images: Vec<Vec<f32>>,
}

/// Draws rows of images side by side, each row with its label on the left
/// and `columns` (if given) naming the columns above the first row.
pub fn image_rows(path: &Path, title: &str, rows: &[ImageRow], width: usize, columns: &[String]) -> Result<()> {
    register_fonts();
    let (scale, gap, label_width) = (3usize, 4usize, 150usize);
    let height = rows.iter().flat_map(|r| r.images.first()).map(|i| i.len() / width.max(1)).next().unwrap_or(0);
    let cell = (width * scale + gap, height * scale + gap);
    let count = rows.iter().map(|r| r.images.len()).max().unwrap_or(0);
    let header = if columns.is_empty() { 50 } else { 75 };
    let size = ((label_width + count * cell.0 + 10) as u32, (header + rows.len() * cell.1 + 10) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    root.draw(&Text::new(title, (10, 10), (FONT, 22).into_font())).map_err(drawing(path))?;
    for (column, name) in columns.iter().enumerate() {
        let at = ((label_width + column * cell.0) as i32, 48);
        root.draw(&Text::new(name.clone(), at, (FONT, 13).into_font())).map_err(drawing(path))?;
    }
    for (index, row) in rows.iter().enumerate() {
        let top = (header + index * cell.1) as i32;
        let at = (10, top + (cell.1 / 3) as i32);
        root.draw(&Text::new(row.label.clone(), at, (FONT, 15).into_font())).map_err(drawing(path))?;
        for (column, pixels) in row.images.iter().enumerate() {
            let left = (label_width + column * cell.0) as i32;
            for (offset, &value) in pixels.iter().enumerate() {
                let grey = (255.0 * (1.0 - value.clamp(0.0, 1.0))) as u8;
                let x = left + ((offset % width) * scale) as i32;
                let y = top + ((offset / width) * scale) as i32;
                let s = scale as i32;
                let square = Rectangle::new([(x, y), (x + s, y + s)], RGBColor(grey, grey, grey).filled());
                root.draw(&square).map_err(drawing(path))?;
            }
        }
    }
    root.present().map_err(drawing(path))
}
