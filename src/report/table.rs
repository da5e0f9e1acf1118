//! The report as columns, and as a polars `DataFrame` written to Parquet and CSV.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{
    Column, CsvWriter, DataFrame, NamedFrom, ParquetCompression, ParquetWriter, SerWriter, Series,
};

use super::Row;
use crate::spec::Value;

/// One cell of the report table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Flag(bool),
    Missing,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Text(text) => write!(f, "{text}"),
            Cell::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => write!(f, "{x:.0}"),
            Cell::Number(x) => write!(f, "{}", format_number(*x)),
            Cell::Flag(flag) => write!(f, "{flag}"),
            Cell::Missing => Ok(()),
        }
    }
}

/// Four significant digits, so tables stay narrow.
fn format_number(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        format!("{x:.3e}")
    } else {
        let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.digits$}")
    }
}

fn param_cell(value: Option<&Value>) -> Cell {
    match value {
        Some(Value::Int(i)) => Cell::Number(*i as f64),
        Some(Value::Float(x)) => Cell::Number(*x),
        Some(Value::Bool(b)) => Cell::Flag(*b),
        Some(other) => Cell::Text(other.to_string()),
        None => Cell::Missing,
    }
}

/// Returns the report's columns in order: identity, parameters, metrics,
/// times and cache flags.
pub fn columns(rows: &[&Row]) -> Vec<(String, Vec<Cell>)> {
    let mut columns = vec![
        ("pipeline".to_string(), rows.iter().map(|r| Cell::Text(r.pipeline.clone())).collect()),
        ("variant".to_string(), rows.iter().map(|r| Cell::Text(r.variant.clone())).collect()),
        ("label".to_string(), rows.iter().map(|r| Cell::Text(r.label.clone())).collect()),
    ];
    let params: BTreeSet<&String> = rows.iter().flat_map(|r| r.params.keys()).collect();
    for name in params {
        let cells = rows.iter().map(|r| param_cell(r.params.get(name))).collect();
        columns.push((format!("param.{name}"), cells));
    }
    let metrics: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    for name in metrics {
        let cells = rows.iter().map(|r| r.metrics.get(name).map_or(Cell::Missing, |x| Cell::Number(*x)));
        columns.push((name.clone(), cells.collect()));
    }
    let stages: BTreeSet<&String> = rows.iter().flat_map(|r| r.times.keys()).collect();
    for stage in &stages {
        let cells = rows.iter().map(|r| r.times.get(*stage).map_or(Cell::Missing, |x| Cell::Number(*x)));
        columns.push((format!("time.{stage}"), cells.collect()));
    }
    for stage in &stages {
        let cells = rows.iter().map(|r| r.cached.get(*stage).map_or(Cell::Missing, |b| Cell::Flag(*b)));
        columns.push((format!("cached.{stage}"), cells.collect()));
    }
    columns
}

/// Builds a `DataFrame`; a column of numbers and gaps becomes f64, of flags
/// and gaps bool, anything else text.
pub fn data_frame(rows: &[&Row]) -> Result<DataFrame> {
    let mut frame_columns = Vec::new();
    for (name, cells) in columns(rows) {
        let numbers = cells.iter().all(|c| matches!(c, Cell::Number(_) | Cell::Missing));
        let flags = cells.iter().all(|c| matches!(c, Cell::Flag(_) | Cell::Missing));
        let integers = cells.iter().all(|c| match c {
            Cell::Number(x) => x.fract() == 0.0 && x.abs() < 9.0e15,
            _ => *c == Cell::Missing,
        });
        let series = if numbers && integers && cells.iter().any(|c| *c != Cell::Missing) {
            let values: Vec<Option<i64>> =
                cells.iter().map(|c| if let Cell::Number(x) = c { Some(*x as i64) } else { None }).collect();
            Series::new(name.as_str().into(), values)
        } else if numbers && cells.iter().any(|c| *c != Cell::Missing) {
            let values: Vec<Option<f64>> =
                cells.iter().map(|c| if let Cell::Number(x) = c { Some(*x) } else { None }).collect();
            Series::new(name.as_str().into(), values)
        } else if flags && cells.iter().any(|c| *c != Cell::Missing) {
            let values: Vec<Option<bool>> =
                cells.iter().map(|c| if let Cell::Flag(b) = c { Some(*b) } else { None }).collect();
            Series::new(name.as_str().into(), values)
        } else {
            let values: Vec<String> = cells.iter().map(Cell::to_string).collect();
            Series::new(name.as_str().into(), values)
        };
        frame_columns.push(Column::from(series));
    }
    DataFrame::new_infer_height(frame_columns).context("failed to build the report table")
}

/// Writes `runs.parquet` and `runs.csv` into `folder`.
pub fn write_files(rows: &[&Row], folder: &Path) -> Result<Vec<PathBuf>> {
    let mut frame = data_frame(rows)?;
    let parquet = folder.join("runs.parquet");
    let file = File::create(&parquet).with_context(|| format!("failed to create `{}`", parquet.display()))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Uncompressed)
        .finish(&mut frame)
        .with_context(|| format!("failed to write `{}`", parquet.display()))?;
    let csv = folder.join("runs.csv");
    let mut file = File::create(&csv).with_context(|| format!("failed to create `{}`", csv.display()))?;
    CsvWriter::new(&mut file)
        .finish(&mut frame)
        .with_context(|| format!("failed to write `{}`", csv.display()))?;
    Ok(vec![parquet, csv])
}
