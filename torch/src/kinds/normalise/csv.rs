//! Loading a CSV file: the label column, the seeded split, the limits and
//! the feature scaling.

use std::path::Path;

use anyhow::{bail, Context, Result};
use xp::stages::StageJob;

use super::{file_name, limit, source_path, Dataset, Part, Scaling, Targets};
use crate::data::csv::{read_csv, Table};
use crate::data::split::split_indices;
use crate::data::standardise::FeatureStats;

pub(super) fn load_csv(job: &StageJob, folder: &Path) -> Result<Dataset> {
    let path = source_path(job, folder, "file")?;
    let task = job.string("task", "")?;
    let classification = match task.as_str() {
        "classification" => true,
        "regression" => false,
        _ => bail!(
            "parameter `task` of stage `{}` must be \"regression\" or \"classification\" for a \
             CSV file",
            job.stage
        ),
    };
    let table = read_csv(&path, job.boolean("has_header", false)?)?;
    let label = label_column(job, &table, &path)?;
    let (features, targets) = separate_label(&table, label);
    let feature_count = table.columns - 1;
    let image_shape = image_shape(job, classification, feature_count)?;

    let test_fraction = job.float("test_fraction", 0.2)?;
    let seed = job.int("seed", 42)?;
    let Ok(seed) = u64::try_from(seed) else {
        bail!(
            "parameter `seed` of stage `{}` must not be negative, not {seed}",
            job.stage
        );
    };
    let split = split_indices(table.rows, test_fraction, seed)
        .with_context(|| format!("failed to split `{}`", file_name(&path)))?;
    let train_rows = truncate(split.train, limit(job, "limit_train")?);
    let test_rows = truncate(split.test, limit(job, "limit_test")?);
    let gather_x = |rows: &[usize]| gather(&features, feature_count, rows);
    let (mut train_x, mut test_x) = (gather_x(&train_rows), gather_x(&test_rows));

    let scaling = scale_features(
        &mut train_x,
        &mut test_x,
        &image_shape,
        feature_count,
        &path,
    )?;
    let to_targets = |rows: &[usize]| to_targets(rows, &targets, classification, &path);
    Ok(Dataset {
        train: Part {
            x: train_x,
            y: to_targets(&train_rows)?,
        },
        test: Part {
            x: test_x,
            y: to_targets(&test_rows)?,
        },
        input_shape: image_shape.unwrap_or(vec![feature_count]),
        scaling,
        class_names: None,
        split: Some((test_fraction, seed)),
        sources: vec![path],
    })
}

/// Divides pixels by 255 when the features have an image shape, and
/// otherwise standardises them with the statistics of the train part.
fn scale_features(
    train_x: &mut [f32],
    test_x: &mut [f32],
    image_shape: &Option<Vec<usize>>,
    feature_count: usize,
    path: &Path,
) -> Result<Scaling> {
    if image_shape.is_some() {
        check_pixels(train_x, path)?;
        check_pixels(test_x, path)?;
        train_x
            .iter_mut()
            .chain(test_x.iter_mut())
            .for_each(|x| *x /= 255.0);
        return Ok(Scaling::DivideBy255);
    }
    let stats = FeatureStats::fit(train_x, feature_count);
    stats.apply(train_x);
    stats.apply(test_x);
    Ok(Scaling::Standardise(stats))
}

/// Collects the targets of `rows`, as class labels for classification.
fn to_targets(
    rows: &[usize],
    targets: &[f32],
    classification: bool,
    path: &Path,
) -> Result<Targets> {
    let values = rows.iter().map(|&row| targets[row]);
    if !classification {
        return Ok(Targets::Regression(values.collect()));
    }
    let labels = rows
        .iter()
        .zip(values)
        .map(|(&row, value)| class_label(value, row, path));
    Ok(Targets::Classes(labels.collect::<Result<_>>()?))
}

/// Returns the label column as an index, resolving negative values from the end.
fn label_column(job: &StageJob, table: &Table, path: &Path) -> Result<usize> {
    let column = job.int("label_column", -1)?;
    let columns = table.columns as i64;
    if columns < 2 {
        bail!(
            "`{}` has {columns} column; it needs at least one feature and a label",
            file_name(path)
        );
    }
    let index = if column < 0 { columns + column } else { column };
    if !(0..columns).contains(&index) {
        bail!(
            "parameter `label_column` of stage `{}` is {column}, outside the {columns} columns \
             of `{}`",
            job.stage,
            file_name(path)
        );
    }
    Ok(index as usize)
}

/// Splits a table into its feature columns (row-major) and its label column.
fn separate_label(table: &Table, label: usize) -> (Vec<f32>, Vec<f32>) {
    let mut features = Vec::with_capacity(table.rows * (table.columns - 1));
    let mut targets = Vec::with_capacity(table.rows);
    for row in 0..table.rows {
        let values = table.row(row);
        features.extend_from_slice(&values[..label]);
        features.extend_from_slice(&values[label + 1..]);
        targets.push(values[label]);
    }
    (features, targets)
}

/// Returns the image shape of CSV features: the `image_shape` parameter, or
/// 1x28x28 for classification with 784 features, or none.
fn image_shape(
    job: &StageJob,
    classification: bool,
    features: usize,
) -> Result<Option<Vec<usize>>> {
    let text = job.string("image_shape", "")?;
    if text.is_empty() {
        return Ok((classification && features == 784).then(|| vec![1, 28, 28]));
    }
    let shape: Option<Vec<usize>> = text
        .split('x')
        .map(|size| size.trim().parse().ok())
        .collect();
    match shape {
        Some(shape) if shape.iter().product::<usize>() == features => Ok(Some(shape)),
        Some(_) => bail!(
            "parameter `image_shape` `{text}` of stage `{}` does not match the {features} features",
            job.stage
        ),
        None => bail!(
            "parameter `image_shape` of stage `{}` must be sizes joined by `x`, such as \
             \"1x28x28\", not `{text}`",
            job.stage
        ),
    }
}

fn check_pixels(values: &[f32], path: &Path) -> Result<()> {
    match values.iter().find(|value| !(0.0..=255.0).contains(*value)) {
        Some(value) => bail!(
            "`{}` has the pixel value {value}, outside [0, 255]; set no `image_shape` for \
             non-image features",
            file_name(path)
        ),
        None => Ok(()),
    }
}

/// Converts a CSV label to a class index. `row` is the 0-based data row.
fn class_label(value: f32, row: usize, path: &Path) -> Result<i64> {
    if value < 0.0 || value.fract() != 0.0 {
        bail!(
            "`{}` data row {}: the label {value} is not a non-negative integer",
            file_name(path),
            row + 1
        );
    }
    Ok(value as i64)
}

fn gather(features: &[f32], columns: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&row| &features[row * columns..(row + 1) * columns])
        .copied()
        .collect()
}

fn truncate(mut rows: Vec<usize>, limit: Option<usize>) -> Vec<usize> {
    rows.truncate(limit.unwrap_or(usize::MAX));
    rows
}
