//! The `shell` stage kind: runs the stage's command with `sh -c` in the
//! workspace. `XP_STAGE`, `XP_THREADS` and `OMP_NUM_THREADS` are set, and so is
//! every variable of the stage's `env` table.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::exec::process;
use crate::spec::Stage;

pub fn run(stage: &Stage, workspace: &Path, log: &Path) -> Result<()> {
    let Some(script) = &stage.command else { bail!("shell stage `{}` has no command", stage.id) };
    process::run(command(&stage.id, script, stage.threads, &stage.env, workspace), log)
}

/// Builds the `sh -c SCRIPT` command of a shell stage.
pub fn command(
    stage_id: &str,
    script: &str,
    threads: usize,
    env: &BTreeMap<String, String>,
    workspace: &Path,
) -> Command {
    let threads = threads.to_string();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(workspace)
        .env("XP_STAGE", stage_id)
        .env("XP_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .envs(env);
    command
}
