//! Incremental reruns: exactly the stages whose key changed run again,
//! counted by executions, never by timing.

use crate::support::{stage, Workspace};

/// a -> b -> c, and d independent; `n` feeds a, `m` feeds d.
fn chain() -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nn = 3\nm = 1\n\n{}{}{}{}",
        stage("a", "seq 1 ${n} > a.txt", &[], &["a.txt"]),
        stage("b", "wc -l < a.txt > b.txt", &["a.txt"], &["b.txt"]),
        stage("c", "cat b.txt b.txt > c.txt", &["b.txt"], &["c.txt"]),
        stage("d", "echo ${m} > d.txt", &[], &["d.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace
}

fn counts(workspace: &Workspace) -> Vec<usize> {
    ["a", "b", "c", "d"].iter().map(|s| workspace.executions(s)).collect()
}

#[test]
fn second_run_is_all_cached() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(counts(&workspace), vec![1, 1, 1, 1]);
    assert_eq!(run.labels("p/a"), vec!["cached"]);
    assert!(run.stderr.contains("0 ran, 4 cached"), "{}", run.stderr);
    assert_eq!(workspace.read("c.txt"), "3\n3\n");
}

#[test]
fn param_change_reruns_dependants_only() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["run", "p.toml", "-S", "n=5"]).success();
    assert_eq!(counts(&workspace), vec![2, 2, 2, 1]);
    assert_eq!(run.labels("p/a"), vec!["run", "done"]);
    assert!(run.stderr.contains("(param n: 3 -> 5)"), "{}", run.stderr);
    assert!(run.stderr.contains("(upstream p/a output a.txt changed ("), "{}", run.stderr);
    assert_eq!(run.labels("p/d"), vec!["cached"]);
    assert_eq!(workspace.read("c.txt"), "5\n5\n");
}

#[test]
fn status_lists_reasons_without_running() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["status", "p.toml", "-S", "m=2"]).success();
    assert_eq!(counts(&workspace), vec![1, 1, 1, 1]);
    assert!(run.stdout.contains("cached   p/a"), "{}", run.stdout);
    assert!(run.stdout.contains("run      p/d  param m: 1 -> 2"), "{}", run.stdout);
    assert!(run.stdout.contains("4 stages: 3 cached, 1 to run"), "{}", run.stdout);
    let dry = workspace.xp(&["run", "--dry-run", "p.toml", "-S", "n=9"]).success();
    assert!(dry.stdout.contains("run      p/b  upstream p/a will run"), "{}", dry.stdout);
    assert_eq!(counts(&workspace), vec![1, 1, 1, 1]);
}

#[test]
fn status_says_never_run() {
    let workspace = chain();
    let run = workspace.xp(&["status", "p.toml"]).success();
    assert!(run.stdout.contains("run      p/a  never run"), "{}", run.stdout);
}

#[test]
fn reverting_param_reuses_old_result() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["run", "p.toml", "-S", "n=5"]).success();
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(counts(&workspace), vec![2, 2, 2, 1]);
    assert!(run.stderr.contains("0 ran, 1 cached, 3 restored"), "{}", run.stderr);
    assert_eq!(workspace.read("c.txt"), "3\n3\n");
}

#[test]
fn input_file_change_reruns_reader() {
    let workspace = Workspace::new();
    workspace.write("data/in.txt", "one\n");
    let text = format!(
        "name = \"p\"\n{}",
        stage("copy", "cat data/in.txt data/in.txt > out.txt", &["data/in.txt"], &["out.txt"])
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    workspace.write("data/in.txt", "two\n");
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("(input data/in.txt changed ("), "{}", run.stderr);
    assert_eq!(workspace.executions("copy"), 2);
    assert_eq!(workspace.read("out.txt"), "two\ntwo\n");
}

#[test]
fn folder_input_change_reruns_reader() {
    let workspace = Workspace::new();
    workspace.write("data/a.txt", "a\n").write("data/sub/b.txt", "b\n");
    let text = format!("name = \"p\"\n{}", stage("list", "cat data/a.txt data/sub/b.txt > all.txt", &["data"], &["all.txt"]));
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("list"), 1);
    workspace.write("data/sub/b.txt", "B\n");
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("list"), 2);
}

#[test]
fn early_cutoff_stops_at_identical_output() {
    let workspace = Workspace::new();
    // `a` writes n / 10, so n = 11 and n = 12 give the same bytes.
    let text = format!(
        "name = \"p\"\n[params]\nn = 11\n\n{}{}",
        stage("a", "echo $(( ${n} / 10 )) > a.txt", &[], &["a.txt"]),
        stage("b", "cat a.txt > b.txt", &["a.txt"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["run", "p.toml", "-S", "n=12"]).success();
    assert_eq!(workspace.executions("a"), 2);
    assert_eq!(workspace.executions("b"), 1);
    assert_eq!(run.labels("p/b"), vec!["cached"]);
}

#[test]
fn needs_edge_passes_output_hash() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nn = 1\n\n{}[stages.after]\nkind = \"shell\"\ncommand = \"echo after >> runs.log\"\nneeds = [\"a\"]\n",
        stage("a", "echo ${n} > a.txt", &[], &["a.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("after"), 1);
    let run = workspace.xp(&["run", "p.toml", "-S", "n=2"]).success();
    assert_eq!(workspace.executions("after"), 2);
    assert!(run.stderr.contains("(upstream p/a output changed ("), "{}", run.stderr);
}

#[test]
fn command_change_reruns_stage() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo 1 > a.txt", &[], &["a.txt"])));
    workspace.xp(&["run", "p.toml"]).success();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo 2 > a.txt", &[], &["a.txt"])));
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("(command changed)"), "{}", run.stderr);
    assert_eq!(workspace.read("a.txt"), "2\n");
}

#[test]
fn force_reruns_named_stage() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["run", "p.toml", "--force", "b"]).success();
    assert!(run.stderr.contains("(forced with --force)"), "{}", run.stderr);
    // b wrote the same bytes, so c stays cached.
    assert_eq!(counts(&workspace), vec![1, 2, 1, 1]);
    let unknown = workspace.xp(&["run", "p.toml", "--force", "bb"]).expect_code(2);
    assert!(unknown.stderr.contains("did you mean"), "{}", unknown.stderr);
}

#[test]
fn deleted_output_is_restored_not_rerun() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    std::fs::remove_file(workspace.path().join("b.txt")).unwrap();
    workspace.write("c.txt", "edited by hand\n");
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(counts(&workspace), vec![1, 1, 1, 1]);
    assert_eq!(run.labels("p/b"), vec!["restore", "restored"]);
    assert_eq!(workspace.read("b.txt"), "3\n");
    assert_eq!(workspace.read("c.txt"), "3\n3\n");
}

#[test]
fn folder_output_is_stored_and_restored() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}",
        stage("tree", "mkdir -p out/sub && echo x > out/x.txt && echo y > out/sub/y.txt", &[], &["out"])
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    std::fs::remove_dir_all(workspace.path().join("out")).unwrap();
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("tree"), 1);
    assert_eq!(workspace.read("out/sub/y.txt"), "y\n");
}

#[test]
fn include_drives_several_pipelines() {
    let workspace = Workspace::new();
    workspace.write("all.toml", "include = [\"one.toml\", \"sub/two.toml\"]\n");
    workspace.write("one.toml", &format!("name = \"one\"\n{}", stage("a", "echo 1 > one.txt", &[], &["one.txt"])));
    let two = format!(
        "name = \"two\"\n[stages.b]\nkind = \"shell\"\ncommand = \"cat one.txt > two.txt\"\nneeds = [\"one/a\"]\ninputs = [\"one.txt\"]\noutputs = [\"two.txt\"]\n"
    );
    workspace.write("sub/two.toml", &two);
    let run = workspace.xp(&["run", "all.toml"]).success();
    assert!(run.stderr.contains("2 ran"), "{}", run.stderr);
    assert_eq!(workspace.read("two.txt"), "1\n");
}

#[test]
fn shell_metacharacters_stay_quoted() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nlabel = \"x\"\n\n{}",
        stage("a", "echo ${label} > a.txt", &[], &["a.txt"])
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml", "-S", "label=1; touch pwned"]).success();
    assert!(!workspace.exists("pwned"));
    assert_eq!(workspace.read("a.txt"), "1; touch pwned\n");
}

#[test]
fn gc_removes_unreferenced_objects() {
    let workspace = chain();
    workspace.xp(&["run", "p.toml"]).success();
    let before = workspace.objects().len();
    let stray = workspace.path().join("cache/objects/ff/ffstray");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, "stray").unwrap();
    let run = workspace.xp(&["gc"]).success();
    assert!(run.stdout.contains("removed 1 objects"), "{}", run.stdout);
    assert!(!stray.exists());
    assert_eq!(workspace.objects().len(), before);
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(counts(&workspace), vec![1, 1, 1, 1]);
}

#[test]
fn unchanged_input_is_not_rehashed() {
    let workspace = Workspace::new();
    workspace.write("data/in.txt", "one\n");
    let text = format!("name = \"p\"\n{}", stage("copy", "cat data/in.txt > out.txt", &["data/in.txt"], &["out.txt"]));
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    let traced = |workspace: &Workspace| {
        let output = workspace.command(&["run", "p.toml"]).env("RUST_LOG", "xp=trace").output().unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let second = traced(&workspace);
    assert!(second.contains("file unchanged since last hashed path=\"data/in.txt\""), "{second}");
    assert!(!second.contains("hashing file path=\"data/in.txt\""), "{second}");
    workspace.write("data/in.txt", "two, longer\n");
    let third = traced(&workspace);
    assert!(third.contains("hashing file path=\"data/in.txt\""), "{third}");
}

#[test]
fn profile_sets_parameters() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nn = 3\n\n[profiles.quick]\nn = 1\n\n{}",
        stage("a", "seq 1 ${n} > a.txt", &[], &["a.txt"])
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml", "--profile", "quick"]).success();
    assert_eq!(workspace.read("a.txt"), "1\n");
    workspace.xp(&["run", "p.toml", "--profile", "quick", "-S", "n=2"]).success();
    assert_eq!(workspace.read("a.txt"), "1\n2\n");
    let unknown = workspace.xp(&["run", "p.toml", "--profile", "quik"]).expect_code(2);
    assert!(unknown.stderr.contains("profile `quik` not found"), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("did you mean `quick`?"), "{}", unknown.stderr);
}

#[test]
fn volatile_files_do_not_rerun_dependants() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("a", "mkdir -p out/volatile && echo same > out/result.txt && date +%s%N > out/volatile/time.txt", &[], &["out"]),
        stage("b", "cat out/result.txt > b.txt", &["out"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["run", "p.toml", "--force", "a"]).success();
    assert_eq!(workspace.executions("a"), 2);
    assert_eq!(workspace.executions("b"), 1, "{}", run.stderr);
    assert!(workspace.exists("out/volatile/time.txt"));
}
