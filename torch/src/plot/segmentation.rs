//! Segmentation figures: rows of RGB panels with a class colour legend, and
//! horizontal bars of per-class scores.

use std::path::Path;

use anyhow::{bail, Result};
use plotters::prelude::*;

use super::{drawing, register_fonts, FONT};

/// One RGB picture, row-major, 3 bytes per pixel.
pub struct Panel {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// One legend entry: a name and its colour.
pub struct Swatch {
    pub name: String,
    pub colour: [u8; 3],
}

/// Draws rows of panels side by side under `headers`, scaled up by an
/// integer factor to about 360 pixels wide, with a colour legend below.
pub fn panel_rows(
    path: &Path,
    title: &str,
    headers: &[String],
    rows: &[Vec<Panel>],
    legend: &[Swatch],
) -> Result<()> {
    register_fonts();
    let Some(first) = rows.first().and_then(|row| row.first()) else {
        bail!("no panels to draw into `{}`", path.display());
    };
    let scale = (360 / first.width.max(1)).max(1);
    let (cell_width, cell_height) = (first.width * scale, first.height * scale);
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let (gap, header, swatch_row) = (8usize, 70usize, 26usize);
    let canvas_width = (columns * (cell_width + gap) + gap).max(600);
    let legend_columns = (canvas_width / 170).max(1);
    let legend_height = legend.len().div_ceil(legend_columns) * swatch_row + 20;
    let canvas_height = header + rows.len() * (cell_height + gap) + legend_height;

    let mut buffer = vec![255u8; canvas_width * canvas_height * 3];
    for (row_index, row) in rows.iter().enumerate() {
        let top = header + row_index * (cell_height + gap);
        for (column, panel) in row.iter().enumerate() {
            let left = gap + column * (cell_width + gap);
            blit(&mut buffer, canvas_width, panel, (left, top), scale);
        }
    }
    {
        let size = (canvas_width as u32, canvas_height as u32);
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.draw(&Text::new(title, (10, 10), (FONT, 22).into_font()))
            .map_err(drawing(path))?;
        for (column, name) in headers.iter().enumerate() {
            let at = ((gap + column * (cell_width + gap)) as i32, 44);
            root.draw(&Text::new(name.clone(), at, (FONT, 16).into_font()))
                .map_err(drawing(path))?;
        }
        let legend_top = header + rows.len() * (cell_height + gap) + 8;
        for (index, swatch) in legend.iter().enumerate() {
            let x = (10 + (index % legend_columns) * 170) as i32;
            let y = (legend_top + (index / legend_columns) * swatch_row) as i32;
            let [r, g, b] = swatch.colour;
            root.draw(&Rectangle::new(
                [(x, y), (x + 18, y + 18)],
                RGBColor(r, g, b).filled(),
            ))
            .map_err(drawing(path))?;
            root.draw(&Rectangle::new([(x, y), (x + 18, y + 18)], BLACK))
                .map_err(drawing(path))?;
            root.draw(&Text::new(
                swatch.name.clone(),
                (x + 24, y + 1),
                (FONT, 15).into_font(),
            ))
            .map_err(drawing(path))?;
        }
        root.present().map_err(drawing(path))?;
    }
    image::save_buffer(
        path,
        &buffer,
        canvas_width as u32,
        canvas_height as u32,
        image::ColorType::Rgb8,
    )
    .map_err(|err| anyhow::anyhow!("failed to write `{}`: {err}", path.display()))
}

/// Copies `panel` into the RGB `buffer`, each pixel as a `scale` x `scale` square.
fn blit(
    buffer: &mut [u8],
    buffer_width: usize,
    panel: &Panel,
    (left, top): (usize, usize),
    scale: usize,
) {
    for y in 0..panel.height * scale {
        for x in 0..panel.width * scale {
            let source = ((y / scale) * panel.width + x / scale) * 3;
            let target = ((top + y) * buffer_width + left + x) * 3;
            buffer[target..target + 3].copy_from_slice(&panel.rgb[source..source + 3]);
        }
    }
}

/// One bar: a name, a value in [0, 1] and a colour.
pub struct Bar {
    pub name: String,
    pub value: f64,
    pub colour: [u8; 3],
}

/// Draws horizontal bars of values in [0, 1] with the value at each bar's
/// end, under a title and a subtitle line.
pub fn score_bars(
    path: &Path,
    (title, subtitle): (&str, &str),
    axis: &str,
    bars: &[Bar],
) -> Result<()> {
    register_fonts();
    let (row, left, top) = (34i32, 150i32, 80i32);
    let plot_width = 560i32;
    let height = top + row * bars.len() as i32 + 60;
    let root = BitMapBackend::new(path, ((left + plot_width + 90) as u32, height as u32))
        .into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    root.draw(&Text::new(title, (10, 10), (FONT, 22).into_font()))
        .map_err(drawing(path))?;
    root.draw(&Text::new(subtitle, (10, 42), (FONT, 16).into_font()))
        .map_err(drawing(path))?;
    for (index, bar) in bars.iter().enumerate() {
        let y = top + index as i32 * row;
        let end = left + (bar.value.clamp(0.0, 1.0) * plot_width as f64) as i32;
        let [r, g, b] = bar.colour;
        root.draw(&Text::new(
            bar.name.clone(),
            (10, y + 6),
            (FONT, 16).into_font(),
        ))
        .map_err(drawing(path))?;
        root.draw(&Rectangle::new(
            [(left, y + 3), (end.max(left + 1), y + row - 5)],
            RGBColor(r, g, b).filled(),
        ))
        .map_err(drawing(path))?;
        root.draw(&Rectangle::new(
            [(left, y + 3), (end.max(left + 1), y + row - 5)],
            BLACK,
        ))
        .map_err(drawing(path))?;
        let label = format!("{:.3}", bar.value);
        root.draw(&Text::new(label, (end + 6, y + 6), (FONT, 15).into_font()))
            .map_err(drawing(path))?;
    }
    let axis_y = top + row * bars.len() as i32 + 4;
    root.draw(&PathElement::new(
        vec![(left, axis_y), (left + plot_width, axis_y)],
        BLACK,
    ))
    .map_err(drawing(path))?;
    for tick in 0..=5 {
        let x = left + plot_width * tick / 5;
        root.draw(&PathElement::new(vec![(x, axis_y), (x, axis_y + 5)], BLACK))
            .map_err(drawing(path))?;
        let label = format!("{:.1}", tick as f64 / 5.0);
        root.draw(&Text::new(
            label,
            (x - 10, axis_y + 8),
            (FONT, 14).into_font(),
        ))
        .map_err(drawing(path))?;
    }
    root.draw(&Text::new(
        axis.to_string(),
        (left + plot_width / 2 - 20, axis_y + 28),
        (FONT, 15).into_font(),
    ))
    .map_err(drawing(path))?;
    root.present().map_err(drawing(path))
}
