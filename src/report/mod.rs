//! Comparison reports: one row per (pipeline, variant) with its parameters,
//! metrics, wall time per stage and whether each stage came from the cache,
//! built from the cache alone.
//!
//! Written to `reports/PIPELINE/`: `runs.parquet` and `runs.csv` (through
//! polars), `summary.md` (variants sorted by the main metric, best marked,
//! only the parameters that vary) and a self-contained `report.html`.
//! Rows are sorted by variant label and nothing in the Markdown depends on
//! the time of the run, so a report diffs cleanly in Git.
//!
//! Column names: `pipeline`, `variant`, `label`, `param.NAME`,
//! `STAGE.METRIC` (numbers from a stage's `metrics.json`), `time.STAGE`
//! (seconds) and `cached.STAGE` (false when the stage ran in the last run).

mod html;
mod markdown;
mod rows;
mod table;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use rows::{gather, Row};
pub use table::{columns, data_frame, Cell};

use crate::cache::Cache;
use crate::dag::Dag;
use crate::spec::Project;

/// The set of pipelines that get a report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every pipeline, as `xp report` does.
    All,
    /// Pipelines with a sweep or a stage that wrote `metrics.json`, as after
    /// `xp run`: a report of a plain shell pipeline compares nothing, and
    /// writing one for a thousand stages would dominate an all-cached rerun.
    /// A shell stage counts only when it declares an output file named
    /// `metrics.json`; `xp report` covers the rest.
    Comparable,
}

/// Writes the pipelines' reports under `ROOT/reports/`; returns the files written.
pub fn write(
    project: &Project,
    dag: &Dag,
    cache: &Cache,
    root: &Path,
    scope: Scope,
) -> Result<Vec<PathBuf>> {
    let may_compare = |pipeline: &crate::spec::Pipeline| {
        !pipeline.variants.is_empty()
            || pipeline.stages.iter().any(|stage| {
                stage.kind != "shell" || stage.outputs.iter().any(|o| o.value.ends_with("metrics.json"))
            })
    };
    if scope == Scope::Comparable && !project.pipelines.iter().any(may_compare) {
        // Skips reading the cache at all, which keeps all-cached reruns fast.
        return Ok(Vec::new());
    }
    let rows = gather(project, dag, cache, root)?;
    let folder = root.join("reports");
    let mut written = Vec::new();
    for pipeline in &project.pipelines {
        let mine: Vec<&Row> = rows.iter().filter(|row| row.pipeline == pipeline.name).collect();
        let comparable = !pipeline.variants.is_empty() || mine.iter().any(|row| !row.metrics.is_empty());
        if scope == Scope::Comparable && !comparable {
            continue;
        }
        let out = folder.join(&pipeline.name);
        std::fs::create_dir_all(&out)
            .with_context(|| format!("failed to create `{}`", out.display()))?;
        written.extend(table::write_files(&mine, &out)?);
        let summary = out.join("summary.md");
        write_text(&summary, &markdown::summary(&pipeline.name, &mine))?;
        written.push(summary);
        let page = out.join("report.html");
        write_text(&page, &html::page(&pipeline.name, &mine)?)?;
        written.push(page);
    }
    Ok(written)
}

/// Writes through a temporary file so a reader never sees half a report.
fn write_text(path: &Path, text: &str) -> Result<()> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).with_context(|| format!("failed to write `{}`", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("failed to write `{}`", path.display()))
}
