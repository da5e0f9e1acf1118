//! Sweeps: expansion into one DAG, shared stages run once (counted by
//! executions), resume, and variants that never collide.

use crate::support::{stage, Workspace};

/// `prep` does not depend on the swept `lr`, so it is shared; `train` and
/// `score` run once per variant and write under `${xp.variant}`.
fn sweep_pipeline(values: &str) -> String {
    format!(
        "name = \"p\"\n[params]\nlr = 0.1\nsize = 3\n\n[sweep]\nlr = [{values}]\n\n{}{}{}",
        stage("prep", "seq 1 ${size} > prep.txt", &[], &["prep.txt"]),
        stage("train", "mkdir -p out/${xp.variant} && echo ${lr} > out/${xp.variant}/model.txt", &["prep.txt"], &["out/${xp.variant}/model.txt"]),
        stage("score", "cat out/${xp.variant}/model.txt > out/${xp.variant}/score.txt", &["out/${xp.variant}/model.txt"], &["out/${xp.variant}/score.txt"]),
    )
}

#[test]
fn shared_stage_runs_once() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &sweep_pipeline("0.1, 0.01, 0.001"));
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("prep"), 1, "{}", run.stderr);
    assert_eq!(workspace.executions("train"), 3);
    assert_eq!(workspace.executions("score"), 3);
    assert!(run.stderr.contains("7 ran"), "{}", run.stderr);
}

#[test]
fn adding_value_runs_only_new_variant() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &sweep_pipeline("0.1, 0.01"));
    workspace.xp(&["run", "p.toml"]).success();
    workspace.write("p.toml", &sweep_pipeline("0.1, 0.01, 0.5"));
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("prep"), 1);
    assert_eq!(workspace.executions("train"), 3);
    workspace.write("p.toml", &sweep_pipeline("0.01"));
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("train"), 3, "{}", run.stderr);
}

#[test]
fn variants_have_stable_ids_and_paths() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &sweep_pipeline("0.1, 0.01"));
    let dag = workspace.xp(&["dag", "p.toml"]).success();
    let ids: Vec<&str> = dag.stdout.lines().filter(|l| l.contains("p/train@") && l.contains("label")).collect();
    assert_eq!(ids.len(), 2, "{}", dag.stdout);
    workspace.xp(&["run", "p.toml"]).success();
    let folders = std::fs::read_dir(workspace.path().join("out")).unwrap().count();
    assert_eq!(folders, 2);
    workspace.write("p.toml", &sweep_pipeline("0.01, 0.1"));
    let again = workspace.xp(&["dag", "p.toml"]).success();
    for id in ids {
        let stage = id.split('"').nth(1).unwrap();
        assert!(again.stdout.contains(stage), "{stage} changed with the value order");
    }
}

#[test]
fn failing_variant_does_not_stop_others() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\ncode = 0\n\n[sweep]\ncode = [0, 1, 0, 2]\n\n{}",
        stage("work", "mkdir -p out && echo ${code} > out/${xp.variant}.txt && exit ${code}", &[], &["out/${xp.variant}.txt"])
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "--jobs", "1", "p.toml"]).expect_code(1);
    // [0, 1, 0, 2] has three distinct values, so three variants.
    assert_eq!(workspace.executions("work"), 3, "{}", run.stderr);
    assert!(run.stderr.contains("FAILED"), "{}", run.stderr);
    assert!(run.stderr.contains("log: "), "{}", run.stderr);
    let fast = workspace.xp(&["run", "--jobs", "1", "--fail-fast", "p.toml"]).expect_code(1);
    assert!(fast.stderr.contains("1 failed"), "{}", fast.stderr);
}

#[test]
fn force_reruns_every_variant() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &sweep_pipeline("0.1, 0.01"));
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["run", "p.toml", "--force", "train"]).success();
    assert_eq!(workspace.executions("train"), 4);
    assert_eq!(workspace.executions("prep"), 1);
}

#[test]
fn override_removes_swept_axis() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &sweep_pipeline("0.1, 0.01"));
    workspace.xp(&["run", "p.toml", "-S", "lr=0.5"]).success();
    assert_eq!(workspace.executions("train"), 1);
}

#[test]
fn shell_outputs_must_differ_across_variants() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nn = 1\n\n[sweep]\nn = [1, 2]\n\n{}",
        stage("a", "echo ${n} > a.txt", &[], &["a.txt"])
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["status", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("is also `a.txt`"), "{}", run.stderr);
}

#[test]
fn including_file_sweeps_included_pipeline() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"one\"\n[params]\nk = 1\n\n{}",
        stage("a", "mkdir -p out && echo ${k} > out/${xp.variant}.txt", &[], &["out/${xp.variant}.txt"])
    );
    workspace.write("one.toml", &text);
    workspace.write("all.toml", "include = [\"one.toml\"]\n\n[sweeps.one]\nk = [1, 2, 3]\n");
    workspace.xp(&["run", "all.toml"]).success();
    assert_eq!(workspace.executions("a"), 3);
    workspace.write("bad.toml", "include = [\"one.toml\"]\n\n[sweeps.on]\nk = [1]\n");
    let run = workspace.xp(&["status", "bad.toml"]).expect_code(2);
    assert!(run.stderr.contains("`[sweeps.on]` names no included pipeline"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `one`?"), "{}", run.stderr);
}

#[test]
fn killed_sweep_resumes_missing_variants() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nk = 1\n\n[sweep]\nk = [1, 2, 3]\n\n{}",
        stage("slow", "mkdir -p out && echo ${k} >> variants.log && sleep 0.4 && echo ${k} > out/${xp.variant}.txt", &[], &["out/${xp.variant}.txt"])
    );
    workspace.write("p.toml", &text);
    let child = workspace.spawn(&["run", "--jobs", "1", "p.toml"]);
    // Wait until the first variant is stored and the second has started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while workspace.executions("slow") < 2 {
        assert!(std::time::Instant::now() < deadline, "the sweep did not progress");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    crate::support::finish(child);
    let before = workspace.executions("slow");
    let run = workspace.xp(&["run", "--jobs", "1", "p.toml"]).success();
    // The finished variant is cached; only the interrupted and the unstarted ones run.
    assert_eq!(workspace.executions("slow") - before, 2, "{}", run.stderr);
    assert!(run.stderr.contains("1 cached"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(workspace.path().join("out")).unwrap().count(), 3);
}
