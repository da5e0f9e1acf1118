//! The `shell` stage kind: runs the stage's command with `sh -c` in the
//! workspace, its stdout and stderr going to the stage's log file.
//!
//! The command runs in its own process group so that cancelling a stage can
//! signal everything the command started. Its parent-death signal is SIGKILL,
//! so a killed `xp` does not leave the shell running; processes the command
//! starts in the background are not covered by that signal.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

/// Process groups of the commands now running.
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// What a shell stage needs to run.
pub struct ShellJob<'a> {
    pub stage_id: &'a str,
    pub command: &'a str,
    pub workspace: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub threads: usize,
    pub log: &'a Path,
}

/// How a command ended, other than by success.
#[derive(Debug, thiserror::Error)]
pub enum ShellFailure {
    #[error("command exited with status {0}")]
    Exit(i32),
    #[error("command was killed by signal {0}")]
    Signal(i32),
}

/// Runs the command to completion; `Err` holds a [`ShellFailure`] when it ran but failed.
pub fn run(job: &ShellJob) -> Result<()> {
    let log = File::create(job.log)
        .with_context(|| format!("failed to create the log file `{}`", job.log.display()))?;
    let stderr = log.try_clone().context("failed to duplicate the log file handle")?;
    let threads = job.threads.to_string();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(job.command)
        .current_dir(job.workspace)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .env("XP_STAGE", job.stage_id)
        .env("XP_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .envs(job.env)
        .process_group(0);
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let mut child = command.spawn().context("failed to start `sh`")?;
    let group = child.id() as i32;
    with_running(|running| running.insert(group));
    let status = child.wait();
    with_running(|running| running.remove(&group));
    let status = status.context("failed to wait for the command")?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Err(ShellFailure::Exit(code).into()),
        (None, Some(signal)) => Err(ShellFailure::Signal(signal).into()),
        (None, None) => Err(ShellFailure::Exit(-1).into()),
    }
}

fn with_running<T>(f: impl FnOnce(&mut HashSet<i32>) -> T) -> T {
    let mut guard = RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashSet::new))
}

/// Sends SIGTERM to every running command's process group, then SIGKILL to
/// those still alive after `grace`.
pub fn terminate_all(grace: Duration) {
    let groups: Vec<i32> = with_running(|running| running.iter().copied().collect());
    for &group in &groups {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-group, libc::SIGTERM) };
    }
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if with_running(|running| running.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for group in with_running(|running| running.iter().copied().collect::<Vec<_>>()) {
        // SAFETY: as above.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}
