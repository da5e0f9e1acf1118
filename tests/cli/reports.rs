//! Reports: columns, ordering and cache flags on a small shell-stage sweep.

use crate::support::{stage, Workspace};

/// `score` writes a metrics.json whose `score` is 10 * lr, so the best
/// variant is the one with the largest lr.
fn sweep() -> Workspace {
    let workspace = Workspace::new();
    let metrics = r#"awk 'BEGIN { printf "{\"main_metric\": \"score\", \"higher_is_better\": true, \"score\": %s}", ${lr} * 10 }' > out/${xp.variant}/metrics.json"#;
    let text = format!(
        "name = \"p\"\n[params]\nlr = 0.1\nsteps = 3\n\n[sweep]\nlr = [0.2, 0.5, 0.1]\n\n{}{}",
        stage("prep", "seq 1 ${steps} > prep.txt", &[], &["prep.txt"]),
        stage("score", &format!("mkdir -p out/${{xp.variant}} && {metrics}"), &["prep.txt"], &["out/${xp.variant}/metrics.json"]),
    );
    workspace.write("p.toml", &text);
    workspace
}

#[test]
fn run_writes_report_files() {
    let workspace = sweep();
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("reports written to `reports/`"), "{}", run.stderr);
    for file in ["runs.csv", "runs.parquet", "summary.md", "report.html"] {
        assert!(workspace.exists(&format!("reports/p/{file}")), "{file} is missing");
    }
}

#[test]
fn csv_has_columns_and_stable_order() {
    let workspace = sweep();
    workspace.xp(&["run", "p.toml"]).success();
    let csv = workspace.read("reports/p/runs.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for column in ["pipeline", "variant", "label", "param.lr", "param.steps", "score.score", "time.prep", "time.score", "cached.prep", "cached.score"] {
        assert!(header.contains(&column), "column {column} missing from {header:?}");
    }
    let label = header.iter().position(|c| *c == "label").unwrap();
    let labels: Vec<String> = lines.map(|l| l.split(',').nth(label).unwrap().to_string()).collect();
    assert_eq!(labels, vec!["lr=0.1", "lr=0.2", "lr=0.5"]);
}

#[test]
fn second_run_marks_cached_stages() {
    let workspace = sweep();
    workspace.xp(&["run", "p.toml"]).success();
    let first = workspace.read("reports/p/runs.csv");
    assert!(first.contains(",false,false"), "{first}");
    workspace.xp(&["run", "p.toml"]).success();
    let second = workspace.read("reports/p/runs.csv");
    assert!(second.contains(",true,true"), "{second}");
    assert!(!second.contains("false"), "{second}");
}

#[test]
fn summary_ranks_and_marks_best() {
    let workspace = sweep();
    workspace.xp(&["run", "p.toml"]).success();
    let summary = workspace.read("reports/p/summary.md");
    assert!(summary.contains("Ranked by `score.score` (higher is better)"), "{summary}");
    let rows: Vec<&str> = summary.lines().filter(|l| l.starts_with("| ") && l.contains("lr=")).collect();
    assert_eq!(rows.len(), 3, "{summary}");
    assert!(rows[0].starts_with("| **best** | lr=0.5"), "{summary}");
    assert!(rows[2].contains("lr=0.1"), "{summary}");
    // Only the swept parameter is a column; `steps` is the same everywhere.
    assert!(!summary.contains("steps"), "{summary}");
    assert!(!summary.contains(":"), "no times of day in the summary: {summary}");
}

#[test]
fn report_command_reads_cache_only() {
    let workspace = sweep();
    workspace.xp(&["run", "p.toml"]).success();
    std::fs::remove_dir_all(workspace.path().join("reports")).unwrap();
    let run = workspace.xp(&["report", "p.toml"]).success();
    assert!(run.stdout.contains("reports/p/summary.md"), "{}", run.stdout);
    assert_eq!(workspace.executions("score"), 3);
    assert!(workspace.exists("reports/p/report.html"));
}

#[test]
fn show_sorts_and_compare_diffs() {
    let workspace = sweep();
    workspace.xp(&["run", "p.toml"]).success();
    let show = workspace.xp(&["show", "p.toml", "--sort-by", "score.score"]).success();
    let lines: Vec<&str> = show.stdout.lines().collect();
    assert!(lines[0].starts_with("label"), "{}", show.stdout);
    assert!(lines[1].starts_with("lr=0.5"), "{}", show.stdout);
    let compare = workspace.xp(&["compare", "p.toml", "lr=0.1", "lr=0.5"]).success();
    assert!(compare.stdout.contains("param.lr"), "{}", compare.stdout);
    assert!(compare.stdout.contains("score.score"), "{}", compare.stdout);
    assert!(compare.stdout.contains("+4"), "{}", compare.stdout);
}
