//! Lock files, `xp run --locked`, `xp audit` and `xp why`.

use serde_json::Value as Json;

use crate::support::{stage, Workspace};

/// Returns a workspace with a two-stage pipeline whose results depend only on its parameter `n`.
fn counting_pipeline() -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nn = 3\nseed = 11\n\n{}{}",
        stage("make", "seq ${n} > data.txt", &[], &["data.txt"]),
        stage(
            "total",
            r#"awk '{s+=$1} END {printf "{\"total\": %d, \"main_metric\": \"total\"}", s}' data.txt > metrics.json"#,
            &["data.txt"],
            &["metrics.json"]
        ),
    );
    workspace.write("p.toml", &text);
    workspace
}

fn json(workspace: &Workspace, rel: &str) -> Json {
    serde_json::from_str(&workspace.read(rel)).unwrap_or_else(|err| panic!("{rel} is not JSON: {err}"))
}

fn verdicts(workspace: &Workspace) -> Vec<(String, String)> {
    let report = json(workspace, "reports/p/audit.json");
    let stages = report["stages"].as_array().expect("stages list").clone();
    stages
        .iter()
        .map(|s| (s["stage"].as_str().unwrap().to_string(), s["verdict"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn lock_records_stage_results() {
    let workspace = counting_pipeline();
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("lock written to `p.lock`"), "{}", run.stderr);
    let lock = json(&workspace, "p.lock");
    let total = &lock["stages"]["p/total"];
    assert_eq!(total["metrics"]["total"], 6.0);
    assert_eq!(total["main_metric"], "total");
    assert_eq!(total["key"].as_str().map(str::len), Some(64));
    assert!(total["components"]["inputs"]["data.txt"].is_string());
    assert_eq!(lock["stages"]["p/make"]["components"]["params"]["n"], 3);
    assert_eq!(lock["environment"]["cpus"].as_u64().map(|n| n > 0), Some(true));
    assert!(!workspace.read("p.lock").contains("unix"), "the lock must hold no timestamps");
}

#[test]
fn lock_is_byte_identical_across_runs() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    let first = workspace.read("p.lock");
    std::fs::remove_dir_all(workspace.path().join("cache")).unwrap();
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.executions("make"), 2, "the second run must execute again");
    assert_eq!(workspace.read("p.lock"), first);
    let cached = workspace.xp(&["run", "p.toml"]).success();
    assert!(!cached.stderr.contains("lock written"), "{}", cached.stderr);
    assert_eq!(workspace.read("p.lock"), first);
}

#[test]
fn lock_not_written_after_failure() {
    let workspace = Workspace::new();
    let text = format!("name = \"p\"\n{}", stage("broken", "exit 3", &[], &["out.txt"]));
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("`p.lock` not updated"), "{}", run.stderr);
    assert!(!workspace.exists("p.lock"));
}

#[test]
fn locked_refuses_changed_param() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["run", "p.toml", "--locked"]).success();
    let text = workspace.read("p.toml").replace("n = 3", "n = 4");
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml", "--locked"]).expect_code(2);
    assert!(run.stderr.contains("p.lock is out of date"), "{}", run.stderr);
    assert!(run.stderr.contains("p/make: param n: 3 -> 4"), "{}", run.stderr);
    assert!(!run.stderr.contains("p/total:"), "a downstream stage is not to blame: {}", run.stderr);
    assert_eq!(workspace.executions("make"), 1, "nothing may run");
}

#[test]
fn locked_refuses_missing_lock() {
    let workspace = counting_pipeline();
    let run = workspace.xp(&["run", "p.toml", "--locked"]).expect_code(2);
    assert!(run.stderr.contains("the lock file does not exist"), "{}", run.stderr);
    assert_eq!(workspace.executions("make"), 0);
}

#[test]
fn locked_fails_when_result_differs() {
    let workspace = Workspace::new();
    let text = format!("name = \"p\"\n{}", stage("noise", "echo $$$$ > noise.txt", &[], &["noise.txt"]));
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    let locked = workspace.read("p.lock");
    std::fs::remove_dir_all(workspace.path().join("cache")).unwrap();
    let run = workspace.xp(&["run", "p.toml", "--locked"]).expect_code(1);
    assert!(run.stderr.contains("p/noise: output noise.txt changed"), "{}", run.stderr);
    assert_eq!(workspace.read("p.lock"), locked, "the lock must be kept");
}

#[test]
fn audit_of_unchanged_pipeline_is_identical() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["audit", "p.toml"]).success();
    assert!(run.stderr.contains("2 bit-identical"), "{}", run.stderr);
    let expected = vec![
        ("p/make".to_string(), "bit_identical".to_string()),
        ("p/total".to_string(), "bit_identical".to_string()),
    ];
    assert_eq!(verdicts(&workspace), expected);
    let markdown = workspace.read("reports/p/audit.md");
    assert!(markdown.contains("**Result: reproduced.**"), "{markdown}");
    assert_eq!(workspace.executions("make"), 1, "the audit must not run stages in the workspace");
}

#[test]
fn audit_classifies_each_verdict() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}{}",
        stage("steady", "echo 1 > steady.txt", &[], &["steady.txt"]),
        stage("jitter", r#"printf '{"loss": 1.0000000%05d}' $$$$ > jitter.json"#, &[], &["jitter.json"]),
        stage("noise", "echo $$$$ > noise.txt", &[], &["noise.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["audit", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("1 bit-identical, 1 numerically close, 1 diverged"), "{}", run.stderr);
    let found = verdicts(&workspace);
    assert!(found.contains(&("p/steady".into(), "bit_identical".into())), "{found:?}");
    assert!(found.contains(&("p/jitter".into(), "numerically_close".into())), "{found:?}");
    assert!(found.contains(&("p/noise".into(), "diverged".into())), "{found:?}");
    let markdown = workspace.read("reports/p/audit.md");
    assert!(markdown.contains("noise.txt differs"), "{markdown}");
}

#[test]
fn audit_tolerance_from_pipeline() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[audit]\ntolerance = 0\n\n{}",
        stage("jitter", r#"printf '{"loss": 1.0000000%05d}' $$$$ > jitter.json"#, &[], &["jitter.json"]),
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["audit", "p.toml"]).expect_code(1);
    assert_eq!(verdicts(&workspace), vec![("p/jitter".to_string(), "diverged".to_string())]);
    let markdown = workspace.read("reports/p/audit.md");
    assert!(markdown.contains("$.loss: 1.0000000"), "{markdown}");
}

#[test]
fn audit_selects_stages() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["audit", "p.toml", "--stage", "total"]).success();
    assert_eq!(verdicts(&workspace), vec![("p/total".to_string(), "bit_identical".to_string())]);
    workspace.xp(&["audit", "p.toml", "--sample", "1", "--seed", "3"]).success();
    assert_eq!(verdicts(&workspace).len(), 1);
}

#[test]
fn audit_without_lock_is_invalid() {
    let workspace = counting_pipeline();
    let run = workspace.xp(&["audit", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("has no lock file"), "{}", run.stderr);
}

#[test]
fn audit_fails_undeclared_input() {
    let workspace = Workspace::new();
    workspace.write("hidden.txt", "secret\n");
    let text = format!("name = \"p\"\n{}", stage("copy", "cat hidden.txt > out.txt", &[], &["out.txt"]));
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["audit", "p.toml"]).expect_code(1);
    assert_eq!(verdicts(&workspace), vec![("p/copy".to_string(), "not_audited".to_string())]);
}

#[test]
fn why_names_each_kind_of_change() {
    let workspace = counting_pipeline();
    workspace.write("extra.txt", "a\n");
    let with_input = workspace.read("p.toml").replace("inputs = []\noutputs = [\"data.txt\"]", "inputs = [\"extra.txt\"]\noutputs = [\"data.txt\"]");
    workspace.write("p.toml", &with_input);
    workspace.xp(&["run", "p.toml"]).success();
    let changes: Vec<(&str, Box<dyn Fn(&Workspace)>)> = vec![
        ("param n: 3 -> 4", Box::new(|w| {
            w.write("p.toml", &w.read("p.toml").replace("n = 3", "n = 4"));
        })),
        ("input extra.txt changed (", Box::new(|w| {
            w.write("extra.txt", "b\n");
        })),
        ("command changed", Box::new(|w| {
            w.write("p.toml", &w.read("p.toml").replace("seq ${n}", "seq 1 ${n}"));
        })),
        (
            "env LANG: unset -> \"C\"",
            Box::new(|w| {
            w.write("p.toml", &w.read("p.toml").replace("[stages.make]\n", "[stages.make]\nenv = { LANG = \"C\" }\n"));
        }),
        ),
    ];
    for (expected, change) in changes {
        change(&workspace);
        workspace.xp(&["run", "p.toml"]).success();
        let why = workspace.xp(&["why", "make"]).success();
        let newest = why.stdout.split("\nrun ").nth(1).unwrap_or_default();
        assert!(newest.contains(expected), "expected `{expected}` in the newest run:\n{}", why.stdout);
    }
    let upstream = workspace.xp(&["why", "p/total", "--runs", "2"]).success();
    assert!(upstream.stdout.contains("upstream p/make output data.txt changed ("), "{}", upstream.stdout);
}

#[test]
fn why_names_artifact_origin() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    let why = workspace.xp(&["why", "metrics.json"]).success();
    assert!(why.stdout.contains("was made by stage p/total"), "{}", why.stdout);
    workspace.write("metrics.json", "{}");
    let edited = workspace.xp(&["why", "metrics.json"]).success();
    assert!(edited.stdout.contains("matches none of its"), "{}", edited.stdout);
    let unknown = workspace.xp(&["why", "nowhere.txt"]).expect_code(2);
    assert!(unknown.stderr.contains("neither a stage"), "{}", unknown.stderr);
}

#[test]
fn compare_lock_files_names_changes() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    std::fs::copy(workspace.path().join("p.lock"), workspace.path().join("old.lock")).unwrap();
    workspace.write("p.toml", &workspace.read("p.toml").replace("n = 3", "n = 4"));
    workspace.xp(&["run", "p.toml"]).success();
    let compare = workspace.xp(&["compare", "old.lock", "p.lock"]).success();
    assert!(compare.stdout.contains("param n: 3 -> 4"), "{}", compare.stdout);
    assert!(compare.stdout.contains("metric total (main): 6 -> 10  (+4)"), "{}", compare.stdout);
}

#[test]
fn compare_lock_from_git_revision() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.name=xp", "-c", "user.email=xp@example.invalid"])
            .args(args)
            .current_dir(workspace.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run git");
        assert!(status.success(), "git {args:?} failed");
    };
    git(&["init", "-q"]);
    git(&["add", "p.toml", "p.lock"]);
    git(&["commit", "-q", "-m", "lock"]);
    workspace.write("p.toml", &workspace.read("p.toml").replace("n = 3", "n = 2"));
    workspace.xp(&["run", "p.toml"]).success();
    let compare = workspace.xp(&["compare", "HEAD:p.lock", "p.lock"]).success();
    assert!(compare.stdout.contains("metric total (main): 6 -> 3"), "{}", compare.stdout);
    let missing = workspace.xp(&["compare", "HEAD:nothing.lock", "p.lock"]).expect_code(2);
    assert!(missing.stderr.contains("git show HEAD:nothing.lock"), "{}", missing.stderr);
}

#[test]
fn audit_compares_with_lock_not_cache() {
    let workspace = Workspace::new();
    let text = format!("name = \"p\"\n{}", stage("host", "echo $$MACHINE > host.txt", &[], &["host.txt"]));
    workspace.write("p.toml", &text);
    let run = |machine: &str, args: &[&str]| {
        let output = workspace.command(args).env("MACHINE", machine).output().expect("start xp");
        output.status.code()
    };
    assert_eq!(run("a", &["run", "p.toml"]), Some(0));
    let teammate = workspace.read("p.lock");
    std::fs::remove_dir_all(workspace.path().join("cache")).unwrap();
    assert_eq!(run("b", &["run", "p.toml"]), Some(0));
    workspace.write("p.lock", &teammate);
    assert_eq!(run("b", &["audit", "p.toml"]), Some(1));
    assert_eq!(verdicts(&workspace), vec![("p/host".to_string(), "diverged".to_string())]);
    let markdown = workspace.read("reports/p/audit.md");
    assert!(markdown.contains("differs from the lock"), "{markdown}");
}

#[test]
fn audit_reports_changed_configuration() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    workspace.xp(&["audit", "p.toml", "-S", "n=4"]).expect_code(1);
    let found = verdicts(&workspace);
    assert!(found.contains(&("p/make".into(), "not_audited".into())), "{found:?}");
    let markdown = workspace.read("reports/p/audit.md");
    assert!(markdown.contains("param n: 3 -> 4"), "{markdown}");
}

#[test]
fn locked_ignores_override_order() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml", "-S", "n=4", "-S", "seed=2"]).success();
    workspace.xp(&["run", "p.toml", "--locked", "-S", "seed=2", "-S", "n=4"]).success();
    // `seed` reaches no stage, so leaving it out changes nothing that is locked.
    workspace.xp(&["run", "p.toml", "--locked", "-S", "n=4"]).success();
    let refused = workspace.xp(&["run", "p.toml", "--locked", "-S", "n=5"]).expect_code(2);
    assert!(refused.stderr.contains("p/make: param n: 4 -> 5"), "{}", refused.stderr);
    assert!(refused.stderr.contains("the lock was written with overrides"), "{}", refused.stderr);
}

#[test]
fn locked_dry_run_refuses_too() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    let run = workspace.xp(&["run", "p.toml", "--locked", "--dry-run", "-S", "n=5"]).expect_code(2);
    assert!(run.stderr.contains("p/make: param n: 3 -> 5"), "{}", run.stderr);
}

#[test]
fn corrupt_lock_is_invalid_input() {
    let workspace = counting_pipeline();
    workspace.xp(&["run", "p.toml"]).success();
    workspace.write("p.lock", "{ not json");
    let run = workspace.xp(&["run", "p.toml", "--locked"]).expect_code(2);
    assert!(run.stderr.contains("is not a valid xp lock"), "{}", run.stderr);
    workspace.xp(&["audit", "p.toml"]).expect_code(2);
}

#[test]
fn audit_stage_by_variant_id() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n[params]\nn = 1\n[sweep]\nn = [1, 2]\n\n{}",
        stage("make", "echo ${n} > out-${xp.variant}.txt", &[], &["out-${xp.variant}.txt"])
    );
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    let lock = json(&workspace, "p.lock");
    let ids: Vec<String> = lock["stages"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let variant = ids[0].strip_prefix("p/").unwrap().to_string();
    workspace.xp(&["audit", "p.toml", "--stage", &variant]).success();
    assert_eq!(verdicts(&workspace), vec![(ids[0].clone(), "bit_identical".to_string())]);
}
