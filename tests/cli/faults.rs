//! Failing, killed and interrupted stages, and damaged cache objects: nothing
//! partial is kept and the next run completes.

use std::time::Duration;

use crate::support::{finish, stage, Workspace};

#[test]
fn failed_stage_leaves_nothing_cached() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("a", "echo partial > a.txt && exit 3", &[], &["a.txt"]),
        stage("b", "cat a.txt > b.txt", &["a.txt"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("FAILED  p/a  command exited with status 3"), "{}", run.stderr);
    assert!(run.stderr.contains("log: "), "{}", run.stderr);
    assert!(run.stderr.contains("skipped  p/b  (upstream p/a failed)"), "{}", run.stderr);
    assert!(!workspace.exists("a.txt"), "a partial output was kept");
    let status = workspace.xp(&["status", "p.toml"]).success();
    assert!(status.stdout.contains("run      p/a  never run"), "{}", status.stdout);
    // Only the failed stage's log may have been stored; no output object.
    assert!(workspace.objects().is_empty(), "{:?}", workspace.objects());
}

#[test]
fn failed_stage_log_is_kept() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo oops >&2; exit 1", &[], &[])));
    workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(workspace.read("cache/logs/p/a.log").contains("oops"));
}

#[test]
fn missing_declared_output_fails_stage() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "true", &[], &["never.txt"])));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("did not write its declared output `never.txt`"), "{}", run.stderr);
}

#[test]
fn missing_input_fails_stage() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "true", &["nope.txt"], &[])));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("input `nope.txt` of stage `p/a` not found"), "{}", run.stderr);
}

#[test]
fn keep_going_runs_independent_stages() {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}{}",
        stage("bad", "exit 1", &[], &["bad.txt"]),
        stage("after", "cat bad.txt > after.txt", &["bad.txt"], &["after.txt"]),
        stage("other", "echo ok > other.txt", &[], &["other.txt"]),
    );
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "--jobs", "1", "p.toml"]).expect_code(1);
    assert_eq!(workspace.executions("other"), 0, "{}", run.stderr);
    let run = workspace.xp(&["run", "--jobs", "1", "--keep-going", "p.toml"]).expect_code(1);
    assert_eq!(workspace.executions("other"), 1, "{}", run.stderr);
    assert_eq!(workspace.executions("after"), 0);
    assert!(run.stderr.contains("1 ran, 0 cached, 0 restored, 1 failed, 1 skipped"), "{}", run.stderr);
}

/// A stage that signals it started, then sleeps long enough to be killed.
fn slow_pipeline() -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("fast", "echo fast > fast.txt", &[], &["fast.txt"]),
        stage("slow", "echo partial > slow.txt; touch started; sleep 30; echo done > slow.txt", &["fast.txt"], &["slow.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace
}

#[test]
fn sigkill_mid_stage_then_rerun() {
    let workspace = slow_pipeline();
    let child = workspace.spawn(&["run", "p.toml"]);
    workspace.wait_for("started", Duration::from_secs(20));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let killed = finish(child);
    assert_eq!(killed.code, -1, "xp should have died by signal");
    std::fs::remove_file(workspace.path().join("started")).unwrap();

    let status = workspace.xp(&["status", "p.toml"]).success();
    assert!(status.stdout.contains("cached   p/fast"), "{}", status.stdout);
    assert!(status.stdout.contains("run      p/slow  never run"), "{}", status.stdout);

    let fixed = "sleep 30; echo done > slow.txt";
    let text = workspace.read("p.toml").replace(fixed, "echo done > slow.txt");
    workspace.write("p.toml", &text);
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.read("slow.txt"), "done\n");
    assert_eq!(workspace.executions("fast"), 1);
}

#[test]
fn sigint_stops_cleanly_and_resumes() {
    let workspace = slow_pipeline();
    let child = workspace.spawn(&["run", "p.toml"]);
    workspace.wait_for("started", Duration::from_secs(20));
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let run = finish(child).expect_code(130);
    assert!(run.stderr.contains("stopped  p/slow"), "{}", run.stderr);
    assert!(!workspace.exists("slow.txt"), "the interrupted stage's output was kept");
    let partial = blake3::hash(b"partial\n").to_hex().to_string();
    let stored: Vec<String> = workspace.objects().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(!stored.contains(&partial[2..].to_string()), "the partial output was stored");
    let tmp = std::fs::read_dir(workspace.path().join("cache/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "temporary files were left in the cache");
    let status = workspace.xp(&["status", "p.toml"]).success();
    assert!(status.stdout.contains("cached   p/fast"), "{}", status.stdout);
    assert!(status.stdout.contains("run      p/slow"), "{}", status.stdout);

    let text = workspace.read("p.toml").replace("sleep 30; ", "");
    workspace.write("p.toml", &text);
    let resumed = workspace.xp(&["run", "p.toml"]).success();
    assert!(resumed.stderr.contains("1 ran, 1 cached"), "{}", resumed.stderr);
    assert_eq!(workspace.read("slow.txt"), "done\n");
    assert_eq!(workspace.executions("fast"), 1);
}

#[test]
fn corrupt_object_is_detected_and_rebuilt() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo good > a.txt", &[], &["a.txt"])));
    workspace.xp(&["run", "p.toml"]).success();
    let good = blake3::hash(b"good\n").to_hex().to_string();
    let object = workspace.path().join("cache/objects").join(&good[..2]).join(&good[2..]);
    assert!(object.exists(), "object {object:?} not found");
    let mut permissions = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&object, permissions).unwrap();
    std::fs::write(&object, "evil\n").unwrap();
    std::fs::remove_file(workspace.path().join("a.txt")).unwrap();

    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    assert!(run.stderr.contains("is corrupt"), "{}", run.stderr);
    assert_eq!(workspace.read("a.txt"), "good\n");
    assert_eq!(workspace.executions("a"), 2);
}

#[test]
fn fifo_in_output_fails_stage() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "mkdir -p out && mkfifo out/pipe", &[], &["out"])));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("is not a regular file"), "{}", run.stderr);
    assert!(!workspace.exists("out"), "the failed stage's output was kept");
}

#[test]
fn symlink_in_output_fails_stage() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "ln -s /etc/hostname link.txt", &[], &["link.txt"])));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.stderr);
    let kept = std::fs::symlink_metadata(workspace.path().join("link.txt")).is_ok();
    assert!(!kept, "the failed stage's link was kept");
}

#[test]
fn closed_stderr_does_not_panic() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo a > a.txt", &[], &["a.txt"])));
    let mut child = workspace
        .command(&["run", "p.toml"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(workspace.read("a.txt"), "a\n");
}
