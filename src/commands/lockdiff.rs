//! `xp compare OLD.lock NEW.lock`: parameter, metric and result differences
//! between two lock files, such as the same pipeline's lock at two commits.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::{print_stdout, Outcome, Workspace};
use crate::lockfile::{short, LockFile, LockedStage};
use crate::report::Cell;

pub fn compare_locks(workspace: &Workspace, old: &str, new: &str) -> Result<Outcome> {
    let (older, newer) = (load(workspace, old)?, load(workspace, new)?);
    let mut text = format!("comparing {old} -> {new}\n");
    for change in older.environment.differences(&newer.environment) {
        let _ = writeln!(text, "environment: {change}");
    }
    if older.profile != newer.profile {
        let _ = writeln!(text, "profile: {:?} -> {:?}", older.profile, newer.profile);
    }
    let ids: BTreeSet<&String> = older.stages.keys().chain(newer.stages.keys()).collect();
    let mut unchanged = 0;
    for id in ids {
        match (older.stages.get(id), newer.stages.get(id)) {
            (Some(a), Some(b)) if a.key == b.key && a.outputs == b.outputs && a.metrics == b.metrics => unchanged += 1,
            (Some(a), Some(b)) => describe(&mut text, id, a, b),
            (Some(_), None) => {
                let _ = writeln!(text, "\n{id}: removed");
            }
            (None, Some(_)) => {
                let _ = writeln!(text, "\n{id}: added");
            }
            (None, None) => {}
        }
    }
    let _ = writeln!(text, "\n{unchanged} stage(s) unchanged");
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

fn describe(text: &mut String, id: &str, a: &LockedStage, b: &LockedStage) {
    let _ = writeln!(text, "\n{id}: key {} -> {}", short(&a.key), short(&b.key));
    let names: BTreeSet<&String> = a.components.params.keys().chain(b.components.params.keys()).collect();
    for name in names {
        let (x, y) = (a.components.params.get(name), b.components.params.get(name));
        if x != y {
            let show = |v: Option<&crate::spec::Value>| v.map_or("-".to_string(), |v| v.to_string());
            let _ = writeln!(text, "  param {name}: {} -> {}", show(x), show(y));
        }
    }
    if a.components.code != b.components.code {
        let _ = writeln!(text, "  code of kind {} changed", b.components.kind);
    }
    if a.components.command != b.components.command {
        let _ = writeln!(text, "  command changed");
    }
    for (path, hash) in &b.components.inputs {
        if a.components.inputs.get(path).is_some_and(|old| old != hash) {
            let _ = writeln!(text, "  input {path} changed");
        }
    }
    let metrics: BTreeSet<&String> = a.metrics.keys().chain(b.metrics.keys()).collect();
    for name in metrics {
        let (x, y) = (a.metrics.get(name), b.metrics.get(name));
        if x == y {
            continue;
        }
        let cell = |v: Option<&f64>| v.map_or(Cell::Missing, |v| Cell::Number(*v)).to_string();
        let change = match (x, y) {
            (Some(x), Some(y)) => format!("  ({}{})", if y >= x { "+" } else { "" }, Cell::Number(y - x)),
            _ => String::new(),
        };
        let main = if a.main_metric.as_deref() == Some(name.as_str()) { " (main)" } else { "" };
        let _ = writeln!(text, "  metric {name}{main}: {} -> {}{change}", cell(x), cell(y));
    }
    for (path, hash) in &b.outputs {
        if a.outputs.get(path) != Some(hash) {
            let _ = writeln!(text, "  output {path} changed");
        }
    }
}

/// Reads a lock file from a path, or from Git as `REVISION:PATH` (for example
/// `HEAD~1:pipelines/boston.lock`, with PATH relative to the repository root).
fn load(workspace: &Workspace, spec: &str) -> Result<LockFile> {
    let path = workspace.root.join(spec);
    if path.is_file() {
        return LockFile::read(&path);
    }
    let Some((revision, file)) = spec.split_once(':') else {
        let message = format!("lock file `{spec}` not found; give a path or REVISION:PATH");
        return Err(crate::spec::SpecError::plain(message).into());
    };
    let output = Command::new("git")
        .arg("-C")
        .arg(&workspace.root)
        .arg("show")
        .arg(format!("{revision}:{file}"))
        .output()
        .context("failed to run `git show`")?;
    if !output.status.success() {
        let message = format!("`git show {spec}` failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        return Err(crate::spec::SpecError::plain(message).into());
    }
    LockFile::parse(&output.stdout, spec)
}

/// Returns whether `xp compare` arguments name lock files rather than variants.
pub fn names_locks(first: &Path, second: Option<&str>) -> bool {
    second.is_none() || first.extension().is_some_and(|e| e == "lock")
}
