//! The `shell` stage kind: runs the stage's command with `sh -c` in the
//! workspace. `XP_STAGE`, `XP_THREADS` and `OMP_NUM_THREADS` are set, and so is
//! every variable of the stage's `env` table.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::exec::process;
use crate::spec::Stage;

pub fn run(stage: &Stage, workspace: &Path, log: &Path) -> Result<()> {
    let Some(script) = &stage.command else { bail!("shell stage `{}` has no command", stage.id) };
    let threads = stage.threads.to_string();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(workspace)
        .env("XP_STAGE", &stage.id)
        .env("XP_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .envs(&stage.env);
    process::run(command, log)
}
