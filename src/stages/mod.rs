//! Stage kinds and the fingerprints of their code.
//!
//! `shell` runs in `xp` itself. The other kinds are built in to `xp-torch`,
//! which `xp` starts once per stage with a [`StageJob`] file, so that libtorch
//! is loaded only by stages that use it.
//!
//! The build script hashes each kind's source file, and the hash is part of
//! every key of that kind, so changing a kind's code reruns its stages and no
//! others.

pub mod job;
pub mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

pub use job::{StageJob, Upstream};

use crate::exec::process;
use crate::spec::Stage;

/// Kinds implemented by `xp-torch`.
pub const TORCH_KINDS: &[&str] = &[
    "download",
    "normalise",
    "build",
    "train",
    "evaluate",
    "plot",
    "gan_train",
    "gan_evaluate",
    "gan_plot",
    "seg_generate",
    "seg_import",
    "seg_build",
    "seg_train",
    "seg_evaluate",
    "seg_plot",
    "traffic_train",
    "traffic_score",
    "traffic_plot",
];

/// Returns every stage kind this build can run.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    std::iter::once("shell").chain(TORCH_KINDS.iter().copied())
}

/// Returns the fingerprint of the code that implements `kind`.
pub fn fingerprint(kind: &str) -> &'static str {
    env!("XP_CODE_FINGERPRINTS")
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == kind)
        .map_or("unknown", |(_, hash)| hash)
}

/// Returns the `xp-torch` binary installed next to the running `xp`.
pub fn xp_torch_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("failed to locate the running `xp`")?;
    let folder = exe.parent().context("the `xp` binary has no parent folder")?;
    Ok(folder.join("xp-torch"))
}

/// Runs a built-in stage through `xp-torch`; the job file sits next to the log.
pub fn run_builtin(job: &StageJob, stage: &Stage, log: &Path) -> Result<()> {
    let job_path = log.with_extension("job.json");
    job.write(&job_path)?;
    process::run(builtin_command(job, &job_path, &stage.env)?, log)
}

/// Builds the `xp-torch stage JOB_FILE` command of a built-in stage whose job
/// file is at `job_path`.
pub fn builtin_command(job: &StageJob, job_path: &Path, env: &BTreeMap<String, String>) -> Result<Command> {
    let threads = job.threads.to_string();
    let mut command = Command::new(xp_torch_path()?);
    command
        .arg("stage")
        .arg(job_path)
        .current_dir(&job.workspace)
        .env("XP_STAGE", &job.stage)
        .env("XP_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .envs(env);
    Ok(command)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_has_fingerprint() {
        for kind in super::kinds() {
            assert_eq!(super::fingerprint(kind).len(), 64, "kind {kind}");
        }
    }
}
