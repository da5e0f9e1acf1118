//! The stage graph: edges from `needs` and from inputs that other stages
//! output, checked for missing stages, clashing outputs and cycles.

mod links;
mod render;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::spec::{Project, SpecError, Stage};

pub use links::check_output_links;
pub use render::{to_dot, to_mermaid};

/// Stages as nodes (the weight is the index into `stages`), an edge from
/// each stage to every stage that depends on it.
pub struct Dag {
    pub graph: DiGraph<usize, ()>,
    pub stages: Vec<Stage>,
    /// Node indices in an order where every stage follows its dependencies.
    pub order: Vec<NodeIndex>,
    /// Workspace path of each declared output -> id of the stage that writes it.
    pub producers: BTreeMap<String, String>,
    by_id: HashMap<String, NodeIndex>,
}

impl Dag {
    pub fn build(project: &Project) -> Result<Dag, SpecError> {
        let stages: Vec<Stage> =
            project.pipelines.iter().flat_map(|p| p.stages.iter().cloned()).collect();
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
        let by_id: HashMap<&str, usize> =
            stages.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();

        let producers = check_outputs(&stages)?;
        let mut edges = HashSet::new();
        let mut connect = |from: usize, to: usize| {
            if edges.insert((from, to)) {
                graph.add_edge(nodes[from], nodes[to], ());
            }
        };
        for (i, stage) in stages.iter().enumerate() {
            if let Some(input) = stage.inputs.iter().find(|i| stage.outputs.iter().any(|o| overlaps(&o.value, &i.value))) {
                return Err(SpecError::at(
                    &input.location,
                    format!("`{}` is both an input and an output of stage `{}`", input.value, stage.id),
                )
                .with_help("a stage's outputs are removed before it runs; write the result to a new path"));
            }
            for need in &stage.needs {
                let Some(&j) = by_id.get(need.value.as_str()) else {
                    let prefix = format!("{}@", need.value);
                    if let Some(variant) = stages.iter().find(|s| s.id.starts_with(&prefix)) {
                        return Err(SpecError::at(
                            &need.location,
                            format!("stage `{}` is swept, so it has one id per variant", need.value),
                        )
                        .with_help(format!("name one variant, such as `{}`", variant.id)));
                    }
                    return Err(SpecError::at(&need.location, format!("stage `{}` not found", need.value))
                        .with_suggestion(&need.value, stages.iter().map(|s| s.id.as_str())));
                };
                connect(j, i);
            }
            for input in &stage.inputs {
                for j in producers_of(&producers, &input.value).filter(|&j| j != i) {
                    connect(j, i);
                }
            }
        }
        if toposort(&graph, None).is_err() {
            return Err(cycle_error(&graph, &stages));
        }
        let order = file_order(&graph);
        let producers = producers.into_iter().map(|(path, i)| (path, stages[i].id.clone())).collect();
        let by_id = stages.iter().enumerate().map(|(i, s)| (s.id.clone(), nodes[i])).collect();
        Ok(Dag { graph, stages, order, producers, by_id })
    }

    pub fn stage(&self, node: NodeIndex) -> &Stage {
        &self.stages[self.graph[node]]
    }

    pub fn dependencies(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(node, Direction::Incoming)
    }

    pub fn dependants(&self, node: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(node, Direction::Outgoing)
    }

    /// Finds every stage a user means by `name`: an exact id, `pipeline/stage`
    /// (all variants of a swept stage) or a bare stage name.
    pub fn find_all(&self, name: &str) -> Vec<NodeIndex> {
        if let Some(&node) = self.by_id.get(name) {
            return vec![node];
        }
        self.order
            .iter()
            .copied()
            .filter(|&n| {
                let stage = self.stage(n);
                stage.name == name || format!("{}/{}", stage.pipeline, stage.name) == name
            })
            .collect()
    }

    /// Finds a stage by id (`pipeline/stage`) or, when unambiguous, by its bare name.
    pub fn find(&self, name: &str) -> Option<NodeIndex> {
        if let Some(&node) = self.by_id.get(name) {
            return Some(node);
        }
        let matches: Vec<NodeIndex> = self
            .order
            .iter()
            .copied()
            .filter(|&n| {
                let id = &self.stage(n).id;
                id == name || id.rsplit('/').next() == Some(name)
            })
            .collect();
        match matches.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// Returns a topological order that keeps the order of the pipeline files where the
/// edges allow (Kahn's algorithm, taking the earliest-declared ready stage).
fn file_order(graph: &DiGraph<usize, ()>) -> Vec<NodeIndex> {
    let mut waiting: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<NodeIndex>> =
        graph.node_indices().filter(|n| waiting[n.index()] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(node)) = ready.pop() {
        order.push(node);
        for next in graph.neighbors_directed(node, Direction::Outgoing) {
            waiting[next.index()] -= 1;
            if waiting[next.index()] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    order
}

/// Indices of the stages whose outputs are `path`, contain it, or lie inside it.
fn producers_of<'a>(
    producers: &'a BTreeMap<String, usize>,
    path: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    let ancestors = path
        .match_indices('/')
        .map(move |(at, _)| &path[..at])
        .chain(std::iter::once(path))
        .filter_map(move |prefix| producers.get(prefix).copied());
    let inside = producers
        .range(format!("{path}/")..)
        .take_while(move |(output, _)| output.starts_with(path) && output.as_bytes().get(path.len()) == Some(&b'/'))
        .map(|(_, &j)| j);
    ancestors.chain(inside)
}

/// Returns whether one path is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |inner: &str, outer: &str| {
        inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes()[outer.len()] == b'/'
    };
    a == b || inside(a, b) || inside(b, a)
}

/// Rejects two stages (or one stage twice) writing the same path, or one
/// writing inside another's output folder; returns path -> stage index.
fn check_outputs(stages: &[Stage]) -> Result<BTreeMap<String, usize>, SpecError> {
    let mut producers: BTreeMap<String, usize> = BTreeMap::new();
    for (i, stage) in stages.iter().enumerate() {
        for output in &stage.outputs {
            if let Some(j) = producers_of(&producers, &output.value).next() {
                let first = stages[j]
                    .outputs
                    .iter()
                    .find(|o| overlaps(&o.value, &output.value))
                    .expect("a clashing stage has an overlapping output");
                let path = &first.value;
                let (line, _) = first.location.line_col();
                let file = first.location.path().display();
                let what = if *path == output.value { "is also" } else { "overlaps the output" };
                return Err(SpecError::at(
                    &output.location,
                    format!("output `{}` of stage `{}` {what} `{path}` of stage `{}`", output.value, stage.id, stages[j].id),
                )
                .with_help(format!("each path has one producer; the other is declared at {file}:{line}")));
            }
            producers.insert(output.value.clone(), i);
        }
    }
    Ok(producers)
}

/// Describes one cycle of the graph, located at its first stage.
fn cycle_error(graph: &DiGraph<usize, ()>, stages: &[Stage]) -> SpecError {
    let component = tarjan_scc(graph)
        .into_iter()
        .find(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .expect("toposort failed, so some strongly connected component has a cycle");
    let start = *component.iter().min_by_key(|n| graph[**n]).expect("components are non-empty");
    let mut path = vec![start];
    let mut current = start;
    // Walk inside the component until returning to the start: every node in a
    // strongly connected component reaches every other, so a path exists.
    let mut visited = vec![start];
    loop {
        let next = graph
            .neighbors_directed(current, Direction::Outgoing)
            .filter(|n| component.contains(n))
            .min_by_key(|n| (*n != start, visited.contains(n), graph[*n]))
            .expect("a node in a cycle has a successor in its component");
        path.push(next);
        if next == start {
            break;
        }
        visited.push(next);
        current = next;
    }
    let names: Vec<&str> = path.iter().map(|n| stages[graph[*n]].id.as_str()).collect();
    SpecError::at(
        &stages[graph[start]].location,
        format!("dependency cycle: {}", names.join(" -> ")),
    )
}
