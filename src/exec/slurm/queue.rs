//! Slurm's client commands: `sbatch` to submit, `squeue` (and `sacct` when
//! accounting is on) to follow, `scancel` to cancel.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// A Slurm job's state as `squeue` prints it, such as `PENDING` or `TIMEOUT`,
/// and the reason it gives (`None`, `Resources`, `BeginTime`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    pub state: String,
    pub reason: String,
}

impl JobState {
    /// Returns whether the job has ended and left no process on any node.
    /// `COMPLETING` is not an end: the job's processes are still being stopped.
    pub fn is_final(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "OUT_OF_MEMORY"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "SPECIAL_EXIT"
                | "REVOKED"
        )
    }

    /// Returns whether the job is waiting for resources or its start time.
    pub fn is_pending(&self) -> bool {
        self.state == "PENDING"
    }

    pub fn describe(&self) -> String {
        if self.reason.is_empty() || self.reason == "None" {
            self.state.clone()
        } else {
            format!("{} ({})", self.state, self.reason)
        }
    }
}

/// Runs `program --version`; fails with a message naming the program when it
/// is not installed.
pub fn check_installed(program: &str) -> Result<()> {
    match Command::new(program).arg("--version").stdin(Stdio::null()).output() {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => bail!(
            "`{program}` not found on PATH; the Slurm executor needs Slurm's client commands \
             (sbatch, squeue, scancel)"
        ),
        Err(err) => Err(err).with_context(|| format!("failed to run `{program}`")),
    }
}

/// Submits a batch script with `sbatch --parsable ARGS` and returns the job id.
pub fn submit(args: &[String], script: &str) -> Result<u64> {
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| spawn_error("sbatch", err))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(script.as_bytes()).context("failed to pass the job script to `sbatch`")?;
    drop(stdin);
    let output = child.wait_with_output().context("failed to wait for `sbatch`")?;
    if !output.status.success() {
        bail!("sbatch rejected the job ({}): {}", output.status, stderr_text(&output));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let id = stdout.trim().split(';').next().unwrap_or_default();
    id.parse().with_context(|| format!("`sbatch --parsable` printed `{}`, not a job id", stdout.trim()))
}

/// Returns the states of the jobs in `ids` that slurmctld still lists. A job
/// that ended more than `MinJobAge` ago (300 s by default) is absent.
pub fn states(ids: &[u64]) -> Result<HashMap<u64, JobState>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let output = Command::new("squeue")
        .args(["--noheader", "--states=all", "--format=%i|%T|%r", "--jobs", &list])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| spawn_error("squeue", err))?;
    let stderr = stderr_text(&output);
    if !output.status.success() {
        // squeue fails this way only when it lists none of the ids.
        if stderr.contains("Invalid job id") {
            return Ok(HashMap::new());
        }
        bail!("squeue failed ({}): {stderr}", output.status);
    }
    let mut states = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut fields = line.trim().split('|');
        let (Some(id), Some(state), reason) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // An array or heterogeneous job prints `ID_N` or `ID+N`; xp submits neither.
        if let Ok(id) = id.parse() {
            let reason = reason.unwrap_or_default().to_string();
            states.insert(id, JobState { state: state.to_string(), reason });
        }
    }
    Ok(states)
}

/// Returns the final state that `sacct` recorded for job `id`, or `None`
/// when accounting is off or has no record.
pub fn accounted_state(id: u64) -> Option<String> {
    let output = Command::new("sacct")
        .args(["--noheader", "--parsable2", "--allocations", "--format=State", "--jobs", &id.to_string()])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // `CANCELLED by 0` names who cancelled; the first word is the state.
    let state = text.lines().next()?.split_whitespace().next()?.to_string();
    Some(state)
}

/// Cancels the jobs in `ids` with `scancel`.
pub fn cancel(ids: &[u64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let output = Command::new("scancel")
        .args(ids.iter().map(u64::to_string))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| spawn_error("scancel", err))?;
    let stderr = stderr_text(&output);
    // A job that ended in the meantime needs no cancelling.
    let ended = ["already completing or completed", "Invalid job id"];
    if !output.status.success() && !stderr.lines().all(|line| ended.iter().any(|e| line.contains(e))) {
        bail!("scancel failed ({}): {stderr}", output.status);
    }
    Ok(())
}

fn spawn_error(program: &str, err: std::io::Error) -> anyhow::Error {
    if err.kind() == ErrorKind::NotFound {
        anyhow::anyhow!("`{program}` not found on PATH; is Slurm installed on this host?")
    } else {
        anyhow::Error::new(err).context(format!("failed to run `{program}`"))
    }
}

fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::JobState;

    fn state(state: &str, reason: &str) -> JobState {
        JobState { state: state.into(), reason: reason.into() }
    }

    #[test]
    fn completing_is_not_final() {
        assert!(!state("COMPLETING", "None").is_final());
        assert!(!state("RUNNING", "None").is_final());
        assert!(state("CANCELLED", "None").is_final());
        assert!(state("TIMEOUT", "None").is_final());
    }

    #[test]
    fn describe_adds_reason() {
        assert_eq!(state("PENDING", "BeginTime").describe(), "PENDING (BeginTime)");
        assert_eq!(state("FAILED", "None").describe(), "FAILED");
    }
}
