//! Executors run one stage's work somewhere. The scheduler decides what runs
//! and when; the executor only runs it. `LocalExecutor` runs stages as child
//! processes of `xp`; a cluster executor would submit them as jobs instead.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::spec::Stage;
use crate::stages::shell::{self, ShellJob};

pub trait Executor: Sync {
    /// Runs `stage` in `workspace`, writing its output to `log`. Returns once
    /// the stage has finished; its outputs are then in the workspace.
    fn execute(&self, stage: &Stage, workspace: &Path, log: &Path) -> Result<()>;

    /// Stops every stage this executor is running, as fast as it safely can.
    fn cancel_all(&self);
}

pub struct LocalExecutor;

impl Executor for LocalExecutor {
    fn execute(&self, stage: &Stage, workspace: &Path, log: &Path) -> Result<()> {
        match stage.kind.as_str() {
            "shell" => {
                let Some(command) = &stage.command else { bail!("shell stage has no command") };
                shell::run(&ShellJob {
                    stage_id: &stage.id,
                    command,
                    workspace,
                    env: &stage.env,
                    threads: stage.threads,
                    log,
                })
            }
            kind => bail!("stage kind `{kind}` has no local implementation"),
        }
    }

    fn cancel_all(&self) {
        shell::terminate_all(Duration::from_secs(2));
    }
}
