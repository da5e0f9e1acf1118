//! `xp run` and `xp status`.

use std::collections::HashSet;

use std::io::Write;

use anyhow::{Context, Result};
use petgraph::graph::NodeIndex;

use super::{print_stdout, Outcome, Workspace};
use crate::cache::{Cache, WhenBusy};
use crate::cli::{PipelineArgs, RunArgs};
use crate::dag::Dag;
use crate::exec::{self, Executor, LocalExecutor, Planned, RunOptions, SlurmExecutor};
use crate::spec::{load_user_settings, ExecutorKind, ExecutorSettings, SpecError};

/// Slurm jobs queued or running at once when `--jobs` is not given.
const SLURM_DEFAULT_JOBS: usize = 100;

pub fn run(workspace: &Workspace, args: &RunArgs, verbose: bool) -> Result<Outcome> {
    if args.dry_run {
        if args.locked {
            let dag = workspace.load(&args.pipeline)?;
            let cache = Cache::open(&workspace.cache, when_busy(&args.pipeline))?;
            super::locking::check(workspace, &args.pipeline, &dag, &cache)?;
        }
        return status(workspace, &args.pipeline);
    }
    let (project, dag) = workspace.load_project(&args.pipeline)?;
    let force = forced_stages(&dag, &args.pipeline.force)?;
    let user_settings = match crate::cli::user_config_path() {
        Some(path) => load_user_settings(&path)?,
        None => ExecutorSettings::default(),
    };
    let settings = project.executor.clone().or(user_settings);
    let kind = args.executor.or(settings.kind).unwrap_or(ExecutorKind::Local);
    let jobs = match (args.jobs, kind) {
        (Some(0), _) => return Err(SpecError::plain("`--jobs` must be at least 1").into()),
        (Some(jobs), _) => jobs,
        (None, ExecutorKind::Slurm) => SLURM_DEFAULT_JOBS,
        (None, ExecutorKind::Local) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let cache = Cache::open(&workspace.cache, when_busy(&args.pipeline))?;
    let locked = if args.locked {
        Some(super::locking::check(workspace, &args.pipeline, &dag, &cache)?)
    } else {
        None
    };
    exec::interrupt::install()?;
    // In a sweep, one failing variant does not stop the others.
    let swept = dag.stages.iter().any(|stage| stage.variant.is_some());
    let keep_going = args.keep_going || (swept && !args.fail_fast);
    let options = RunOptions { jobs, keep_going, force, quiet_bars: verbose };
    let current = std::env::current_dir().context("failed to read the current folder")?;
    let distdir = match &args.distdir {
        Some(dir) => Some(current.join(dir)),
        None => crate::cli::default_distdir().filter(|dir| dir.is_dir()),
    };
    let executor: Box<dyn Executor> = match kind {
        ExecutorKind::Local => Box::new(LocalExecutor { distdir }),
        ExecutorKind::Slurm => Box::new(SlurmExecutor::start(&settings, &cache.root, distdir)?),
    };
    let summary = exec::run(&dag, &cache, &workspace.root, executor.as_ref(), &options)?;
    if let Some(line) = executor.summary() {
        let _ = writeln!(std::io::stderr(), "xp: {line}");
    }
    drop(executor);
    let _ = writeln!(
        std::io::stderr(),
        "xp: {}: {} ran, {} cached, {} restored, {} failed, {} skipped in {:.2}s",
        plural(dag.order.len(), "stage"),
        summary.ran,
        summary.cached,
        summary.restored,
        summary.failed,
        summary.skipped,
        summary.elapsed.as_secs_f64()
    );
    if !summary.interrupted {
        super::locking::update(workspace, &args.pipeline, &dag, &cache, locked.as_ref())?;
        let scope = crate::report::Scope::Comparable;
        let written = crate::report::write(&project, &dag, &cache, &workspace.root, scope)?;
        if let Some(first) = written.first() {
            let folder = first.parent().and_then(|p| p.parent()).unwrap_or(first);
            let shown = folder.strip_prefix(&workspace.root).unwrap_or(folder);
            let _ = writeln!(std::io::stderr(), "xp: reports written to `{}/`", shown.display());
        }
    }
    Ok(if summary.interrupted {
        Outcome::Interrupted
    } else if summary.failed > 0 && summary.failed == summary.missing_inputs {
        Outcome::InvalidInput
    } else if summary.failed > 0 {
        Outcome::StageFailed
    } else {
        Outcome::Success
    })
}

pub fn status(workspace: &Workspace, args: &PipelineArgs) -> Result<Outcome> {
    let dag = workspace.load(args)?;
    let force = forced_stages(&dag, &args.force)?;
    let cache = Cache::open(&workspace.cache, when_busy(args))?;
    let plans = exec::plan(&dag, &cache, &workspace.root, &force)?;
    let width = plans.iter().map(|(id, _)| id.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    let (mut cached, mut to_run) = (0, 0);
    for (id, planned) in &plans {
        let (label, detail) = match planned {
            Planned::Cached => ("cached", String::new()),
            Planned::Restore => ("restore", "outputs differ from the cache".to_string()),
            Planned::Run(reasons) => ("run", reasons.join("; ")),
            Planned::Error(message) => ("error", message.clone()),
        };
        match planned {
            Planned::Cached | Planned::Restore => cached += 1,
            _ => to_run += 1,
        }
        text.push_str(format!("{label:<8} {id:<width$}  {detail}").trim_end());
        text.push('\n');
    }
    text.push_str(&format!("{}: {cached} cached, {to_run} to run\n", plural(plans.len(), "stage")));
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

pub(super) fn when_busy(args: &PipelineArgs) -> WhenBusy {
    if args.no_wait {
        WhenBusy::Fail
    } else {
        WhenBusy::Wait
    }
}

fn forced_stages(dag: &Dag, names: &[String]) -> Result<HashSet<NodeIndex>> {
    let mut forced = HashSet::new();
    for name in names {
        let found = dag.find_all(name);
        if found.is_empty() {
            let bare = dag.stages.iter().filter_map(|s| s.id.rsplit('/').next());
            let ids = dag.stages.iter().map(|s| s.id.as_str()).chain(bare);
            return Err(SpecError::plain(format!("`--force {name}`: stage not found"))
                .with_suggestion(name, ids)
                .into());
        }
        forced.extend(found);
    }
    Ok(forced)
}
