//! `xp worker JOB_FILE`: the program a Slurm job runs on its node. It runs one
//! stage with its output in the job's output file (the stage log), stores the
//! declared outputs as objects, and writes a [`JobResult`] for the
//! coordinating `xp run`. It never opens the cache index.
//!
//! A watchdog thread stops the stage and exits when the coordinator is gone.
//! When the coordinator ran on this host, that is as soon as its process has
//! ended. Otherwise it is when the heartbeat file is missing or has not
//! changed for the coordinator's timeout.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::job::{self, Coordinator, JobResult, WorkerJob};
use crate::cache::{store_output, ObjectStore};
use crate::exec::executor::ResultManifest;
use crate::exec::process;
use crate::exec::worker::{hostname, unix_ms};
use crate::stages;

/// Exit status of a worker that stopped because its coordinator is gone.
const COORDINATOR_GONE: i32 = 75;

/// Runs the job in `job_path`; returns the process exit status.
pub fn run(job_path: &Path) -> u8 {
    let job = match WorkerJob::read(job_path) {
        Ok(job) => job,
        Err(err) => {
            eprintln!("xp worker: {err:#}");
            return 2;
        }
    };
    let coordinator = job.coordinator.clone();
    if let Some(problem) = coordinator_gone(&coordinator, &mut Heartbeat::default()) {
        eprintln!("xp worker: not running stage `{}`: {problem}", job.stage);
        return COORDINATOR_GONE as u8;
    }
    std::thread::spawn(move || watch(&coordinator));
    let result = match run_stage(&job, job_path) {
        Ok(manifest) => JobResult::Stored(manifest),
        Err(err) => {
            eprintln!("xp worker: stage `{}` failed: {err:#}", job.stage);
            JobResult::Failed(format!("{err:#}"))
        }
    };
    let failed = matches!(result, JobResult::Failed(_));
    if let Err(err) = job::write_atomically(&job.result, &result) {
        eprintln!("xp worker: {err:#}");
        return 1;
    }
    u8::from(failed)
}

/// Runs the stage, checks its declared outputs and stores them as objects.
fn run_stage(job: &WorkerJob, job_path: &Path) -> Result<ResultManifest> {
    let started_unix_ms = unix_ms();
    let started = Instant::now();
    let command = match (&job.command, &job.builtin) {
        (Some(script), _) => stages::shell::command(&job.stage, script, job.threads, &job.env, &job.workspace),
        (None, Some(builtin)) => {
            let torch_job = job_path.with_extension("torch.json");
            builtin.write(&torch_job)?;
            stages::builtin_command(builtin, &torch_job, &job.env)?
        }
        (None, None) => bail!("job file for stage `{}` has neither a command nor a built-in job", job.stage),
    };
    // The job's stdout is the stage log, which Slurm opened for this process.
    let log = std::io::stdout().as_fd().try_clone_to_owned().context("failed to duplicate stdout")?;
    process::run_logged(command, File::from(log))?;

    let duration_ms = started.elapsed().as_millis() as u64;
    for output in &job.outputs {
        if !job.workspace.join(output).exists() {
            bail!("stage finished but did not write its declared output `{output}`");
        }
    }

    let objects = ObjectStore::open(&job.cache)?;
    let mut outputs = BTreeMap::new();
    for output in &job.outputs {
        let artifact = store_output(&objects, &job.workspace.join(output), |_, _, _| Ok(()))?;
        outputs.insert(output.clone(), artifact);
    }
    Ok(ResultManifest {
        stage: job.stage.clone(),
        key: job.key.clone(),
        outputs,
        host: hostname(),
        started_unix_ms,
        duration_ms,
    })
}

/// The last heartbeat content seen and when it changed.
#[derive(Default)]
struct Heartbeat {
    content: Option<String>,
    changed: Option<Instant>,
}

/// Checks the coordinator every second; when it is gone, stops the stage
/// and exits.
fn watch(coordinator: &Coordinator) {
    let mut heartbeat = Heartbeat::default();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(problem) = coordinator_gone(coordinator, &mut heartbeat) {
            eprintln!("xp worker: stopping the stage: {problem}");
            process::terminate_all(Duration::from_secs(2));
            std::process::exit(COORDINATOR_GONE);
        }
    }
}

/// Returns why the coordinator counts as gone, or `None` while it runs.
fn coordinator_gone(coordinator: &Coordinator, heartbeat: &mut Heartbeat) -> Option<String> {
    let coordinator_name = format!("the coordinating `xp run` (pid {} on {})", coordinator.pid, coordinator.host);
    if coordinator.host == hostname() && coordinator.start_ticks.is_some() {
        let now = job::process_start_ticks(coordinator.pid);
        if now != coordinator.start_ticks {
            return Some(format!("{coordinator_name} has exited"));
        }
    }
    let content = match fs::read_to_string(&coordinator.heartbeat) {
        Ok(content) => content,
        Err(err) => return Some(format!("{coordinator_name} is gone: heartbeat file `{}`: {err}", coordinator.heartbeat.display())),
    };
    let now = Instant::now();
    if heartbeat.content.as_deref() != Some(content.as_str()) {
        heartbeat.content = Some(content);
        heartbeat.changed = Some(now);
        return None;
    }
    let unchanged = now - heartbeat.changed.unwrap_or(now);
    let limit = Duration::from_millis(coordinator.timeout_ms);
    (unchanged > limit).then(|| format!("{coordinator_name} wrote no heartbeat for {:.0}s", unchanged.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator(host: String, pid: u32, heartbeat: &Path) -> Coordinator {
        Coordinator {
            host,
            pid,
            start_ticks: job::process_start_ticks(pid),
            heartbeat: heartbeat.to_path_buf(),
            timeout_ms: 300,
        }
    }

    #[test]
    fn stale_heartbeat_means_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat");
        fs::write(&path, "1").unwrap();
        // On another host only the heartbeat counts.
        let watched = coordinator("elsewhere".into(), std::process::id(), &path);
        let mut heartbeat = Heartbeat::default();
        assert_eq!(coordinator_gone(&watched, &mut heartbeat), None);
        std::thread::sleep(Duration::from_millis(200));
        fs::write(&path, "2").unwrap();
        assert_eq!(coordinator_gone(&watched, &mut heartbeat), None);
        std::thread::sleep(Duration::from_millis(400));
        let problem = coordinator_gone(&watched, &mut heartbeat).expect("a stale heartbeat");
        assert!(problem.contains("wrote no heartbeat"), "{problem}");
        fs::remove_file(&path).unwrap();
        let problem = coordinator_gone(&watched, &mut Heartbeat::default()).expect("a missing heartbeat");
        assert!(problem.contains("is gone: heartbeat file"), "{problem}");
    }

    #[test]
    fn exited_process_on_this_host_means_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heartbeat");
        fs::write(&path, "1").unwrap();
        let alive = coordinator(hostname(), std::process::id(), &path);
        assert_eq!(coordinator_gone(&alive, &mut Heartbeat::default()), None);

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let mut exited = coordinator(hostname(), child.id(), &path);
        child.wait().unwrap();
        // The start time recorded while it ran no longer matches anything.
        exited.start_ticks = exited.start_ticks.or(Some(1));
        let problem = coordinator_gone(&exited, &mut Heartbeat::default()).expect("an exited process");
        assert!(problem.contains("has exited"), "{problem}");
    }
}
