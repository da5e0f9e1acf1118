//! `xp audit`: rerun stages in a scratch folder, without the cache, and
//! compare what they make with the lock file and the stored results.
//!
//! Each audited stage gets an empty scratch workspace under the cache's
//! `tmp/` folder. Its declared inputs are copied from the workspace, its
//! upstream stages' outputs are copied from their locked results in the
//! cache, and the stage runs there with the same executor as `xp run`. A
//! stage that reads a file it did not declare fails here, which is the point.
//!
//! Verdicts:
//! - bit-identical: every output hashes as in the lock;
//! - numerically close: every file that differs is a `.json` file whose numbers are
//!   within the pipeline's relative tolerance of the stored ones and whose
//!   other values are equal;
//! - diverged: anything else, with the files that differ and by how much;
//! - not audited: the stage could not be set up or failed to run.

mod compare;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cache::{self, Cache, Entry};
use crate::dag::Dag;
use crate::exec::{Executor, Task};
use crate::lockfile::{LockFile, LockedStage};
use crate::spec::Stage;

pub use report::{write_reports, AuditReport};

/// Relative tolerance for metrics when a pipeline declares none.
pub const DEFAULT_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    BitIdentical,
    NumericallyClose { max_relative_difference: f64 },
    Diverged { differences: Vec<String> },
    NotAudited { reason: String },
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::BitIdentical => "bit-identical",
            Verdict::NumericallyClose { .. } => "numerically close",
            Verdict::Diverged { .. } => "diverged",
            Verdict::NotAudited { .. } => "not audited",
        }
    }

    /// Returns whether the stage reproduced within tolerance.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::BitIdentical | Verdict::NumericallyClose { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageAudit {
    pub stage: String,
    pub kind: String,
    pub threads: usize,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Whether the cache still holds the locked result and it matches the lock.
    pub cache_matches_lock: bool,
    pub seconds: f64,
    /// The log of the rerun, kept for stages that did not pass.
    pub log: Option<PathBuf>,
}

/// Everything one audit needs besides the stages to rerun.
pub struct Auditor<'a> {
    pub dag: &'a Dag,
    pub cache: &'a Cache,
    pub root: &'a Path,
    pub lock: &'a LockFile,
    pub executor: &'a dyn Executor,
    /// Relative tolerance for numbers, by pipeline name.
    pub tolerances: &'a HashMap<String, f64>,
}

impl Auditor<'_> {
    /// Reruns one stage in a scratch folder and classifies its outputs.
    pub fn audit(&self, stage: &Stage) -> StageAudit {
        let started = Instant::now();
        let log = self.cache.root.join("logs").join("audit").join(format!("{}.log", stage.id));
        let locked = self.lock.stages.get(&stage.id);
        let cached = locked.and_then(|l| self.cache.index.entry(&l.key).ok().flatten());
        let cache_matches_lock = match (locked, &cached) {
            (Some(locked), Some(entry)) => outputs_match(locked, entry),
            _ => false,
        };
        let verdict = match locked {
            None => Verdict::NotAudited { reason: "the stage is not in the lock file".into() },
            Some(locked) => self.rerun(stage, locked, cached.as_ref(), &log).unwrap_or_else(|err| {
                Verdict::NotAudited { reason: format!("{err:#}") }
            }),
        };
        let keep_log = !verdict.passed() && log.exists();
        StageAudit {
            stage: stage.id.clone(),
            kind: stage.kind.clone(),
            threads: stage.threads,
            verdict,
            cache_matches_lock,
            seconds: started.elapsed().as_secs_f64(),
            log: keep_log.then_some(log),
        }
    }

    fn rerun(&self, stage: &Stage, locked: &LockedStage, cached: Option<&Entry>, log: &Path) -> Result<Verdict> {
        let scratch = self.cache.root.join("tmp").join(format!(
            "audit-{}-{}",
            std::process::id(),
            blake3::hash(stage.id.as_bytes()).to_hex().get(..12).unwrap_or_default()
        ));
        let result = self.rerun_in(&scratch, stage, locked, cached, log);
        if let Err(err) = fs::remove_dir_all(&scratch) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %scratch.display(), error = %err, "failed to remove an audit scratch folder");
            }
        }
        result
    }

    fn rerun_in(
        &self,
        scratch: &Path,
        stage: &Stage,
        locked: &LockedStage,
        cached: Option<&Entry>,
        log: &Path,
    ) -> Result<Verdict> {
        fs::create_dir_all(scratch).with_context(|| format!("failed to create `{}`", scratch.display()))?;
        let upstream = self.stage_upstream(stage);
        self.copy_upstream_outputs(scratch, &upstream)?;
        self.copy_inputs(scratch, stage, locked)?;
        for output in &stage.outputs {
            let path = scratch.join(&output.value);
            let folder = if stage.kind == "shell" { path.parent().map(Path::to_path_buf) } else { Some(path) };
            if let Some(folder) = folder {
                fs::create_dir_all(&folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
            }
        }
        if let Some(folder) = log.parent() {
            fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
        }
        let task = Task { stage, upstream: &upstream, workspace: scratch, log, key: &locked.key };
        // Either way the outputs are in the scratch folder, which is all the comparison reads.
        self.executor
            .execute(&task)
            .with_context(|| {
                format!(
                    "the rerun failed, perhaps because the stage reads a file it does not declare as an input; its log is `{}`",
                    log.display()
                )
            })?;
        let tolerance = self.tolerances.get(&stage.pipeline).copied().unwrap_or(DEFAULT_TOLERANCE);
        compare::classify(scratch, stage, locked, cached, self.cache, tolerance)
    }

    fn stage_upstream(&self, stage: &Stage) -> Vec<&Stage> {
        let node = self.dag.find(&stage.id).expect("audited stages come from the DAG");
        self.dag.dependencies(node).map(|dep| self.dag.stage(dep)).collect()
    }

    /// Copies the locked result of every upstream stage from the cache.
    fn copy_upstream_outputs(&self, scratch: &Path, upstream: &[&Stage]) -> Result<()> {
        for dependency in upstream {
            let locked = self
                .lock
                .stages
                .get(&dependency.id)
                .with_context(|| format!("upstream stage {} is not in the lock file", dependency.id))?;
            let entry = self.cache.index.entry(&locked.key)?.with_context(|| {
                format!("the locked result of upstream stage {} is not in the cache; run the pipeline first", dependency.id)
            })?;
            for (output, artifact) in &entry.outputs {
                for (inner, file) in &artifact.files {
                    let relative = if inner.is_empty() { output.clone() } else { format!("{output}/{inner}") };
                    let dest = scratch.join(&relative);
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
                    }
                    self.cache.objects.restore(&file.hash, &dest, file.executable)?;
                }
                if artifact.files.is_empty() {
                    let folder = scratch.join(output);
                    fs::create_dir_all(&folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
                }
            }
        }
        Ok(())
    }

    /// Copies the declared inputs that no stage produces from the workspace,
    /// checking each against the hash in the lock.
    fn copy_inputs(&self, scratch: &Path, stage: &Stage, locked: &LockedStage) -> Result<()> {
        for input in &stage.inputs {
            if self.dag.producers.contains_key(&input.value) {
                continue;
            }
            let source = self.root.join(&input.value);
            let actual = cache::hash_artifact(&source, true)?
                .with_context(|| format!("input `{}` not found in the workspace", input.value))?
                .hash;
            if locked.components.inputs.get(&input.value) != Some(&actual) {
                anyhow::bail!("input `{}` differs from the lock file; the audit checks the locked inputs only", input.value);
            }
            copy_tree(&source, &scratch.join(&input.value))?;
        }
        Ok(())
    }
}

fn outputs_match(locked: &LockedStage, entry: &Entry) -> bool {
    let stored: BTreeMap<&String, &String> = entry.outputs.iter().map(|(p, a)| (p, &a.hash)).collect();
    let expected: BTreeMap<&String, &String> = locked.outputs.iter().collect();
    stored == expected
}

/// Copies a file, or a folder with everything in it, following symbolic links.
fn copy_tree(source: &Path, dest: &Path) -> Result<()> {
    let metadata = fs::metadata(source).with_context(|| format!("failed to read `{}`", source.display()))?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("failed to create `{}`", parent.display()))?;
    }
    if !metadata.is_dir() {
        fs::copy(source, dest).with_context(|| format!("failed to copy `{}`", source.display()))?;
        return Ok(());
    }
    fs::create_dir_all(dest).with_context(|| format!("failed to create `{}`", dest.display()))?;
    let listing = fs::read_dir(source).with_context(|| format!("failed to list `{}`", source.display()))?;
    for item in listing {
        let item = item.with_context(|| format!("failed to list `{}`", source.display()))?;
        copy_tree(&item.path(), &dest.join(item.file_name()))?;
    }
    Ok(())
}
