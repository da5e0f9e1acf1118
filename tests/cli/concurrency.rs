//! Several `xp run` processes started at once on one workspace: each waits
//! for the cache with a message naming the holder, none corrupts the index,
//! and every output is written exactly once.

use std::time::Duration;

use crate::support::{finish, Workspace};

/// Returns a pipeline of two stages whose commands take long enough to
/// overlap. Each appends `NAME/STAGE` to `runs.log` when it runs.
fn pipeline(name: &str) -> String {
    format!(
        "name = \"{name}\"\n\
         [stages.first]\nkind = \"shell\"\n\
         command = \"echo {name}/first >> runs.log; sleep 0.2; echo {name} > {name}-first.txt\"\n\
         outputs = [\"{name}-first.txt\"]\n\
         [stages.second]\nkind = \"shell\"\n\
         command = \"echo {name}/second >> runs.log; cat {name}-first.txt > {name}-second.txt; echo done >> {name}-second.txt\"\n\
         inputs = [\"{name}-first.txt\"]\noutputs = [\"{name}-second.txt\"]\n"
    )
}

/// Starts `files.len()` runs at once, file `i` in process `i`, and checks
/// that all succeed, that each stage ran once and that the index is intact.
fn run_together(files: &[String]) {
    let workspace = Workspace::new();
    let mut names: Vec<&str> = files.iter().map(|f| f.trim_end_matches(".toml")).collect();
    names.dedup();
    for name in &names {
        workspace.write(&format!("{name}.toml"), &pipeline(name));
    }
    let children: Vec<_> = files.iter().map(|file| workspace.spawn(&["run", file])).collect();
    let runs: Vec<_> = children.into_iter().map(finish).collect();
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run.code, 0, "run {i} of {}:\n{}", files[i], run.stderr);
    }
    let waited = runs.iter().filter(|run| run.stderr.contains("xp: waiting for ")).count();
    assert!(waited >= 1, "no run waited for another");
    for name in &names {
        assert_eq!(workspace.executions(&format!("{name}/first")), 1, "{name}/first");
        assert_eq!(workspace.executions(&format!("{name}/second")), 1, "{name}/second");
        assert_eq!(workspace.read(&format!("{name}-second.txt")), format!("{name}\ndone\n"));
        let status = workspace.xp(&["status", &format!("{name}.toml")]).success();
        assert!(status.stdout.contains("2 stages: 2 cached, 0 to run"), "{}", status.stdout);
    }
    assert!(workspace.corrupt_objects().is_empty());
}

#[test]
fn two_runs_of_same_pipeline() {
    run_together(&["p.toml".to_string(), "p.toml".to_string()]);
}

#[test]
fn ten_runs_of_same_pipeline() {
    run_together(&vec!["p.toml".to_string(); 10]);
}

#[test]
fn two_runs_of_independent_pipelines() {
    run_together(&["p0.toml".to_string(), "p1.toml".to_string()]);
}

#[test]
fn ten_runs_of_independent_pipelines() {
    let files: Vec<String> = (0..10).map(|i| format!("p{i}.toml")).collect();
    run_together(&files);
}

#[test]
fn no_wait_reports_holder() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &pipeline("p"));
    let slow = "name = \"slow\"\n[stages.a]\nkind = \"shell\"\ncommand = \"touch started; sleep 30\"\n";
    workspace.write("slow.toml", slow);
    let mut holder = workspace.spawn(&["run", "slow.toml"]);
    workspace.wait_for("started", Duration::from_secs(20));
    let run = workspace.xp(&["run", "--no-wait", "p.toml"]).expect_code(3);
    assert!(run.stderr.contains("is in use by pid "), "{}", run.stderr);
    assert!(run.stderr.contains("slow.toml"), "{}", run.stderr);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(workspace.executions("p/first"), 0);
}
