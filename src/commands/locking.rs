//! The lock-file steps of `xp run`: the `--locked` check before running and
//! writing the lock after a complete run.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use super::Workspace;
use crate::cache::Cache;
use crate::cli::PipelineArgs;
use crate::dag::Dag;
use crate::exec;
use crate::lockfile::{self, LockFile, LockMismatch};

/// Returns the lock file of the pipeline that `args` names.
/// The path is relative to the current folder when possible, so messages stay short.
pub fn lock_path(workspace: &Workspace, args: &PipelineArgs) -> PathBuf {
    let path = lockfile::path_for(&workspace.root.join(&args.file));
    let current = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&current).map(|p| p.to_path_buf()).unwrap_or(path)
}

/// Returns the `-S` overrides as written on the command line.
pub fn override_texts(args: &PipelineArgs) -> Vec<String> {
    args.overrides
        .iter()
        .map(|o| match &o.pipeline {
            Some(pipeline) => format!("{pipeline}.{}={}", o.param, o.value),
            None => format!("{}={}", o.param, o.value),
        })
        .collect()
}

/// Rejects a run whose stages would differ from the lock, naming each
/// difference; returns the lock for the check after the run.
pub fn check(workspace: &Workspace, args: &PipelineArgs, dag: &Dag, cache: &Cache) -> Result<LockFile> {
    let path = lock_path(workspace, args);
    if !path.exists() {
        return Err(LockMismatch { path, problems: vec!["the lock file does not exist".into()] }.into());
    }
    let lock = LockFile::read(&path)?;
    let planned = exec::planned_components(dag, cache, &workspace.root, &lock.assumed_entries());
    let mut problems = lockfile::mismatches(&lock, &planned, &dag.producers);
    // The profile and overrides matter only through the stages they change,
    // so they are named only to explain differences found there.
    if !problems.is_empty() {
        if lock.profile.as_deref() != args.profile.as_deref() {
            let show = |p: Option<&str>| p.map_or("none".to_string(), |p| format!("`{p}`"));
            problems.push(format!(
                "the lock was written with profile {}, this run uses {}",
                show(lock.profile.as_deref()),
                show(args.profile.as_deref())
            ));
        }
        let overrides = override_texts(args);
        if lock.overrides != overrides {
            problems.push(format!("the lock was written with overrides {:?}, this run uses {:?}", lock.overrides, overrides));
        }
        return Err(LockMismatch { path, problems }.into());
    }
    Ok(lock)
}

/// Writes the lock after a run in which every stage has a result. With
/// `locked`, a result that differs from it is an error and the file is kept.
pub fn update(
    workspace: &Workspace,
    args: &PipelineArgs,
    dag: &Dag,
    cache: &Cache,
    locked: Option<&LockFile>,
) -> Result<()> {
    let path = lock_path(workspace, args);
    let shown = path.strip_prefix(&workspace.root).unwrap_or(&path).display().to_string();
    let results = exec::current_results(dag, cache, &workspace.root)?;
    let overrides = override_texts(args);
    let lock = match LockFile::build(dag, &results, cache, args.profile.as_deref(), &overrides) {
        Ok(lock) => lock,
        Err(missing) => {
            let _ = writeln!(
                std::io::stderr(),
                "xp: `{shown}` not updated: {} stage(s) have no result, such as {}",
                missing.len(),
                missing[0]
            );
            return Ok(());
        }
    };
    if let Some(old) = locked {
        let problems = lockfile::result_differences(old, &lock);
        if !problems.is_empty() {
            anyhow::bail!(
                "the results differ from `{shown}`, which is kept as it was:\n{}",
                problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
            );
        }
        for change in old.environment.differences(&lock.environment) {
            let _ = writeln!(std::io::stderr(), "xp: warning: environment differs from the lock: {change}");
        }
        return Ok(());
    }
    if lock.write(&path)? {
        let _ = writeln!(std::io::stderr(), "xp: lock written to `{shown}`");
    }
    Ok(())
}
