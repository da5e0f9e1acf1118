//! `summary.md`: variants sorted by the main metric, the best one marked,
//! with only the parameters that vary across the sweep.

use std::collections::BTreeSet;

use super::table::Cell;
use super::Row;

/// Names of parameters whose value is not the same in every row.
pub fn varying_params(rows: &[&Row]) -> Vec<String> {
    let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.params.keys()).collect();
    names
        .into_iter()
        .filter(|name| rows.iter().any(|r| r.params.get(*name) != rows[0].params.get(*name)))
        .cloned()
        .collect()
}

/// Sorts rows best first by their main metric; rows without it go last, by label.
pub fn ranked<'a>(rows: &[&'a Row]) -> Vec<&'a Row> {
    let mut sorted = rows.to_vec();
    let score = |row: &Row| {
        let (name, higher) = row.main_metric.as_ref()?;
        let value = *row.metrics.get(name)?;
        Some(if *higher { -value } else { value })
    };
    sorted.sort_by(|a, b| match (score(a), score(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.label.cmp(&b.label)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.label.cmp(&b.label),
    });
    sorted
}

/// The metric columns shown in summaries: with several rows, the main metric
/// and the metrics that differ between rows; with one row, all of them.
pub fn metric_names(rows: &[&Row]) -> Vec<String> {
    let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let main: BTreeSet<&String> = rows.iter().filter_map(|r| r.main_metric.as_ref().map(|m| &m.0)).collect();
    names
        .into_iter()
        .filter(|name| {
            let varies = rows.iter().any(|r| r.metrics.get(*name) != rows[0].metrics.get(*name));
            rows.len() == 1 || varies || main.contains(name)
        })
        .cloned()
        .collect()
}

pub fn summary(pipeline: &str, rows: &[&Row]) -> String {
    let mut text = format!("# {pipeline}\n\n");
    let sorted = ranked(rows);
    let main = rows.iter().find_map(|r| r.main_metric.clone());
    match &main {
        Some((name, higher)) => {
            let order = if *higher { "higher" } else { "lower" };
            text.push_str(&format!("Ranked by `{name}` ({order} is better).\n\n"));
        }
        None => text.push_str("No stage wrote a `metrics.json` with a main metric.\n\n"),
    }
    let params = varying_params(rows);
    let metrics = metric_names(rows);
    let mut header = vec!["".to_string(), "variant".to_string()];
    header.extend(params.iter().cloned());
    header.extend(metrics.iter().cloned());
    text.push_str(&format!("| {} |\n", header.join(" | ")));
    text.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for (rank, row) in sorted.iter().enumerate() {
        let best = rank == 0 && main.is_some() && row.main_metric.is_some();
        let mut cells = vec![if best { "**best**".to_string() } else { String::new() }, row.label.clone()];
        for name in &params {
            cells.push(row.params.get(name).map(|v| v.to_string()).unwrap_or_default());
        }
        for name in &metrics {
            cells.push(row.metrics.get(name).map(|x| Cell::Number(*x).to_string()).unwrap_or_default());
        }
        text.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    text
}
