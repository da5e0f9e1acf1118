//! PNG charts drawn with plotters, using the embedded DejaVu Sans font so
//! that no system font is needed.

pub mod images;
pub mod segmentation;

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

pub use images::{heat_map, image_grid, image_rows, ImageRow};

const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters; safe to call more than once.
pub fn register_fonts() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The embedded font is a valid TrueType file, so registration cannot fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Turns a plotters error into an error naming the file being drawn.
fn drawing<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |err| anyhow!("failed to draw `{}`: {err:?}", path.display())
}

/// One named line of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

pub struct Labels<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

/// Returns a range that covers `values` with a 5% margin on each side.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !low.is_finite() {
        return 0.0..1.0;
    }
    let margin = ((high - low) * 0.05).max(1e-9);
    (low - margin)..(high + margin)
}

/// Draws lines of (x, y) points with a legend.
pub fn line_chart(path: &Path, labels: &Labels, series: &[Series]) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    let xs = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(labels.title, (FONT, 26))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xs, ys)
        .map_err(drawing(path))?;
    chart
        .configure_mesh()
        .x_desc(labels.x)
        .y_desc(labels.y)
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing(path))?;
    for line in series {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))
            .map_err(drawing(path))?
            .label(line.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing(path))?;
    root.present().map_err(drawing(path))
}

/// Draws (x, y) points and the line y = x, for predicted against actual values.
pub fn scatter_with_diagonal(path: &Path, labels: &Labels, points: &[(f64, f64)]) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::new(path, (700, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    let range = padded_range(points.iter().flat_map(|p| [p.0, p.1]));
    let mut chart = ChartBuilder::on(&root)
        .caption(labels.title, (FONT, 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(range.clone(), range.clone())
        .map_err(drawing(path))?;
    chart
        .configure_mesh()
        .x_desc(labels.x)
        .y_desc(labels.y)
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing(path))?;
    let diagonal = vec![(range.start, range.start), (range.end, range.end)];
    chart.draw_series(LineSeries::new(diagonal, BLACK.mix(0.5))).map_err(drawing(path))?;
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 3, BLUE.mix(0.6).filled())))
        .map_err(drawing(path))?;
    root.present().map_err(drawing(path))
}
