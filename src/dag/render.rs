//! `xp dag` output: Graphviz DOT and Mermaid.

use std::fmt::Write;

use super::Dag;

pub fn to_dot(dag: &Dag) -> String {
    let mut text = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
    for &node in &dag.order {
        let stage = dag.stage(node);
        let _ = writeln!(text, "  \"{}\" [label=\"{}\\n({})\"];", stage.id, stage.id, stage.kind);
    }
    for edge in dag.graph.raw_edges() {
        let from = &dag.stages[dag.graph[edge.source()]].id;
        let to = &dag.stages[dag.graph[edge.target()]].id;
        let _ = writeln!(text, "  \"{from}\" -> \"{to}\";");
    }
    text.push_str("}\n");
    text
}

pub fn to_mermaid(dag: &Dag) -> String {
    let mut text = String::from("flowchart LR\n");
    let node_name = |index: usize| format!("s{index}");
    for &node in &dag.order {
        let stage = dag.stage(node);
        let _ = writeln!(text, "  {}[\"{} ({})\"]", node_name(dag.graph[node]), stage.id, stage.kind);
    }
    for edge in dag.graph.raw_edges() {
        let from = node_name(dag.graph[edge.source()]);
        let to = node_name(dag.graph[edge.target()]);
        let _ = writeln!(text, "  {from} --> {to}");
    }
    text
}
