//! `xp dag` and `xp doctor` output.

use crate::support::{stage, Workspace};

fn workspace() -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("a", "echo > a.txt", &[], &["a.txt"]),
        stage("b", "cat a.txt > b.txt", &["a.txt"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace
}

#[test]
fn dot_lists_nodes_and_edges() {
    let run = workspace().xp(&["dag", "p.toml"]).success();
    assert!(run.stdout.starts_with("digraph pipeline {"), "{}", run.stdout);
    assert!(run.stdout.contains("\"p/a\" -> \"p/b\";"), "{}", run.stdout);
}

#[test]
fn mermaid_lists_nodes_and_edges() {
    let run = workspace().xp(&["dag", "--format", "mermaid", "p.toml"]).success();
    assert!(run.stdout.starts_with("flowchart LR"), "{}", run.stdout);
    assert!(run.stdout.contains("s0[\"p/a (shell)\"]"), "{}", run.stdout);
    assert!(run.stdout.contains("s0 --> s1"), "{}", run.stdout);
}

#[test]
fn doctor_reports_libtorch_and_cache() {
    let workspace = workspace();
    let run = workspace.xp(&["doctor"]).success();
    assert!(run.stdout.contains("xp: 0.1.0"), "{}", run.stdout);
    assert!(run.stdout.contains("libtorch: 2.13.0"), "{}", run.stdout);
    assert!(run.stdout.contains("cuda: "), "{}", run.stdout);
    assert!(run.stdout.contains("cache: "), "{}", run.stdout);
}
