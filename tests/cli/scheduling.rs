//! Parallelism, the thread budget and concurrent `xp` processes.

use std::time::Duration;

use crate::support::{finish, stage, Workspace};

/// Each stage waits (up to 10 s) for the other's marker, so both succeed only
/// if they run at the same time.
#[test]
fn independent_stages_run_in_parallel() {
    let workspace = Workspace::new();
    let wait = |me: &str, other: &str| {
        format!(
            "touch {me}.started; i=0; while [ ! -f {other}.started ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; test -f {other}.started && touch {me}.txt"
        )
    };
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("left", &wait("left", "right"), &[], &["left.txt"]),
        stage("right", &wait("right", "left"), &[], &["right.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "--jobs", "2", "p.toml"]).success();
}

/// Two stages of 2 threads each on a budget of 2 must not overlap: each holds
/// a `mkdir` lock while it runs and fails if the other holds it.
#[test]
fn thread_budget_prevents_overlap() {
    let workspace = Workspace::new();
    let body = |name: &str| {
        format!(
            "[stages.{name}]\nkind = \"shell\"\nthreads = 2\ncommand = \"mkdir held && sleep 0.3 && rmdir held && echo $XP_THREADS > {name}.txt\"\noutputs = [\"{name}.txt\"]\n"
        )
    };
    workspace.write("p.toml", &format!("name = \"p\"\n{}{}", body("one"), body("two")));
    workspace.xp(&["run", "--jobs", "2", "p.toml"]).success();
    assert_eq!(workspace.read("one.txt"), "2\n");
}

#[test]
fn concurrent_runs_wait_and_share() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("a", "sleep 0.5; echo a > a.txt", &[], &["a.txt"]),
        stage("b", "cat a.txt > b.txt", &["a.txt"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    let first = workspace.spawn(&["run", "p.toml"]);
    let second = workspace.spawn(&["run", "p.toml"]);
    let first = finish(first).success();
    let second = finish(second).success();
    assert_eq!(workspace.executions("a"), 1, "{}\n{}", first.stderr, second.stderr);
    assert_eq!(workspace.executions("b"), 1);
    let waited = format!("{}{}", first.stderr, second.stderr);
    assert!(waited.contains("xp: waiting for "), "{waited}");
}

#[test]
fn ten_runs_on_two_pipelines() {
    let workspace = Workspace::new();
    workspace.write("one.toml", &format!("name = \"one\"\n{}", stage("x", "sleep 0.1; echo 1 > one.txt", &[], &["one.txt"])));
    workspace.write("two.toml", &format!("name = \"two\"\n{}", stage("y", "sleep 0.1; echo 2 > two.txt", &[], &["two.txt"])));
    let children: Vec<_> = (0..10)
        .map(|i| workspace.spawn(&["run", if i % 2 == 0 { "one.toml" } else { "two.toml" }]))
        .collect();
    for child in children {
        finish(child).success();
    }
    assert_eq!(workspace.executions("x"), 1);
    assert_eq!(workspace.executions("y"), 1);
    assert_eq!(workspace.read("two.txt"), "2\n");
}

#[test]
fn no_wait_fails_naming_holder() {
    let workspace = Workspace::new();
    let text = format!("name = \"p\"\n{}", stage("a", "touch started; sleep 2; echo a > a.txt", &[], &["a.txt"]));
    workspace.write("p.toml", &text);
    let first = workspace.spawn(&["run", "p.toml"]);
    workspace.wait_for("started", Duration::from_secs(20));
    let second = workspace.xp(&["run", "--no-wait", "p.toml"]).expect_code(3);
    assert!(second.stderr.contains("is in use by pid"), "{}", second.stderr);
    assert!(second.stderr.contains("xp run p.toml"), "{}", second.stderr);
    finish(first).success();
}
