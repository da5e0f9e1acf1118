//! Lock files: `PIPELINE.lock` next to a pipeline file, meant to be committed.
//!
//! A lock records every stage and variant of a complete run: its key and the
//! components of the key (kind, code fingerprint, command, resolved
//! parameters, input and upstream hashes, environment variables, declared
//! outputs). It also records the stage's seeds, thread count, output hashes
//! and `metrics.json` numbers, and the machine the run used.
//!
//! The file is pretty-printed JSON with sorted keys and no timestamps, so two
//! runs of an unchanged pipeline on one machine write identical bytes, and a
//! change shows as a small diff. `xp run --locked` refuses to run when a stage
//! would differ from the lock, and `xp audit` reruns stages against it.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cache::{Artifact, Cache, Entry, KeyComponents};
use crate::dag::Dag;
use crate::environment::Environment;
use crate::spec::{SpecError, Value};

/// Format version of lock files; bump it when a field changes meaning.
pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u32,
    /// The `--profile` the run used.
    pub profile: Option<String>,
    /// The `-S` overrides the run used, as written.
    pub overrides: Vec<String>,
    pub environment: Environment,
    /// Every stage by id.
    pub stages: BTreeMap<String, LockedStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedStage {
    pub key: String,
    pub components: KeyComponents,
    /// Parameters whose name contains `seed`, repeated here for readers.
    pub seeds: BTreeMap<String, Value>,
    pub threads: usize,
    /// Content hash of each declared output, by workspace path.
    pub outputs: BTreeMap<String, String>,
    /// Numbers of the stage's `metrics.json`, by name; empty without one.
    pub metrics: BTreeMap<String, f64>,
    pub main_metric: Option<String>,
}

/// Returns the lock file of a pipeline file: `x.toml` -> `x.lock`.
pub fn path_for(pipeline: &Path) -> PathBuf {
    pipeline.with_extension("lock")
}

impl LockFile {
    /// Builds the lock of a run from every stage's current result, or returns
    /// the ids of the stages that have none.
    pub fn build(
        dag: &Dag,
        results: &HashMap<String, (String, Entry)>,
        cache: &Cache,
        profile: Option<&str>,
        overrides: &[String],
    ) -> Result<LockFile, Vec<String>> {
        let missing: Vec<String> =
            dag.stages.iter().filter(|s| !results.contains_key(&s.id)).map(|s| s.id.clone()).collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        let mut stages = BTreeMap::new();
        for stage in &dag.stages {
            let (key, entry) = &results[&stage.id];
            let (metrics, main_metric) = stored_metrics(entry, cache);
            let seeds = stage
                .params
                .iter()
                .filter(|(name, _)| name.contains("seed"))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            let locked = LockedStage {
                key: key.clone(),
                components: entry.components.clone(),
                seeds,
                threads: stage.threads,
                outputs: entry.outputs.iter().map(|(path, a)| (path.clone(), a.hash.clone())).collect(),
                metrics,
                main_metric,
            };
            stages.insert(stage.id.clone(), locked);
        }
        let uses_torch = dag.stages.iter().any(|s| s.kind != "shell");
        Ok(LockFile {
            version: LOCK_VERSION,
            profile: profile.map(str::to_string),
            overrides: overrides.to_vec(),
            environment: Environment::current(uses_torch),
            stages,
        })
    }

    pub fn read(path: &Path) -> Result<LockFile> {
        let bytes = fs::read(path).with_context(|| format!("failed to read the lock file `{}`", path.display()))?;
        LockFile::parse(&bytes, &path.display().to_string())
    }

    /// Parses a lock file's bytes; `source` names them in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<LockFile> {
        let lock: LockFile = serde_json::from_slice(bytes).map_err(|err| {
            SpecError::plain(format!("the lock file `{source}` is not a valid xp lock: {err}"))
        })?;
        if lock.version != LOCK_VERSION {
            let message = format!(
                "the lock file `{source}` has format version {}, but this xp reads version {LOCK_VERSION}",
                lock.version
            );
            return Err(SpecError::plain(message).into());
        }
        Ok(lock)
    }

    /// Returns the file's text: pretty JSON, keys sorted, a final newline.
    pub fn to_text(&self) -> String {
        // Every map has string keys and every value is plain data (serde_json
        // writes a non-finite float as null), so serialising cannot fail.
        let mut text = serde_json::to_string_pretty(self).expect("a lock file serialises to JSON");
        text.push('\n');
        text
    }

    /// Writes the lock to `path` through a temporary file and a rename, so a
    /// killed run leaves the old lock or the new one. Returns whether the
    /// file's bytes changed.
    pub fn write(&self, path: &Path) -> Result<bool> {
        let text = self.to_text();
        if fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
            return Ok(false);
        }
        let temp = path.with_extension("lock.tmp");
        fs::write(&temp, &text).with_context(|| format!("failed to write `{}`", temp.display()))?;
        fs::rename(&temp, path).with_context(|| format!("failed to write `{}`", path.display()))?;
        Ok(true)
    }

    /// Returns the stored result each locked stage describes, as an [`Entry`]
    /// with output hashes only: what a stage downstream of it would see.
    pub fn assumed_entries(&self) -> HashMap<String, Entry> {
        self.stages
            .iter()
            .map(|(id, locked)| {
                let outputs = locked
                    .outputs
                    .iter()
                    .map(|(path, hash)| (path.clone(), Artifact { hash: hash.clone(), files: BTreeMap::new() }))
                    .collect();
                let entry = Entry {
                    stage: id.clone(),
                    components: locked.components.clone(),
                    outputs,
                    log: None,
                    started_unix_ms: 0,
                    duration_ms: 0,
                    host: String::new(),
                    xp_version: String::new(),
                };
                (id.clone(), entry)
            })
            .collect()
    }
}

/// Reads the numbers and the main metric's name from the `metrics.json` among
/// an entry's stored outputs.
pub fn stored_metrics(entry: &Entry, cache: &Cache) -> (BTreeMap<String, f64>, Option<String>) {
    let mut metrics = BTreeMap::new();
    let mut main = None;
    for (output, artifact) in &entry.outputs {
        for (inner, record) in &artifact.files {
            let name = if inner.is_empty() { output.as_str() } else { inner.as_str() };
            if name.rsplit('/').next() != Some("metrics.json") {
                continue;
            }
            let Ok(bytes) = fs::read(cache.objects.path(&record.hash)) else { continue };
            let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(&bytes) else { continue };
            for (field, value) in &fields {
                if let Some(number) = value.as_f64() {
                    metrics.insert(field.clone(), number);
                }
            }
            main = main.or_else(|| fields.get("main_metric").and_then(|m| m.as_str()).map(str::to_string));
        }
    }
    (metrics, main)
}

/// Lists, stage by stage, how the key components `planned` for a run differ
/// from the lock; empty when the run would reproduce the lock exactly.
pub fn mismatches(
    lock: &LockFile,
    planned: &[(String, Result<KeyComponents, String>)],
    producers: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut found = Vec::new();
    for (id, components) in planned {
        let Some(locked) = lock.stages.get(id) else {
            found.push(format!("{id}: stage not in the lock"));
            continue;
        };
        match components {
            Ok(components) => {
                for difference in components.differences(&locked.components, producers) {
                    found.push(format!("{id}: {difference}"));
                }
            }
            Err(problem) => found.push(format!("{id}: {problem}")),
        }
    }
    for id in lock.stages.keys() {
        if !planned.iter().any(|(planned_id, _)| planned_id == id) {
            found.push(format!("{id}: stage is in the lock but no longer in the pipeline"));
        }
    }
    found
}

/// A run with `--locked` would not reproduce the lock file.
#[derive(Debug, thiserror::Error)]
#[error("{} is out of date; with --locked, xp runs only what reproduces it:\n{}\nrun without --locked to update the lock", .path.display(), list(.problems))]
pub struct LockMismatch {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

fn list(items: &[String]) -> String {
    items.iter().map(|item| format!("  - {item}")).collect::<Vec<_>>().join("\n")
}

/// Lists how `newer`'s stages differ from `older`'s in their results:
/// keys, output hashes and metrics.
pub fn result_differences(older: &LockFile, newer: &LockFile) -> Vec<String> {
    let mut found = Vec::new();
    for (id, new) in &newer.stages {
        let Some(old) = older.stages.get(id) else {
            found.push(format!("{id}: new stage"));
            continue;
        };
        for (path, hash) in &new.outputs {
            match old.outputs.get(path) {
                Some(old_hash) if old_hash == hash => {}
                Some(old_hash) => found.push(format!("{id}: output {path} changed ({} -> {})", short(old_hash), short(hash))),
                None => found.push(format!("{id}: new output {path}")),
            }
        }
        for (name, value) in &new.metrics {
            match old.metrics.get(name) {
                Some(old_value) if old_value == value => {}
                Some(old_value) => found.push(format!("{id}: metric {name}: {old_value} -> {value}")),
                None => found.push(format!("{id}: new metric {name} = {value}")),
            }
        }
    }
    for id in older.stages.keys().filter(|id| !newer.stages.contains_key(*id)) {
        found.push(format!("{id}: stage removed"));
    }
    found
}

/// Returns the first 12 hex digits of a hash, enough to tell results apart.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
