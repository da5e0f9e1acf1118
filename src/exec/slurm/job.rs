//! The files that the coordinating `xp run` and `xp worker` exchange on the
//! shared filesystem, all in the run's folder under `CACHE/slurm/`:
//!
//! - `N.job.json`: what job N runs ([`WorkerJob`]), written before submission;
//! - `N.result.json`: how it ended ([`JobResult`]), written by the worker
//!   through a temporary file and a rename, so it is complete once visible;
//! - `heartbeat`: a counter the coordinator rewrites every second, so that a
//!   job notices when the coordinator is gone;
//! - `jobs`: every submitted job id, one a line, so that the next `xp run`
//!   cancels the jobs of a coordinator that was killed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::exec::executor::ResultManifest;
use crate::stages::StageJob;

/// One stage to run on a node, as `xp worker JOB_FILE` reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerJob {
    /// `pipeline/stage`.
    pub stage: String,
    pub key: String,
    /// The `sh -c` script of a shell stage.
    pub command: Option<String>,
    /// The `xp-torch` job of a built-in stage.
    pub builtin: Option<StageJob>,
    pub env: BTreeMap<String, String>,
    pub threads: usize,
    /// The workspace root; the same path on the node as on the coordinator.
    pub workspace: PathBuf,
    /// Declared outputs, relative to the workspace.
    pub outputs: Vec<String>,
    /// The cache folder, whose object store receives the outputs.
    pub cache: PathBuf,
    /// Path of the worker's [`JobResult`].
    pub result: PathBuf,
    pub coordinator: Coordinator,
}

/// The coordinating `xp run` process, which a job watches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coordinator {
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks after boot (field 22 of
    /// `/proc/PID/stat`), which differs for a later process with the same pid.
    pub start_ticks: Option<u64>,
    /// The file whose content the coordinator changes every second.
    pub heartbeat: PathBuf,
    /// How long the heartbeat may stay unchanged before the job stops itself.
    pub timeout_ms: u64,
}

/// The outcome of a job, as its worker reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    Stored(ResultManifest),
    Failed(String),
}

impl WorkerJob {
    pub fn read(path: &Path) -> Result<WorkerJob> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("failed to read the job file `{}`", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("job file `{}` is invalid", path.display()))
    }
}

/// Writes `value` as JSON to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).context("failed to encode JSON")?;
    let temp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&temp, text).with_context(|| format!("failed to write `{}`", temp.display()))?;
    fs::rename(&temp, path).with_context(|| format!("failed to write `{}`", path.display()))
}

/// Reads a job's result; `None` while the worker has not written it.
pub fn read_result(path: &Path) -> Result<Option<JobResult>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("failed to read `{}`", path.display())),
    };
    let result = serde_json::from_str(&text)
        .with_context(|| format!("job result `{}` is invalid", path.display()))?;
    Ok(Some(result))
}

/// Returns the start time of process `pid` in clock ticks after boot.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in field 2 may contain spaces; fields after it follow its `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // `after_name` starts with field 3, so field 22 is its 20th word.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_ticks_are_stable() {
        let first = process_start_ticks(std::process::id());
        assert!(first.is_some());
        assert_eq!(first, process_start_ticks(std::process::id()));
    }

    #[test]
    fn result_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.result.json");
        assert!(read_result(&path).unwrap().is_none());
        write_atomically(&path, &JobResult::Failed("command exited with status 3".into())).unwrap();
        match read_result(&path).unwrap() {
            Some(JobResult::Failed(message)) => assert_eq!(message, "command exited with status 3"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
