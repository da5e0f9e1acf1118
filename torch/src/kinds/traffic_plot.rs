//! The `traffic_plot` stage kind: PNG charts of a DeepTraffic agent.
//!
//! Upstream: one `traffic_score` stage and, optionally, the `traffic_train`
//! stage of the scored agent. Parameter: `title` (default: the stage id).
//!
//! Output:
//! - `learning_curve.png` and `reward.png` (with a `traffic_train` upstream):
//!   the greedy agent's evaluation mph and the mean reward per decision
//!   against training decisions;
//! - `space_time.png`: the recorded run, each car's position along the
//!   visible road (px ahead of its bottom edge) against the frame, coloured by lane,
//!   the ego in red and wider;
//! - `actions.png`: how often the ego chose each action over all scored runs.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use serde::Deserialize;
use xp::stages::StageJob;

use crate::plot::{self, register_fonts, Labels, Series};

use super::traffic_score::Trace;

const FONT: &str = "sans-serif";
const ACTION_NAMES: [&str; 5] = ["nothing", "accelerate", "decelerate", "left", "right"];

#[derive(Deserialize)]
struct Point {
    decisions: f64,
    mean_reward: f64,
    eval_mph: Option<f64>,
}

#[derive(Deserialize)]
struct Metrics {
    policy: String,
    median_mph: f64,
    action_counts: [u64; 5],
}

pub fn run(job: &StageJob) -> Result<()> {
    let title = job.string("title", &job.stage)?;
    let scored = job.upstream_of_kind("traffic_score")?;
    let metrics: Metrics = read_json(&scored.join("metrics.json"))?;
    let trace: Trace = read_json(&scored.join("trace.json"))?;
    if job.upstream.iter().any(|u| u.kind == "traffic_train") {
        let history: Vec<Point> = read_json(&job.upstream_of_kind("traffic_train")?.join("history.json"))?;
        plot_learning(&job.output, &title, &history)?;
    }
    let heading = format!("{title}: {} ({:.2} mph)", metrics.policy, metrics.median_mph);
    plot_space_time(&job.output.join("space_time.png"), &heading, &trace)?;
    plot_actions(&job.output.join("actions.png"), &heading, &metrics.action_counts)
}

fn plot_learning(folder: &Path, title: &str, history: &[Point]) -> Result<()> {
    let mph = history.iter().filter_map(|p| p.eval_mph.map(|m| (p.decisions, m))).collect();
    let labels = Labels { title, x: "training decisions", y: "evaluation median mph" };
    let series = [Series { name: "evaluation mph", points: mph, color: BLUE }];
    plot::line_chart(&folder.join("learning_curve.png"), &labels, &series)?;
    let reward = history.iter().map(|p| (p.decisions, p.mean_reward)).collect();
    let labels = Labels { title, x: "training decisions", y: "mean reward per decision" };
    let series = [Series { name: "reward", points: reward, color: RED }];
    plot::line_chart(&folder.join("reward.png"), &labels, &series)
}

fn drawing<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |err| anyhow!("failed to draw `{}`: {err:?}", path.display())
}

fn plot_space_time(path: &Path, title: &str, trace: &Trace) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    let frames = trace.frames.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..frames, -68.0..768.0)
        .map_err(drawing(path))?;
    chart
        .configure_mesh()
        .x_desc("frame")
        .y_desc("px ahead of the bottom edge of the road")
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing(path))?;
    let cars = trace.frames.first().map_or(0, Vec::len);
    for car in (0..cars).rev() {
        let dots = trace.frames.iter().enumerate().step_by(4).map(|(frame, row)| {
            let [x, y] = row[car];
            let lane = ((x as f64 + 7.5) / 20.0).floor().clamp(0.0, 6.0) as usize;
            let color = if car == 0 {
                RED.filled()
            } else if car < trace.controlled {
                RGBColor(240, 150, 150).filled()
            } else {
                Palette99::pick(lane).mix(0.6).filled()
            };
            // The y axis grows downward on the road, so plot it negated.
            let size = if car == 0 { 3 } else { 1 };
            Circle::new((frame as f64, 700.0 - y as f64), size, color)
        });
        chart.draw_series(dots).map_err(drawing(path))?;
    }
    root.present().map_err(drawing(path))
}

fn plot_actions(path: &Path, title: &str, counts: &[u64; 5]) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::new(path, (700, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing(path))?;
    let total = counts.iter().sum::<u64>().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((0..4usize).into_segmented(), 0.0..1.0f64)
        .map_err(drawing(path))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("action")
        .y_desc("fraction of decisions")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => ACTION_NAMES.get(*i).unwrap_or(&"").to_string(),
            _ => String::new(),
        })
        .label_style((FONT, 16))
        .draw()
        .map_err(drawing(path))?;
    let bars = counts.iter().enumerate().map(|(i, &count)| {
        let fraction = count as f64 / total;
        Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), fraction)], BLUE.mix(0.6).filled())
    });
    chart.draw_series(bars).map_err(drawing(path))?;
    root.present().map_err(drawing(path))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is invalid", path.display()))
}
