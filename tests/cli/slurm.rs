//! The Slurm executor against a real single-node cluster (see `cluster`):
//! the same outputs and cache keys as the local executor, failures,
//! interruption, and cached reruns that submit nothing.

mod cluster;

use std::collections::BTreeMap;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use self::cluster::{cluster, Cluster};
use crate::support::{finish, stage, Run, Workspace};

/// Runs `xp ARGS` in `workspace` against `cluster`.
fn xp(cluster: &Cluster, workspace: &Workspace, args: &[&str]) -> Run {
    let output = workspace.command(args).env("SLURM_CONF", &cluster.conf).output().expect("start xp");
    Run::from_output(output)
}

/// The `[executor]` table the tests use: quick polling, and a job stops
/// itself 5 s after the last heartbeat.
const EXECUTOR: &str = "[executor]\nkind = \"slurm\"\npoll_interval = 0.2\ncoordinator_timeout = 5\n\n";

/// Builds a three-stage chain: `a` writes a file, `b` a folder from it, `c` counts lines.
fn chain(name: &str, executor: &str) -> String {
    format!(
        "name = \"{name}\"\n{executor}{}{}{}",
        stage("a", "seq 1 5 > a.txt", &[], &["a.txt"]),
        stage("b", "mkdir -p b && sort -r a.txt > b/rev.txt && echo $XP_THREADS > b/threads.txt", &["a.txt"], &["b"]),
        stage("c", "cat a.txt b/rev.txt | wc -l > c.txt", &["a.txt", "b/rev.txt"], &["c.txt"]),
    )
    .replace("[stages.b]\n", "[stages.b]\nthreads = 2\nmemory = \"100M\"\n")
}

/// Returns every stored result as `stage id -> (key, output hashes)`.
fn entries(workspace: &Workspace) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let cache = xp::cache::Cache::open(&workspace.path().join("cache"), xp::cache::WhenBusy::Fail).unwrap();
    let mut found = BTreeMap::new();
    for item in cache.index.all_entries() {
        let (key, entry) = item.unwrap();
        let outputs = entry.outputs.iter().map(|(path, a)| (path.clone(), a.hash.clone())).collect();
        found.insert(entry.stage.clone(), (key, outputs));
    }
    found
}

#[test]
fn chain_matches_local_run() {
    let Some(cluster) = cluster("chain_matches_local_run") else { return };
    let local = Workspace::new();
    local.write("p.toml", &chain("slurm_chain", ""));
    local.xp(&["run", "p.toml"]).success();

    let remote = Workspace::new();
    remote.write("p.toml", &chain("slurm_chain", ""));
    let run = xp(cluster, &remote, &["run", "--executor", "slurm", "p.toml"]).success();
    assert!(run.stderr.contains("3 ran, 0 cached"), "{}", run.stderr);
    assert!(run.stderr.contains("submitted 3 Slurm jobs"), "{}", run.stderr);
    for file in ["a.txt", "b/rev.txt", "b/threads.txt", "c.txt"] {
        assert_eq!(remote.read(file), local.read(file), "{file} differs");
    }
    assert_eq!(entries(&remote), entries(&local));
    assert_eq!(remote.executions("a"), 1);
    assert!(remote.objects().len() >= 5, "{:?}", remote.objects());

    // The keys do not depend on the executor, so a local rerun finds everything cached.
    let rerun = remote.xp(&["run", "p.toml"]).success();
    assert!(rerun.stderr.contains("0 ran, 3 cached"), "{}", rerun.stderr);
    let jobs = cluster.jobs_of("slurm_chain");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    // Stage b declares `threads = 2` and `memory = "100M"`.
    assert_eq!(cluster.resources_of("xp:slurm_chain/b"), ("2".to_string(), "100M".to_string()));
    assert_eq!(cluster.resources_of("xp:slurm_chain/a").0, "1");
}

#[test]
fn sweep_matches_local_run() {
    let Some(cluster) = cluster("sweep_matches_local_run") else { return };
    let text = format!(
        "name = \"slurm_sweep\"\n\n[params]\nn = 1\n\n[sweep]\nn = [2, 3, 4]\n\n{}{}",
        stage("base", "seq 1 10 > base.txt", &[], &["base.txt"]),
        stage("head", "head -n ${n} base.txt > head-${xp.variant}.txt", &["base.txt"], &["head-${xp.variant}.txt"]),
    );
    let local = Workspace::new();
    local.write("p.toml", &text);
    local.xp(&["run", "p.toml"]).success();
    let remote = Workspace::new();
    remote.write("p.toml", &text);
    let run = xp(cluster, &remote, &["run", "--executor", "slurm", "p.toml"]).success();
    assert!(run.stderr.contains("4 ran, 0 cached"), "{}", run.stderr);
    let local_entries = entries(&local);
    assert_eq!(entries(&remote), local_entries);
    assert_eq!(local_entries.len(), 4);
    for (_, outputs) in local_entries.values() {
        for path in outputs.keys() {
            assert_eq!(remote.read(path), local.read(path), "{path} differs");
        }
    }
}

#[test]
fn builtin_stage_matches_local_run() {
    let Some(cluster) = cluster("builtin_stage_matches_local_run") else { return };
    let xp_torch = std::path::Path::new(env!("CARGO_BIN_EXE_xp")).with_file_name("xp-torch");
    assert!(xp_torch.is_file(), "{} is missing; run `cargo build --workspace` first", xp_torch.display());
    let data = tempfile::tempdir().unwrap();
    let source = data.path().join("data.csv");
    fs::write(&source, "x,y\n1,2\n").unwrap();
    let sha = std::process::Command::new("sha256sum").arg(&source).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
    let text = format!(
        "name = \"slurm_builtin\"\n\n[stages.fetch]\nkind = \"download\"\n\n\
         [[stages.fetch.params.files]]\nname = \"data.csv\"\n\
         sources = [{{ url = \"file://{}\", sha256 = \"{sha}\" }}]\n",
        source.display()
    );
    let local = Workspace::new();
    local.write("p.toml", &text);
    local.xp(&["run", "p.toml"]).success();
    let remote = Workspace::new();
    remote.write("p.toml", &text);
    let run = xp(cluster, &remote, &["run", "--executor", "slurm", "p.toml"]).success();
    assert!(run.stderr.contains("submitted 1 Slurm job\n"), "{}", run.stderr);
    assert_eq!(remote.read("build/slurm_builtin/fetch/data.csv"), "x,y\n1,2\n");
    assert_eq!(entries(&remote), entries(&local));
}

#[test]
fn cached_rerun_submits_nothing() {
    let Some(cluster) = cluster("cached_rerun_submits_nothing") else { return };
    let workspace = Workspace::new();
    workspace.write("p.toml", &chain("slurm_rerun", EXECUTOR));
    xp(cluster, &workspace, &["run", "p.toml"]).success();
    let before = cluster.jobs_of("slurm_rerun");
    assert_eq!(before.len(), 3, "{before:?}");

    let rerun = xp(cluster, &workspace, &["run", "p.toml"]).success();
    assert!(rerun.stderr.contains("0 ran, 3 cached"), "{}", rerun.stderr);
    assert!(rerun.stderr.contains("submitted 0 Slurm jobs"), "{}", rerun.stderr);
    assert_eq!(cluster.jobs_of("slurm_rerun"), before);

    // A changed command reruns that stage only; the others stay cached.
    let changed = workspace.read("p.toml").replace("wc -l > c.txt", "wc -c > c.txt");
    workspace.write("p.toml", &changed);
    let run = xp(cluster, &workspace, &["run", "p.toml"]).success();
    assert!(run.stderr.contains("1 ran, 2 cached"), "{}", run.stderr);
    assert!(run.stderr.contains("submitted 1 Slurm job\n"), "{}", run.stderr);
}

#[test]
fn failing_job_reports_log() {
    let Some(cluster) = cluster("failing_job_reports_log") else { return };
    let workspace = Workspace::new();
    let text = format!(
        "name = \"slurm_fail\"\n{EXECUTOR}{}{}",
        stage("a", "echo partial > a.txt; echo oops >&2; exit 3", &[], &["a.txt"]),
        stage("b", "cat a.txt > b.txt", &["a.txt"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    let run = xp(cluster, &workspace, &["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("FAILED  slurm_fail/a  command exited with status 3"), "{}", run.stderr);
    assert!(run.stderr.contains("log: "), "{}", run.stderr);
    assert!(run.stderr.contains("skipped  slurm_fail/b"), "{}", run.stderr);
    assert!(workspace.read("cache/logs/slurm_fail/a.log").contains("oops"));
    assert!(!workspace.exists("a.txt"), "the failed stage's output was kept");
    assert!(entries(&workspace).is_empty());
    assert!(cluster.active_jobs_of("slurm_fail").is_empty());
}

#[test]
fn missing_output_fails_job() {
    let Some(cluster) = cluster("missing_output_fails_job") else { return };
    let workspace = Workspace::new();
    workspace.write("p.toml", &format!("name = \"slurm_missing\"\n{EXECUTOR}{}", stage("a", "true", &[], &["never.txt"])));
    let run = xp(cluster, &workspace, &["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("did not write its declared output `never.txt`"), "{}", run.stderr);
}

#[test]
fn rejected_submission_is_reported() {
    let Some(cluster) = cluster("rejected_submission_is_reported") else { return };
    let workspace = Workspace::new();
    let executor = EXECUTOR.replace("[executor]\n", "[executor]\npartition = \"nope\"\n");
    workspace.write("p.toml", &format!("name = \"slurm_reject\"\n{executor}{}", stage("a", "true", &[], &[])));
    let run = xp(cluster, &workspace, &["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("sbatch rejected the job"), "{}", run.stderr);
    assert!(run.stderr.contains("invalid partition"), "{}", run.stderr);
}

#[test]
fn job_that_never_starts_times_out() {
    let Some(cluster) = cluster("job_that_never_starts_times_out") else { return };
    let workspace = Workspace::new();
    let executor = EXECUTOR
        .replace("[executor]\n", "[executor]\nstart_timeout = 2\nsbatch_args = [\"--begin=now+3600\"]\n");
    workspace.write("p.toml", &format!("name = \"slurm_never\"\n{executor}{}", stage("a", "true", &[], &[])));
    let started = Instant::now();
    let run = xp(cluster, &workspace, &["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("did not start within 2s"), "{}", run.stderr);
    assert!(run.stderr.contains("PENDING (BeginTime)"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(cluster.active_jobs_of("slurm_never").is_empty(), "{:?}", cluster.jobs_of("slurm_never"));
}

/// Writes a pipeline whose stage signals that it started and then runs for a minute.
fn slow_pipeline(name: &str) -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"{name}\"\n{EXECUTOR}{}",
        stage("slow", "echo partial > slow.txt; touch started; sleep 60; echo done > slow.txt", &[], &["slow.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace
}

#[test]
fn sigint_leaves_queue_empty() {
    let Some(cluster) = cluster("sigint_leaves_queue_empty") else { return };
    let workspace = slow_pipeline("slurm_sigint");
    let child = workspace
        .command(&["run", "p.toml"])
        .env("SLURM_CONF", &cluster.conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xp");
    workspace.wait_for("started", Duration::from_secs(60));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let run = finish(child).expect_code(130);
    assert!(run.stderr.contains("stopped  slurm_sigint/slow"), "{}", run.stderr);
    assert!(cluster.active_jobs_of("slurm_sigint").is_empty(), "{:?}", cluster.jobs_of("slurm_sigint"));
    assert!(!workspace.exists("slow.txt"), "the interrupted stage's output was kept");
    assert!(entries(&workspace).is_empty());
}

#[test]
fn job_cancelled_outside_xp_fails() {
    let Some(cluster) = cluster("job_cancelled_outside_xp_fails") else { return };
    let workspace = slow_pipeline("slurm_scancel");
    let child = workspace
        .command(&["run", "p.toml"])
        .env("SLURM_CONF", &cluster.conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xp");
    workspace.wait_for("started", Duration::from_secs(60));
    let cancelled = cluster.client("scancel").arg("--name=xp:slurm_scancel/slow").status().unwrap();
    assert!(cancelled.success());
    let run = finish(child).expect_code(1);
    assert!(run.stderr.contains("FAILED  slurm_scancel/slow"), "{}", run.stderr);
    // `scancel` sends SIGTERM first: the job's worker may report its killed
    // command before xp reads the job's CANCELLED state, or the other way round.
    let reported = run.stderr.contains("ended with state CANCELLED before writing its result")
        || run.stderr.contains("command was killed by signal 15");
    assert!(reported, "{}", run.stderr);
    assert!(!workspace.exists("slow.txt"), "the cancelled stage's output was kept");
    assert!(entries(&workspace).is_empty());
}

#[test]
fn sigkill_coordinator_stops_job() {
    let Some(cluster) = cluster("sigkill_coordinator_stops_job") else { return };
    let workspace = slow_pipeline("slurm_sigkill");
    let child = workspace
        .command(&["run", "p.toml"])
        .env("SLURM_CONF", &cluster.conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xp");
    workspace.wait_for("started", Duration::from_secs(60));
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    assert_eq!(finish(child).code, -1, "xp should have died by signal");

    // The job watches the coordinator's pid on this host and stops itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.active_jobs_of("slurm_sigkill").is_empty() {
        assert!(Instant::now() < deadline, "job still queued: {:?}", cluster.jobs_of("slurm_sigkill"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(workspace.read("cache/logs/slurm_sigkill/slow.log").contains("has exited"));
    assert!(entries(&workspace).is_empty(), "a result of the killed run was recorded");

    let fixed = workspace.read("p.toml").replace("sleep 60; ", "");
    workspace.write("p.toml", &fixed);
    let run = xp(cluster, &workspace, &["run", "p.toml"]).success();
    assert!(run.stderr.contains("1 ran, 0 cached"), "{}", run.stderr);
    assert_eq!(workspace.read("slow.txt"), "done\n");
    let leftovers = fs::read_dir(workspace.path().join("cache/slurm")).unwrap().count();
    assert_eq!(leftovers, 0, "the killed run's folder was not removed");
}

#[test]
fn missing_sbatch_is_reported() {
    let workspace = Workspace::new();
    workspace.write("p.toml", &chain("slurm_nosbatch", EXECUTOR));
    let empty = tempfile::tempdir().unwrap();
    let output = workspace.command(&["run", "p.toml"]).env("PATH", empty.path()).output().unwrap();
    let run = Run::from_output(output).expect_code(1);
    assert!(run.stderr.contains("`sbatch` not found on PATH"), "{}", run.stderr);
    assert!(!workspace.exists("a.txt"));
}

#[test]
fn user_config_sets_executor() {
    let workspace = Workspace::new();
    workspace.write(".config/xp/config.toml", "[executor]\nkind = \"slurm\"\npartition = \"p\"\n");
    workspace.write("p.toml", &format!("name = \"p\"\n{}", stage("a", "echo a > a.txt", &[], &["a.txt"])));
    // Only `sh` is on PATH: the Slurm executor fails for want of sbatch.
    let bin = workspace.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    let run = Run::from_output(workspace.command(&["run", "p.toml"]).env("PATH", &bin).output().unwrap());
    let run = run.expect_code(1);
    assert!(run.stderr.contains("`sbatch` not found on PATH"), "{}", run.stderr);

    // The pipeline's table overrides the user configuration.
    let text = workspace.read("p.toml").replace("name = \"p\"\n", "name = \"p\"\n[executor]\nkind = \"local\"\n");
    workspace.write("p.toml", &text);
    let run = Run::from_output(workspace.command(&["run", "p.toml"]).env("PATH", &bin).output().unwrap());
    run.success();
    assert_eq!(workspace.read("a.txt"), "a\n");

    workspace.write(".config/xp/config.toml", "[executor]\npartiton = \"p\"\n");
    let run = workspace.xp(&["run", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("config.toml:2:1"), "{}", run.stderr);
    assert!(run.stderr.contains("unknown key `partiton`"), "{}", run.stderr);
}

#[test]
fn executor_table_errors_are_located() {
    let cases = [
        ("[executor]\nkind = \"slurn\"\n", "p.toml:3:8", "unknown executor `slurn`"),
        ("[executor]\ntime = \"1 hour\"\n", "p.toml:3:8", "invalid Slurm time limit `1 hour`"),
        ("[executor]\nstart_timeout = -1\n", "p.toml:3:17", "`start_timeout` must be a positive number of seconds"),
        ("[executor]\npartiton = \"x\"\n", "p.toml:3:1", "unknown key `partiton`"),
    ];
    for (table, location, message) in cases {
        let workspace = Workspace::new();
        workspace.write("p.toml", &format!("name = \"p\"\n{table}{}", stage("a", "true", &[], &[])));
        let run = workspace.xp(&["run", "p.toml"]).expect_code(2);
        assert!(run.stderr.contains(location), "{table}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{table}: {}", run.stderr);
    }
    let workspace = Workspace::new();
    let text = format!("name = \"p\"\n{}", stage("a", "true", &[], &[])).replace("kind = ", "memory = \"4X\"\nkind = ");
    workspace.write("p.toml", &text);
    let run = workspace.xp(&["run", "p.toml"]).expect_code(2);
    assert!(run.stderr.contains("p.toml:3:10"), "{}", run.stderr);
    assert!(run.stderr.contains("invalid `memory` value"), "{}", run.stderr);
}
