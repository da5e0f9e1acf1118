//! `report.html`: one self-contained page per pipeline, with the ranked
//! table, the main metric against each swept parameter, every variant's
//! training curves overlaid, and the best variant's charts embedded.

use std::fmt::Write;

use anyhow::Result;
use base64::Engine;

use super::markdown::{metric_names, ranked, varying_params};
use super::table::Cell;
use super::Row;
use crate::spec::Value;

const COLORS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

pub fn page(pipeline: &str, rows: &[&Row]) -> Result<String> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0} report</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}tr.best{{background:#e8f5e9}}\
         img{{max-width:45%;margin:4px;border:1px solid #ddd}}</style></head><body>\n<h1>{0}</h1>\n",
        escape(pipeline)
    );
    let sorted = ranked(rows);
    html.push_str(&table(&sorted));
    let main = rows.iter().find_map(|r| r.main_metric.clone());
    if let Some((metric, _)) = &main {
        for param in varying_params(rows) {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| Some((numeric(r.params.get(&param)?)?, *r.metrics.get(metric)?)))
                .collect();
            if points.len() > 1 {
                let _ = write!(html, "<h2>{} against {}</h2>\n", escape(metric), escape(&param));
                html.push_str(&scatter(&points, &param, metric));
            }
        }
    }
    let curves: Vec<(String, &Vec<f64>)> = rows
        .iter()
        .flat_map(|r| r.curves.iter().map(move |(stage, loss, _)| (format!("{} ({stage})", r.label), loss)))
        .filter(|(_, loss)| !loss.is_empty())
        .collect();
    if !curves.is_empty() {
        html.push_str("<h2>Training loss per epoch, every variant</h2>\n");
        html.push_str(&lines(&curves));
    }
    if let Some(best) = sorted.first().filter(|r| r.main_metric.is_some()) {
        let _ = write!(html, "<h2>Charts of the best variant: {}</h2>\n", escape(&best.label));
        for (name, object) in &best.images {
            if let Ok(bytes) = std::fs::read(object) {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                let _ = write!(html, "<img alt=\"{0}\" title=\"{0}\" src=\"data:image/png;base64,{encoded}\">\n", escape(name));
            }
        }
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(x) => Some(*x),
        _ => None,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn table(rows: &[&Row]) -> String {
    let params = varying_params(rows);
    let metrics = metric_names(rows);
    let mut html = String::from("<table>\n<tr><th>variant</th>");
    for name in params.iter().chain(&metrics) {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("</tr>\n");
    for (rank, row) in rows.iter().enumerate() {
        let class = if rank == 0 && row.main_metric.is_some() { " class=\"best\"" } else { "" };
        let _ = write!(html, "<tr{class}><td>{}</td>", escape(&row.label));
        for name in &params {
            let value = row.params.get(name).map(|v| v.to_string()).unwrap_or_default();
            let _ = write!(html, "<td>{}</td>", escape(&value));
        }
        for name in &metrics {
            let value = row.metrics.get(name).map(|x| Cell::Number(*x).to_string()).unwrap_or_default();
            let _ = write!(html, "<td>{value}</td>");
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// Plot geometry: a 600 x 360 SVG with margins for the axes' labels.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 40.0;

impl Frame {
    fn new(xs: impl Iterator<Item = f64> + Clone, ys: impl Iterator<Item = f64> + Clone) -> Frame {
        let range = |values: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
            if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) }
        };
        Frame { x: range(&mut xs.clone()), y: range(&mut ys.clone()) }
    }

    fn point(&self, x: f64, y: f64) -> (f64, f64) {
        let px = LEFT + (x - self.x.0) / (self.x.1 - self.x.0) * (WIDTH - LEFT - 20.0);
        let py = HEIGHT - BOTTOM - (y - self.y.0) / (self.y.1 - self.y.0) * (HEIGHT - BOTTOM - 20.0);
        (px, py)
    }

    fn axes(&self, x_label: &str, y_label: &str) -> String {
        let (x0, y0) = (LEFT, HEIGHT - BOTTOM);
        format!(
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"black\"/>\
             <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"20\" stroke=\"black\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\
             <text x=\"14\" y=\"{}\" font-size=\"12\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>\
             <text x=\"{x0}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
             <text x=\"{}\" y=\"{y0}\" font-size=\"10\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"24\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
            WIDTH - 20.0,
            (LEFT + WIDTH) / 2.0,
            HEIGHT - 6.0,
            escape(x_label),
            HEIGHT / 2.0,
            HEIGHT / 2.0,
            escape(y_label),
            y0 + 14.0,
            Cell::Number(self.x.0),
            WIDTH - 20.0,
            y0 + 14.0,
            Cell::Number(self.x.1),
            LEFT - 4.0,
            Cell::Number(self.y.0),
            LEFT - 4.0,
            Cell::Number(self.y.1),
        )
    }
}

fn scatter(points: &[(f64, f64)], x_label: &str, y_label: &str) -> String {
    let frame = Frame::new(points.iter().map(|p| p.0), points.iter().map(|p| p.1));
    let mut svg = format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\n");
    svg.push_str(&frame.axes(x_label, y_label));
    for &(x, y) in points {
        let (px, py) = frame.point(x, y);
        let _ = write!(svg, "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"{}\"/>", COLORS[0]);
    }
    svg.push_str("\n</svg>\n");
    svg
}

fn lines(curves: &[(String, &Vec<f64>)]) -> String {
    let longest = curves.iter().map(|(_, c)| c.len()).max().unwrap_or(1);
    let frame = Frame::new([1.0, longest as f64].into_iter(), curves.iter().flat_map(|(_, c)| c.iter().copied()));
    let mut svg = format!("<svg width=\"{WIDTH}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\n", HEIGHT + 18.0 * curves.len() as f64);
    svg.push_str(&frame.axes("epoch", "training loss"));
    for (index, (name, curve)) in curves.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let points: Vec<String> = curve
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let (px, py) = frame.point(i as f64 + 1.0, y);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = write!(svg, "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>", points.join(" "));
        let y = HEIGHT + 14.0 + 18.0 * index as f64;
        let _ = write!(svg, "<text x=\"{LEFT}\" y=\"{y}\" font-size=\"12\" fill=\"{color}\">{}</text>\n", escape(name));
    }
    svg.push_str("</svg>\n");
    svg
}
