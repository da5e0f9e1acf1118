//! Running a DAG: freshness decisions, the scheduler, executors and progress.

mod executor;
pub mod process;
mod freshness;
pub mod interrupt;
mod progress;
mod scheduler;
pub mod slurm;
mod worker;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Result;
use petgraph::graph::NodeIndex;

use crate::cache::{Cache, Entry};
use crate::dag::Dag;

pub use executor::{Executor, LocalExecutor, Task};
pub use slurm::SlurmExecutor;
pub use freshness::Freshness;
pub use scheduler::{run, RunOptions};

/// The action a run would take for one stage.
#[derive(Debug, PartialEq)]
pub enum Planned {
    Cached,
    /// Cached, but the workspace copy of its outputs differs and will be restored.
    Restore,
    Run(Vec<String>),
    /// The stage cannot be assessed, for example because an input is missing.
    Error(String),
}

/// Returns the stored results that the current configuration of each stage
/// would use, by stage id, as `(key, entry)`; a stage that would run is absent.
pub fn current_results(dag: &Dag, cache: &Cache, root: &Path) -> Result<HashMap<String, (String, Entry)>> {
    let mut done = HashMap::new();
    let mut results = HashMap::new();
    for &node in &dag.order {
        if dag.dependencies(node).any(|dep| !done.contains_key(&dep)) {
            continue;
        }
        let stage = dag.stage(node);
        let assessed = freshness::components(dag, node, &done, cache, root)
            .and_then(|c| freshness::assess(stage, c, dag, cache, root, false));
        if let Ok(Freshness::Fresh { key, entry, .. }) = assessed {
            results.insert(stage.id.clone(), (key, (*entry).clone()));
            done.insert(node, *entry);
        }
    }
    Ok(results)
}

/// Decides, without running anything, what `xp run` would do with each stage.
/// A stage downstream of one that will run is listed as to run, because its
/// key depends on outputs not yet made.
pub fn plan(
    dag: &Dag,
    cache: &Cache,
    root: &Path,
    force: &HashSet<NodeIndex>,
) -> Result<Vec<(String, Planned)>> {
    let mut done = HashMap::new();
    let mut plans = Vec::new();
    for &node in &dag.order {
        let stage = dag.stage(node);
        let pending: Vec<&str> = dag
            .dependencies(node)
            .filter(|dep| !done.contains_key(dep))
            .map(|dep| dag.stage(dep).id.as_str())
            .collect();
        let planned = if pending.is_empty() {
            let forced = force.contains(&node);
            let assessed = freshness::components(dag, node, &done, cache, root)
                .and_then(|c| freshness::assess(stage, c, dag, cache, root, forced));
            match assessed {
                Ok(Freshness::Fresh { entry, restore, .. }) => {
                    done.insert(node, *entry);
                    if restore {
                        Planned::Restore
                    } else {
                        Planned::Cached
                    }
                }
                Ok(Freshness::Stale { reasons, .. }) => Planned::Run(reasons),
                Err(err) => Planned::Error(format!("{err:#}")),
            }
        } else {
            let reasons = pending.iter().map(|id| format!("upstream {id} will run")).collect();
            Planned::Run(reasons)
        };
        plans.push((stage.id.clone(), planned));
    }
    Ok(plans)
}

/// Computes every stage's key components without running anything. A
/// dependency's result comes from the cache when its stored result is
/// current, and otherwise from `assumed` (what a lock file records), so the
/// components are those of a run that reproduces `assumed`. A stage whose
/// components cannot be computed gets the reason instead.
pub fn planned_components(
    dag: &Dag,
    cache: &Cache,
    root: &Path,
    assumed: &HashMap<String, Entry>,
) -> Vec<(String, Result<crate::cache::KeyComponents, String>)> {
    let mut done = HashMap::new();
    let mut planned = Vec::new();
    for &node in &dag.order {
        let stage = dag.stage(node);
        let missing: Vec<&str> = dag
            .dependencies(node)
            .filter(|dep| !done.contains_key(dep))
            .map(|dep| dag.stage(dep).id.as_str())
            .collect();
        if !missing.is_empty() {
            let reason = format!("cannot be checked because {} has no result", missing.join(", "));
            planned.push((stage.id.clone(), Err(reason)));
            continue;
        }
        let components = match freshness::components(dag, node, &done, cache, root) {
            Ok(components) => components,
            Err(err) => {
                planned.push((stage.id.clone(), Err(format!("{err:#}"))));
                continue;
            }
        };
        let fresh = cache.index.entry(&components.key()).ok().flatten();
        if let Some(entry) = fresh.or_else(|| assumed.get(&stage.id).cloned()) {
            done.insert(node, entry);
        }
        planned.push((stage.id.clone(), Ok(components)));
    }
    planned
}
