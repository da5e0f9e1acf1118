//! Executors run one stage's work somewhere. The scheduler decides what runs
//! and when; the executor only runs it. `LocalExecutor` runs stages as child
//! processes of `xp`; a cluster executor would submit them as jobs instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use super::process;
use crate::spec::Stage;
use crate::stages::{self, StageJob, Upstream};

pub trait Executor: Sync {
    /// Runs `stage` in `workspace`, writing its output to `log`. Returns once
    /// the stage has finished; its outputs are then in the workspace.
    /// `upstream` lists the stages it depends on.
    fn execute(&self, stage: &Stage, upstream: &[&Stage], workspace: &Path, log: &Path) -> Result<()>;

    /// Stops every stage this executor is running, as fast as it safely can.
    fn cancel_all(&self);
}

#[derive(Default)]
pub struct LocalExecutor {
    /// A local mirror searched by `download` stages before the network.
    pub distdir: Option<PathBuf>,
}

impl Executor for LocalExecutor {
    fn execute(&self, stage: &Stage, upstream: &[&Stage], workspace: &Path, log: &Path) -> Result<()> {
        if stage.kind == "shell" {
            return stages::shell::run(stage, workspace, log);
        }
        let job = StageJob {
            stage: stage.id.clone(),
            kind: stage.kind.clone(),
            workspace: workspace.to_path_buf(),
            params: stage.params.clone(),
            output: workspace.join(&stage.outputs[0].value),
            upstream: upstream
                .iter()
                .map(|u| Upstream {
                    stage: u.id.clone(),
                    kind: u.kind.clone(),
                    outputs: u.outputs.iter().map(|o| workspace.join(&o.value)).collect(),
                })
                .collect(),
            threads: stage.threads,
            distdir: self.distdir.clone(),
        };
        stages::run_builtin(&job, stage, log)
    }

    fn cancel_all(&self) {
        process::terminate_all(Duration::from_secs(2));
    }
}
