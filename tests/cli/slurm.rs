//! The Slurm executor against a real single-node cluster: munged, slurmctld
//! and slurmd from Debian's `munge` and `slurm-wlm` packages, started once per
//! test binary with their own configuration, sockets, ports and state under a
//! temporary folder, and stopped when the binary exits.
//!
//! The fixture installs the packages with apt-get when they are missing. It
//! needs root for that and to start the daemons; without root, or when the
//! installation fails, each test prints why it is skipped and returns.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{finish, stage, Run, Workspace};

/// The running test cluster.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

/// Why the fixture has no cluster.
enum NoCluster {
    /// The environment cannot run one (not root, packages not installable).
    Skip(String),
    /// The packages are there but the daemons did not come up: a real failure.
    Broken(String),
}

static CLUSTER: OnceLock<Result<Cluster, NoCluster>> = OnceLock::new();

/// Returns the cluster, starting it on first use; `None` after printing why
/// the calling test is skipped.
fn cluster(test: &str) -> Option<&'static Cluster> {
    match CLUSTER.get_or_init(start_cluster) {
        Ok(cluster) => Some(cluster),
        Err(NoCluster::Skip(reason)) => {
            eprintln!("skipping Slurm test `{test}`: {reason}");
            None
        }
        Err(NoCluster::Broken(problem)) => panic!("the test Slurm cluster did not start: {problem}"),
    }
}

const DAEMONS: [&str; 3] = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd"];
const CLIENTS: [&str; 4] = ["/usr/bin/sbatch", "/usr/bin/squeue", "/usr/bin/scancel", "/usr/bin/sinfo"];

fn start_cluster() -> Result<Cluster, NoCluster> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(NoCluster::Skip("installing and starting Slurm needs root".into()));
    }
    let installed = || DAEMONS.iter().chain(&CLIENTS).all(|path| Path::new(path).exists());
    if !installed() {
        install_packages().map_err(NoCluster::Skip)?;
        if !installed() {
            return Err(NoCluster::Skip("apt-get installed slurm-wlm and munge, but a program is missing".into()));
        }
    }
    let dir = std::env::temp_dir().join(format!("xp-slurm-test-{}", std::process::id()));
    let broken = |what: &str, err: &dyn std::fmt::Display| NoCluster::Broken(format!("{what}: {err}"));
    let _ = fs::remove_dir_all(&dir);
    for sub in ["munge", "spool", "state", "log"] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| broken("create the cluster folder", &e))?;
    }
    // munged checks that every folder on the way to its socket is reachable by all.
    for folder in [dir.clone(), dir.join("munge")] {
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).map_err(|e| broken("chmod", &e))?;
    }
    run_checked(Command::new("chown").args(["munge:munge"]).arg(dir.join("munge")))
        .map_err(|e| broken("chown the munge folder", &e))?;
    let cluster = Cluster { conf: dir.join("slurm.conf"), dir };
    register_stop();
    cluster.start_daemons().map_err(|problem| NoCluster::Broken(format!("{problem}\n{}", cluster.logs())))?;
    Ok(cluster)
}

/// Installs the packages with apt-get, updating the package lists once if the
/// first attempt fails; returns the reason on failure.
fn install_packages() -> Result<(), String> {
    eprintln!("installing slurm-wlm and munge with apt-get (about two minutes)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "slurm-wlm", "munge"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
    };
    let mut output = install().map_err(|err| format!("apt-get could not be started: {err}"))?;
    if !output.status.success() {
        let _ = Command::new("apt-get").args(["update", "-q"]).stdin(Stdio::null()).output();
        output = install().map_err(|err| format!("apt-get could not be started: {err}"))?;
    }
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    Err(format!("`apt-get install slurm-wlm munge` failed ({}): {}", output.status, tail.join(" / ")))
}

impl Cluster {
    fn start_daemons(&self) -> Result<(), String> {
        let munge = self.dir.join("munge");
        let socket = munge.join("munge.socket");
        run_checked(
            Command::new("runuser")
                .args(["-u", "munge", "--", DAEMONS[0]])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", munge.join("munged.pid").display()))
                .arg(format!("--log-file={}", munge.join("munged.log").display()))
                .arg(format!("--seed-file={}", munge.join("munged.seed").display())),
        )?;
        fs::write(&self.conf, self.slurm_conf(&socket)?).map_err(|e| format!("write slurm.conf: {e}"))?;
        run_checked(Command::new(DAEMONS[1]).arg("-f").arg(&self.conf))?;
        run_checked(Command::new(DAEMONS[2]).arg("-f").arg(&self.conf))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = self.client("sinfo").args(["--noheader", "--format=%t"]).output();
            let states = output.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
            if states == "idle" {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("the node is not idle after 60 s (sinfo: `{states}`)"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A one-node cluster on 127.0.0.1 with ports no other Slurm uses.
    fn slurm_conf(&self, munge_socket: &Path) -> Result<String, String> {
        let host = hostname()?;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (controller_port, node_port) = (free_port()?, free_port()?);
        let dir = self.dir.display();
        Ok(format!(
            "ClusterName=xptest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={controller_port}\n\
             SlurmdPort={node_port}\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             MpiDefault=none\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             ReturnToService=2\n\
             SlurmctldPidFile={dir}/slurmctld.pid\n\
             SlurmdPidFile={dir}/slurmd.pid\n\
             SlurmdSpoolDir={dir}/spool\n\
             StateSaveLocation={dir}/state\n\
             SlurmctldLogFile={dir}/log/slurmctld.log\n\
             SlurmdLogFile={dir}/log/slurmd.log\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             KillWait=5\n\
             MinJobAge=600\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1024 State=UNKNOWN\n\
             PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            socket = munge_socket.display(),
        ))
    }

    /// A Slurm client command that talks to this cluster.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        command
    }

    /// Runs `xp ARGS` in `workspace` against this cluster.
    fn xp(&self, workspace: &Workspace, args: &[&str]) -> Run {
        let output = workspace.command(args).env("SLURM_CONF", &self.conf).output().expect("start xp");
        Run::from_output(output)
    }

    /// Lists `(job name, state)` of every job Slurm still knows whose name
    /// starts with `xp:PIPELINE/`, ended ones included.
    fn jobs_of(&self, pipeline: &str) -> Vec<(String, String)> {
        let output = self
            .client("squeue")
            .args(["--noheader", "--states=all", "--format=%j|%T"])
            .output()
            .expect("run squeue");
        assert!(output.status.success(), "squeue failed: {}", String::from_utf8_lossy(&output.stderr));
        let prefix = format!("xp:{pipeline}/");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.trim().split_once('|'))
            .filter(|(name, _)| name.starts_with(&prefix))
            .map(|(name, state)| (name.to_string(), state.to_string()))
            .collect()
    }

    /// Lists the jobs of `pipeline` that are pending, running or completing,
    /// as plain `squeue` shows them.
    fn active_jobs_of(&self, pipeline: &str) -> Vec<(String, String)> {
        let ended = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"];
        self.jobs_of(pipeline).into_iter().filter(|(_, state)| !ended.contains(&state.as_str())).collect()
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for log in ["log/slurmctld.log", "log/slurmd.log", "munge/munged.log"] {
            let content = fs::read_to_string(self.dir.join(log)).unwrap_or_default();
            let tail: Vec<&str> = content.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            text.push_str(&format!("--- {log}\n{}\n", tail.join("\n")));
        }
        text
    }
}

fn run_checked(command: &mut Command) -> Result<(), String> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!("{command:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
}

fn hostname() -> Result<String, String> {
    let output = Command::new("hostname").arg("-s").output().map_err(|e| format!("hostname -s: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Stops the daemons when the test binary exits.
fn register_stop() {
    extern "C" fn stop() {
        let dir = std::env::temp_dir().join(format!("xp-slurm-test-{}", std::process::id()));
        for pid_file in ["slurmd.pid", "slurmctld.pid", "munge/munged.pid"] {
            let Ok(text) = fs::read_to_string(dir.join(pid_file)) else { continue };
            if let Ok(pid) = text.trim().parse::<i32>() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        // The daemons remove their pid files as they exit; wait for that briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        while dir.join("slurmctld.pid").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = fs::remove_dir_all(&dir);
    }
    // SAFETY: `stop` is a plain function that stays valid until exit.
    unsafe { libc::atexit(stop) };
}

/// The `[executor]` table the tests use: quick polling, and a job stops
/// itself 5 s after the last heartbeat.
const EXECUTOR: &str = "[executor]\nkind = \"slurm\"\npoll_interval = 0.2\ncoordinator_timeout = 5\n\n";

/// A three-stage chain: `a` writes a file, `b` a folder from it, `c` sums up.
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
    let run = cluster.xp(&remote, &["run", "--executor", "slurm", "p.toml"]).success();
    assert!(run.stderr.contains("3 ran, 0 cached"), "{}", run.stderr);
    assert!(run.stderr.contains("submitted 3 Slurm jobs"), "{}", run.stderr);
    for file in ["a.txt", "b/rev.txt", "b/threads.txt", "c.txt"] {
        assert_eq!(remote.read(file), local.read(file), "{file} differs");
    }
    assert_eq!(entries(&remote), entries(&local));
    assert_eq!(remote.executions("a"), 1);
    assert!(remote.objects().len() >= 5, "{:?}", remote.objects());

    // The keys are the executor's business of neither run: a local rerun finds
    // everything cached.
    let rerun = remote.xp(&["run", "p.toml"]).success();
    assert!(rerun.stderr.contains("0 ran, 3 cached"), "{}", rerun.stderr);
    let jobs = cluster.jobs_of("slurm_chain");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
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
    let run = cluster.xp(&remote, &["run", "--executor", "slurm", "p.toml"]).success();
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
fn cached_rerun_submits_nothing() {
    let Some(cluster) = cluster("cached_rerun_submits_nothing") else { return };
    let workspace = Workspace::new();
    workspace.write("p.toml", &chain("slurm_rerun", EXECUTOR));
    cluster.xp(&workspace, &["run", "p.toml"]).success();
    let before = cluster.jobs_of("slurm_rerun");
    assert_eq!(before.len(), 3, "{before:?}");

    let rerun = cluster.xp(&workspace, &["run", "p.toml"]).success();
    assert!(rerun.stderr.contains("0 ran, 3 cached"), "{}", rerun.stderr);
    assert!(rerun.stderr.contains("submitted 0 Slurm jobs"), "{}", rerun.stderr);
    assert_eq!(cluster.jobs_of("slurm_rerun"), before);

    // A changed command reruns that stage only; the others stay cached.
    let changed = workspace.read("p.toml").replace("wc -l > c.txt", "wc -c > c.txt");
    workspace.write("p.toml", &changed);
    let run = cluster.xp(&workspace, &["run", "p.toml"]).success();
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
    let run = cluster.xp(&workspace, &["run", "p.toml"]).expect_code(1);
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
    let run = cluster.xp(&workspace, &["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("did not write its declared output `never.txt`"), "{}", run.stderr);
}

#[test]
fn rejected_submission_is_reported() {
    let Some(cluster) = cluster("rejected_submission_is_reported") else { return };
    let workspace = Workspace::new();
    let executor = EXECUTOR.replace("[executor]\n", "[executor]\npartition = \"nope\"\n");
    workspace.write("p.toml", &format!("name = \"slurm_reject\"\n{executor}{}", stage("a", "true", &[], &[])));
    let run = cluster.xp(&workspace, &["run", "p.toml"]).expect_code(1);
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
    let run = cluster.xp(&workspace, &["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("did not start within 2s"), "{}", run.stderr);
    assert!(run.stderr.contains("PENDING (BeginTime)"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(cluster.active_jobs_of("slurm_never").is_empty(), "{:?}", cluster.jobs_of("slurm_never"));
}

/// A stage that signals it started and then runs for a minute.
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
    let run = cluster.xp(&workspace, &["run", "p.toml"]).success();
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
