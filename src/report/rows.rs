//! Gathering report rows from the cache: for each stage, the stored result
//! that its current configuration would reuse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cache::{Cache, Entry};
use crate::dag::Dag;
use crate::spec::{Project, Stage, Value, Variant};

/// One (pipeline, variant) of a report.
#[derive(Debug, Clone)]
pub struct Row {
    pub pipeline: String,
    /// The variant's id, empty for a pipeline without a sweep.
    pub variant: String,
    pub label: String,
    pub params: BTreeMap<String, Value>,
    /// `STAGE.METRIC` -> value.
    pub metrics: BTreeMap<String, f64>,
    /// The metric to rank by, `STAGE.METRIC`, and whether higher is better.
    pub main_metric: Option<(String, bool)>,
    /// Whether `main_metric` comes from a stage of this variant.
    pub main_from_variant: bool,
    /// Stage name -> seconds its result took to compute.
    pub times: BTreeMap<String, f64>,
    /// Stage name -> whether the last run took it from the cache.
    pub cached: BTreeMap<String, bool>,
    /// Stored PNG files of the variant's stages: (`STAGE/FILE`, object path).
    pub images: Vec<(String, PathBuf)>,
    /// Training curves: (stage, per-epoch training loss, validation loss).
    pub curves: Vec<(String, Vec<f64>, Vec<f64>)>,
}

/// Collects one row per pipeline and variant, in a stable order. It reads
/// the stored results that match the pipeline as configured now, profile and
/// overrides included, so a stage without one has empty cells.
pub fn gather(project: &Project, dag: &Dag, cache: &Cache, root: &Path) -> Result<Vec<Row>> {
    let results = crate::exec::current_results(dag, cache, root)?;
    let mut rows = Vec::new();
    for pipeline in &project.pipelines {
        let plain = [Variant { id: String::new(), label: "default".into(), values: BTreeMap::new() }];
        let variants: &[Variant] = if pipeline.variants.is_empty() { &plain } else { &pipeline.variants };
        for variant in variants {
            let mut params = pipeline.params.clone();
            params.extend(variant.values.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut row = Row {
                pipeline: pipeline.name.clone(),
                variant: variant.id.clone(),
                label: variant.label.clone(),
                params,
                metrics: BTreeMap::new(),
                main_metric: None,
                main_from_variant: false,
                times: BTreeMap::new(),
                cached: BTreeMap::new(),
                images: Vec::new(),
                curves: Vec::new(),
            };
            let stages = dag.stages.iter().filter(|stage| {
                stage.pipeline == pipeline.name
                    && stage.variant.as_ref().is_none_or(|v| v.id == variant.id)
            });
            for stage in stages {
                if let Some((key, entry)) = results.get(&stage.id) {
                    add_stage(&mut row, stage, key, entry, cache);
                }
            }
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| (&a.pipeline, &a.label).cmp(&(&b.pipeline, &b.label)));
    Ok(rows)
}

fn add_stage(row: &mut Row, stage: &Stage, key: &str, entry: &Entry, cache: &Cache) {
    row.times.insert(stage.name.clone(), entry.duration_ms as f64 / 1000.0);
    if let Some(outcome) = cache.index.outcome(&stage.id).filter(|o| o.key == key) {
        row.cached.insert(stage.name.clone(), outcome.source != "ran");
    }
    for (name, object) in stored_files(entry, cache) {
        let file = name.rsplit('/').next().unwrap_or(&name).to_string();
        if file == "metrics.json" {
            add_metrics(row, &stage.name, &object, stage.variant.is_some());
        } else if file == "history.json" {
            add_curve(row, &stage.name, &object);
        } else if file.ends_with(".png") {
            row.images.push((format!("{}/{file}", stage.name), object));
        }
    }
}

/// Lists every stored file of an entry: (workspace path, object path).
fn stored_files(entry: &Entry, cache: &Cache) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for (output, artifact) in &entry.outputs {
        for (inner, record) in &artifact.files {
            let name = if inner.is_empty() { output.clone() } else { format!("{output}/{inner}") };
            files.push((name, cache.objects.path(&record.hash)));
        }
    }
    files
}

fn read_json(path: &PathBuf) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Adds a stage's numeric metrics. The row is ranked by the main metric of
/// the first stage that declares one, preferring a stage of the variant over
/// a shared one, since shared stages score the same in every variant.
fn add_metrics(row: &mut Row, stage: &str, object: &PathBuf, per_variant: bool) {
    let Some(serde_json::Value::Object(fields)) = read_json(object) else { return };
    for (name, value) in &fields {
        if let Some(number) = value.as_f64() {
            row.metrics.insert(format!("{stage}.{name}"), number);
        }
    }
    if let Some(main) = fields.get("main_metric").and_then(|m| m.as_str()) {
        let higher = fields.get("higher_is_better").and_then(|h| h.as_bool()).unwrap_or(true);
        if row.main_metric.is_none() || (per_variant && !row.main_from_variant) {
            row.main_metric = Some((format!("{stage}.{main}"), higher));
            row.main_from_variant = per_variant;
        }
    }
}

fn add_curve(row: &mut Row, stage: &str, object: &PathBuf) {
    let Some(history) = read_json(object) else { return };
    let Some(epochs) = history.get("epochs").and_then(|e| e.as_array()) else { return };
    let series = |field: &str| epochs.iter().filter_map(|e| e.get(field)?.as_f64()).collect::<Vec<f64>>();
    row.curves.push((stage.to_string(), series("loss"), series("val_loss")));
}
