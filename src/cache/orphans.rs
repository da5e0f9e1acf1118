//! Processes left running by an `xp` that was killed.
//!
//! A stage's direct child gets SIGKILL when `xp` dies (see `exec::process`),
//! but processes that the stage started in turn are not covered by that. So
//! every stage command runs with `XP_RUN_ID` set to an id unique to its `xp`
//! process, and while that `xp` holds the cache it keeps the file
//! `runs/ID` there, removed when it releases the cache. A file that remains
//! names a run that was killed. The next `xp` to lock the cache sends SIGKILL
//! to every process whose environment contains that `XP_RUN_ID`, then removes
//! the file. Finding processes reads `/proc/PID/environ`, which works for the
//! user's own processes on Linux; elsewhere nothing is found.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// The environment variable that marks a stage's processes with their run.
pub const RUN_ID_VARIABLE: &str = "XP_RUN_ID";

/// Returns this process's run id: its pid and start time in nanoseconds.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// The `runs/ID` file of the running `xp`; removed on drop.
pub struct RunMarker {
    path: PathBuf,
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Kills the processes of every run that left its file in `cache_root/runs`,
/// removes those files and writes this process's own. The caller must hold
/// the workspace lock, so no listed run is still alive.
pub fn reap_and_mark(cache_root: &Path) -> Result<RunMarker> {
    let runs = cache_root.join("runs");
    fs::create_dir_all(&runs).with_context(|| format!("failed to create `{}`", runs.display()))?;
    let listing = fs::read_dir(&runs).with_context(|| format!("failed to list `{}`", runs.display()))?;
    for item in listing.flatten() {
        let id = item.file_name().to_string_lossy().into_owned();
        if id != run_id() {
            let killed = kill_run(&id);
            if killed > 0 {
                tracing::warn!(run = %id, processes = killed, "killed processes left by an interrupted xp run");
            }
            let _ = fs::remove_file(item.path());
        }
    }
    let path = runs.join(run_id());
    fs::write(&path, "").with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(RunMarker { path })
}

/// Sends SIGKILL to every process whose environment has `XP_RUN_ID=id`;
/// repeats while it finds some, since one may have forked meanwhile.
/// Returns the number of processes signalled.
fn kill_run(id: &str) -> usize {
    let env_entry = format!("{RUN_ID_VARIABLE}={id}");
    let mut total = 0;
    for _ in 0..5 {
        let found = processes_with(&env_entry);
        if found.is_empty() {
            break;
        }
        for &pid in &found {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        total += found.len();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    total
}

/// Lists the pids, other than this process, whose environment contains the
/// entry `env_entry` and that are not zombies.
fn processes_with(env_entry: &str) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(listing) = fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for item in listing.flatten() {
        let Some(pid) = item.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        if pid == own {
            continue;
        }
        // Unreadable entries belong to other users or have just exited.
        let Ok(environ) = fs::read(item.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(|entry| entry == env_entry.as_bytes()) && !is_zombie(&item.path()) {
            found.push(pid);
        }
    }
    found
}

/// Returns whether `/proc/PID/stat` shows state `Z` (exited, not yet reaped).
fn is_zombie(proc_dir: &Path) -> bool {
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else { return false };
    // The state follows the command name, which is in parentheses and may contain spaces.
    stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}
