//! A real single-node Slurm cluster for tests and benchmarks: munged,
//! slurmctld and slurmd from Debian's `munge` and `slurm-wlm` packages. They
//! start once per process, with their own configuration, sockets, ports and
//! state under a temporary folder, and stop when the process exits.
//!
//! The packages are installed with apt-get when missing. That and starting
//! the daemons need root; without root, or when the installation fails,
//! [`cluster`] prints why the caller is skipped and returns `None`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The running test cluster.
pub struct Cluster {
    dir: PathBuf,
    /// The `slurm.conf` that clients need in `SLURM_CONF`.
    pub conf: PathBuf,
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
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    match CLUSTER.get_or_init(start_cluster) {
        Ok(cluster) => Some(cluster),
        Err(NoCluster::Skip(reason)) => {
            eprintln!("skipping `{test}`: {reason}");
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

    /// Returns the configuration of a one-node cluster on 127.0.0.1, with
    /// ports that no other Slurm uses. `batch_sched_delay=0` starts a batch
    /// job as soon as it is submitted, because Slurm 22.05's default of 3 s
    /// added up to 3 s to every job.
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
             SchedulerParameters=batch_sched_delay=0\n\
             KillWait=5\n\
             MinJobAge=600\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1024 State=UNKNOWN\n\
             PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            socket = munge_socket.display(),
        ))
    }

    /// Builds a Slurm client command that talks to this cluster.
    pub fn client(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        command
    }

    /// Lists `(job name, state)` of every job that slurmctld still lists and
    /// whose name starts with `xp:PIPELINE/`, ended ones included.
    pub fn jobs_of(&self, pipeline: &str) -> Vec<(String, String)> {
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

    /// Returns the CPUs and memory that Slurm allocated to the job named `name`.
    pub fn resources_of(&self, name: &str) -> (String, String) {
        let output = self
            .client("squeue")
            .args(["--noheader", "--states=all", "--format=%j|%C|%m"])
            .output()
            .expect("run squeue");
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().find(|line| line.split('|').next() == Some(name));
        let fields: Vec<&str> = line.unwrap_or_else(|| panic!("job {name} not found in:\n{text}")).split('|').collect();
        (fields[1].to_string(), fields[2].trim().to_string())
    }

    /// Lists the jobs of `pipeline` that are pending, running or completing,
    /// as plain `squeue` shows them.
    pub fn active_jobs_of(&self, pipeline: &str) -> Vec<(String, String)> {
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
