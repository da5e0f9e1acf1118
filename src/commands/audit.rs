//! `xp audit`: rerun stages without the cache and compare them with the lock.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use anyhow::{Context, Result};
use petgraph::graph::NodeIndex;

use super::locking::lock_path;
use super::{Outcome, Workspace};

use crate::audit::{self, AuditReport, Auditor, StageAudit};
use crate::cache::Cache;
use crate::cli::{AuditArgs, PipelineArgs};
use crate::environment::Environment;
use crate::exec::{self, LocalExecutor};
use crate::lockfile::LockFile;
use crate::spec::{Override, SpecError};

pub fn audit(workspace: &Workspace, args: &AuditArgs) -> Result<Outcome> {
    let path = lock_path(workspace, &args.pipeline);
    if !path.exists() {
        return Err(SpecError::plain(format!(
            "`{}` has no lock file `{}`; run `xp run` to write one",
            args.pipeline.file.display(),
            path.display()
        ))
        .into());
    }
    // Lock the cache first, so a run that is rewriting the lock file finishes before it is read.
    let cache = Cache::open(&workspace.cache, super::run::when_busy(&args.pipeline))?;
    let lock = LockFile::read(&path)?;
    let pipeline_args = with_lock_settings(&args.pipeline, &lock)?;
    let (project, dag) = workspace.load_project(&pipeline_args)?;
    let selected = select_stages(&dag, args)?;
    let planned = exec::planned_components(&dag, &cache, &workspace.root, &lock.assumed_entries());
    let mismatches = crate::lockfile::mismatches(&lock, &planned, &dag.producers);
    let tolerances: HashMap<String, f64> = project
        .pipelines
        .iter()
        .map(|p| (p.name.clone(), p.audit_tolerance.unwrap_or(audit::DEFAULT_TOLERANCE)))
        .collect();
    exec::interrupt::install()?;
    let current = std::env::current_dir().context("failed to read the current folder")?;
    let distdir = match &args.distdir {
        Some(dir) => Some(current.join(dir)),
        None => crate::cli::default_distdir().filter(|dir| dir.is_dir()),
    };
    let executor = LocalExecutor { distdir };
    let auditor = Auditor {
        dag: &dag,
        cache: &cache,
        root: &workspace.root,
        lock: &lock,
        executor: &executor,
        tolerances: &tolerances,
    };
    let started = super::why::format_unix_ms(unix_ms());
    let Some(stages) = audit_stages(&auditor, &selected, &mismatches) else {
        return Ok(Outcome::Interrupted);
    };

    let uses_torch = dag.stages.iter().any(|s| s.kind != "shell");
    let shown = |p: &std::path::Path| p.strip_prefix(&workspace.root).unwrap_or(p).display().to_string();
    let report = AuditReport {
        pipeline: args.pipeline.file.display().to_string(),
        lock: shown(&path),
        started,
        host: std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string(),
        environment: Environment::current(uses_torch),
        lock_environment: lock.environment.clone(),
        tolerances: tolerances.into_iter().collect::<BTreeMap<_, _>>(),
        stages,
    };
    let stem = args.pipeline.file.file_stem().map_or("pipeline".into(), |s| s.to_string_lossy().into_owned());
    let written = audit::write_reports(&report, &workspace.root.join("reports").join(&stem))?;
    let counts: Vec<String> = report.counts().iter().map(|(label, n)| format!("{n} {label}")).collect();
    let _ = writeln!(
        std::io::stderr(),
        "xp: audit of {} stage(s): {}; report written to `{}`",
        report.stages.len(),
        counts.join(", "),
        shown(&written[0])
    );
    Ok(if report.passed() { Outcome::Success } else { Outcome::StageFailed })
}

/// Audits each selected stage in turn, printing its verdict; `None` when
/// interrupted. A stage whose configuration differs from the lock
/// (`mismatches`, as `STAGE: difference`) is reported without a rerun.
fn audit_stages(auditor: &Auditor, selected: &[NodeIndex], mismatches: &[String]) -> Option<Vec<StageAudit>> {
    let mut stages = Vec::new();
    for (position, &node) in selected.iter().enumerate() {
        if exec::interrupt::requested() {
            return None;
        }
        let stage = auditor.dag.stage(node);
        let prefix = format!("{}: ", stage.id);
        let differences: Vec<&str> = mismatches.iter().filter_map(|m| m.strip_prefix(&prefix)).collect();
        let result = if differences.is_empty() {
            auditor.audit(stage)
        } else {
            StageAudit {
                stage: stage.id.clone(),
                kind: stage.kind.clone(),
                threads: stage.threads,
                verdict: audit::Verdict::NotAudited {
                    reason: format!("its configuration differs from the lock: {}", differences.join("; ")),
                },
                cache_matches_lock: false,
                seconds: 0.0,
                log: None,
            }
        };
        let _ = writeln!(
            std::io::stderr(),
            "xp: audit {}/{}: {} {} ({:.1}s)",
            position + 1,
            selected.len(),
            result.verdict.label(),
            stage.id,
            result.seconds
        );
        stages.push(result);
    }
    Some(stages)
}

/// Returns the stages that `--stage` and `--sample` choose, in run order.
fn select_stages(dag: &crate::dag::Dag, args: &AuditArgs) -> Result<Vec<NodeIndex>> {
    let mut selected: Vec<_> = if args.stages.is_empty() {
        dag.order.clone()
    } else {
        let mut nodes = Vec::new();
        for name in &args.stages {
            let mut found = dag.find_all(name);
            if found.is_empty() {
                // A variant's id without its pipeline: `train@1a2b3c4d`.
                let suffix = format!("/{name}");
                found = dag.order.iter().copied().filter(|&n| dag.stage(n).id.ends_with(&suffix)).collect();
            }
            if found.is_empty() {
                return Err(SpecError::plain(format!("`--stage {name}`: stage not found"))
                    .with_suggestion(name, dag.stages.iter().map(|s| s.id.as_str()))
                    .into());
            }
            nodes.extend(found);
        }
        dag.order.iter().copied().filter(|n| nodes.contains(n)).collect()
    };
    if let Some(count) = args.sample {
        selected = sample(&selected, count, args.seed);
    }
    Ok(selected)
}

/// Returns `args` with the lock's profile and overrides when the command
/// line gives neither, so the audit checks the configuration that was locked.
fn with_lock_settings(args: &PipelineArgs, lock: &LockFile) -> Result<PipelineArgs> {
    if args.profile.is_some() || !args.overrides.is_empty() {
        return Ok(args.clone());
    }
    let mut overrides = Vec::new();
    for text in &lock.overrides {
        let parsed: Override = text
            .parse()
            .map_err(|err: String| anyhow::anyhow!("the lock file has an invalid override: {err}"))?;
        overrides.push(parsed);
    }
    Ok(PipelineArgs { profile: lock.profile.clone(), overrides, ..args.clone() })
}

/// Draws `count` of `items` at random with `seed`, keeping their order.
fn sample<T: Copy>(items: &[T], count: usize, seed: u64) -> Vec<T> {
    // A splitmix64 sequence: enough for a reproducible draw, no crate needed.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut indices: Vec<usize> = (0..items.len()).collect();
    for i in (1..indices.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        indices.swap(i, j);
    }
    let mut chosen: Vec<usize> = indices.into_iter().take(count).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| items[i]).collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn sample_is_seeded_and_ordered() {
        let items: Vec<u32> = (0..20).collect();
        let first = sample(&items, 5, 7);
        assert_eq!(first, sample(&items, 5, 7));
        assert_eq!(first.len(), 5);
        assert!(first.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(first, sample(&items, 5, 8));
    }

    #[test]
    fn sample_larger_than_items_takes_all() {
        assert_eq!(sample(&[1, 2, 3], 10, 0), vec![1, 2, 3]);
    }
}
