//! Deciding whether a stage's stored result can be used: its key from its
//! inputs, and in words why not when it cannot.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Result;
use petgraph::graph::NodeIndex;

use crate::cache::{Artifact, Cache, Entry, KeyComponents};
use crate::dag::Dag;
use crate::spec::Stage;
use crate::stages;

/// Whether a stage must run, decided before running it.
#[derive(Debug)]
pub enum Freshness {
    /// A result with this key is stored; `restore` is set when the workspace
    /// does not hold its outputs.
    Fresh { key: String, entry: Box<Entry>, restore: bool },
    /// The stage must run, for these reasons.
    Stale { key: String, components: Box<KeyComponents>, reasons: Vec<String> },
}

/// An input that no stage produces and that is not in the workspace.
#[derive(Debug, thiserror::Error)]
#[error("input `{path}` of stage `{stage}` not found")]
pub struct MissingInput {
    pub stage: String,
    pub path: String,
}

/// Computes a stage's key components from its dependencies' results
/// (`done`, by node) and the workspace.
pub fn components(
    dag: &Dag,
    node: NodeIndex,
    done: &HashMap<NodeIndex, Entry>,
    cache: &Cache,
    root: &Path,
) -> Result<KeyComponents> {
    let stage = dag.stage(node);
    let workspace = cache.workspace(root);
    let produced_by_dependencies: HashMap<&str, &Artifact> = dag
        .dependencies(node)
        .filter_map(|dep| done.get(&dep))
        .flat_map(|entry| entry.outputs.iter().map(|(path, artifact)| (path.as_str(), artifact)))
        .collect();
    let mut inputs = BTreeMap::new();
    for input in &stage.inputs {
        let hash = match produced_by_dependencies.get(input.value.as_str()) {
            Some(artifact) => artifact.hash.clone(),
            None => workspace.hash(&input.value)?.ok_or_else(|| MissingInput {
                stage: stage.id.clone(),
                path: input.value.clone(),
            })?,
        };
        inputs.insert(input.value.clone(), hash);
    }
    let mut upstream = BTreeMap::new();
    for need in &stage.needs {
        let dep = dag.find(&need.value).expect("the DAG checked that needed stages exist");
        if let Some(entry) = done.get(&dep) {
            upstream.insert(need.value.clone(), entry.output_hash());
        }
    }
    Ok(KeyComponents {
        kind: stage.kind.clone(),
        code: stages::fingerprint(&stage.kind).to_string(),
        command: stage.command_template.clone(),
        params: stage.params.clone(),
        inputs,
        upstream,
        env: stage.env.clone(),
        outputs: stage.outputs.iter().map(|o| o.value.clone()).collect(),
    })
}

/// Looks up a stage's key; `forced` makes any stored result stale.
pub fn assess(
    stage: &Stage,
    components: KeyComponents,
    dag: &Dag,
    cache: &Cache,
    root: &Path,
    forced: bool,
) -> Result<Freshness> {
    let key = components.key();
    if let (false, Some(entry)) = (forced, cache.index.entry(&key)?) {
        let workspace = cache.workspace(root);
        let mut restore = false;
        for (path, artifact) in &entry.outputs {
            if !workspace.matches(path, artifact)? {
                restore = true;
                break;
            }
        }
        return Ok(Freshness::Fresh { key, entry: Box::new(entry), restore });
    }
    let reasons = if forced {
        vec!["forced with --force".to_string()]
    } else {
        match cache.index.latest(&stage.id)? {
            Some((_, previous)) => {
                let found = components.differences(&previous.components, &dag.producers);
                if found.is_empty() {
                    vec!["stored result was removed".to_string()]
                } else {
                    found
                }
            }
            None => vec!["never run".to_string()],
        }
    };
    Ok(Freshness::Stale { key, components: Box::new(components), reasons })
}
