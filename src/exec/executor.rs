//! Executors run one stage's work somewhere. The scheduler decides what runs
//! and when; the executor only runs it. `LocalExecutor` runs stages as child
//! processes of `xp`; `SlurmExecutor` submits each one as a batch job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::process;
use crate::cache::Artifact;
use crate::spec::Stage;
use crate::stages::{self, StageJob, Upstream};

/// One stage to run, with everything an executor needs to run it.
pub struct Task<'a> {
    pub stage: &'a Stage,
    /// The stages it depends on, in pipeline order.
    pub upstream: &'a [&'a Stage],
    pub workspace: &'a Path,
    /// The stage's log file, whose folder exists.
    pub log: &'a Path,
    /// The stage's cache key.
    pub key: &'a str,
}

/// The result of a stage that an executor ran successfully.
pub enum Produced {
    /// The outputs are in the workspace and not yet stored; the caller stores them.
    InWorkspace,
    /// The executor's job stored the outputs as objects and described them in
    /// this manifest. They are also in the workspace; the caller verifies the
    /// manifest against them before recording it.
    Stored(ResultManifest),
}

/// The outputs that a job stored as objects, written by `xp worker` for the
/// coordinating `xp run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultManifest {
    pub stage: String,
    /// The key the coordinator assigned; a manifest for another key is rejected.
    pub key: String,
    /// Each declared output by its workspace path.
    pub outputs: BTreeMap<String, Artifact>,
    /// The host that ran the stage.
    pub host: String,
    pub started_unix_ms: u64,
    /// Run time of the stage's command, without time spent in the queue.
    pub duration_ms: u64,
}

pub trait Executor: Sync {
    /// Runs the task's stage and returns once it has finished.
    fn execute(&self, task: &Task) -> Result<Produced>;

    /// Stops every stage this executor is running, as fast as it safely can.
    fn cancel_all(&self);

    /// Returns the share of the `--jobs` budget that `stage` takes while it runs.
    fn slots(&self, stage: &Stage) -> usize {
        stage.threads
    }

    /// Returns a line for the end-of-run summary, if the executor has one.
    fn summary(&self) -> Option<String> {
        None
    }
}

#[derive(Default)]
pub struct LocalExecutor {
    /// A local mirror searched by `download` stages before the network.
    pub distdir: Option<PathBuf>,
}

impl Executor for LocalExecutor {
    fn execute(&self, task: &Task) -> Result<Produced> {
        let stage = task.stage;
        if stage.kind == "shell" {
            stages::shell::run(stage, task.workspace, task.log)?;
        } else {
            let job = stage_job(task, self.distdir.clone());
            stages::run_builtin(&job, stage, task.log)?;
        }
        Ok(Produced::InWorkspace)
    }

    fn cancel_all(&self) {
        process::terminate_all(Duration::from_secs(2));
    }
}

/// Builds the `xp-torch` job description of a built-in stage.
pub(super) fn stage_job(task: &Task, distdir: Option<PathBuf>) -> StageJob {
    let (stage, workspace) = (task.stage, task.workspace);
    StageJob {
        stage: stage.id.clone(),
        kind: stage.kind.clone(),
        workspace: workspace.to_path_buf(),
        params: stage.params.clone(),
        output: workspace.join(&stage.outputs[0].value),
        upstream: task
            .upstream
            .iter()
            .map(|u| Upstream {
                stage: u.id.clone(),
                kind: u.kind.clone(),
                outputs: u.outputs.iter().map(|o| workspace.join(&o.value)).collect(),
            })
            .collect(),
        threads: stage.threads,
        distdir,
    }
}
