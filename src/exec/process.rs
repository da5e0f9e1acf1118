//! Child processes for stages: each runs in its own process group, with its
//! stdout and stderr in the stage's log file.
//!
//! The process group lets cancellation signal everything a stage started. The
//! child's parent-death signal is SIGKILL, so a killed `xp` does not leave it
//! running. Linux sends that signal when the spawning thread exits, and the
//! scheduler's pool threads outlive every stage they start. Processes that the
//! child starts in turn are found and killed by the next `xp` through their
//! `XP_RUN_ID` (see `cache::orphans`).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Process groups of the stages now running.
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// The way a stage's process ended, other than by success.
#[derive(Debug, thiserror::Error)]
pub enum ProcessFailure {
    #[error("command exited with status {0}")]
    Exit(i32),
    #[error("command was killed by signal {0}")]
    Signal(i32),
}

/// Runs `command` to completion with its output in `log`. When it started but
/// failed, the `Err` contains a [`ProcessFailure`].
pub fn run(command: Command, log: &Path) -> Result<()> {
    let out = File::create(log)
        .with_context(|| format!("failed to create the log file `{}`", log.display()))?;
    run_logged(command, out)
}

/// Runs `command` to completion with its stdout and stderr going to `out`,
/// an open file. Failures are reported as by [`run`].
pub fn run_logged(mut command: Command, out: File) -> Result<()> {
    let err = out.try_clone().context("failed to duplicate the log file handle")?;
    command.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    // Marks every process the stage starts, so that the next xp can find
    // those a killed xp left behind.
    command.env(crate::cache::RUN_ID_VARIABLE, crate::cache::run_id());
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
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().with_context(|| format!("failed to start `{program}`"))?;
    let group = child.id() as i32;
    with_running(|running| running.insert(group));
    let status = child.wait();
    with_running(|running| running.remove(&group));
    let status = status.with_context(|| format!("failed to wait for `{program}`"))?;
    match (status.success(), status.code(), status.signal()) {
        (true, _, _) => Ok(()),
        (false, Some(code), _) => Err(ProcessFailure::Exit(code).into()),
        (false, None, Some(signal)) => Err(ProcessFailure::Signal(signal).into()),
        (false, None, None) => Err(ProcessFailure::Exit(-1).into()),
    }
}

fn with_running<T>(f: impl FnOnce(&mut HashSet<i32>) -> T) -> T {
    let mut guard = RUNNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashSet::new))
}

/// Sends SIGTERM to every running stage's process group, then SIGKILL to
/// those still alive after `grace`.
pub fn terminate_all(grace: Duration) {
    let groups: Vec<i32> = with_running(|running| running.iter().copied().collect());
    for &group in &groups {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-group, libc::SIGTERM) };
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
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
