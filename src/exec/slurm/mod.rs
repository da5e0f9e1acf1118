//! The Slurm executor: each stage that runs becomes one batch job, which runs
//! `xp worker JOB_FILE` on a node. The workspace and the cache must be on a
//! filesystem that the nodes share, at the same paths.
//!
//! The worker runs the stage, stores its outputs as objects and writes a
//! result manifest. Only the coordinating `xp run` opens the index. It records
//! a result after checking the manifest against the workspace (see
//! `Worker::adopt`). The scheduler stays in `xp run`: it submits a stage
//! when its dependencies have settled, so caching and early cutoff work as
//! with the local executor, and a run with everything cached submits nothing.
//!
//! A finished job is noticed by its result file, checked every 100 ms. Every
//! `poll_interval`, one `squeue` call covers all jobs. It finds jobs that
//! ended without a result (cancelled, timed out, out of memory, node
//! failure) and jobs that wait too long to start.
//!
//! No job outlives its coordinator for long: on Ctrl-C, a stage failure with
//! nothing left to run, or any other exit, `xp run` cancels its jobs. When it
//! is killed (SIGKILL), each running job notices within `coordinator_timeout`
//! that the heartbeat file stopped changing, or at once when it runs on the
//! coordinator's host and the coordinator's pid is gone, and stops itself. A
//! job that starts later finds the heartbeat missing or stale, and the next
//! `xp run` on the cache cancels every job listed by a previous run.

mod job;
mod queue;
pub mod remote;

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use self::job::{Coordinator, JobResult, WorkerJob};
use self::queue::JobState;
use super::executor::{stage_job, Executor, Produced, Task};
use crate::spec::{ExecutorSettings, Stage};

/// How often a waiting stage checks for its job's result file.
const RESULT_CHECK: Duration = Duration::from_millis(100);
/// Default time between two `squeue` calls.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default time a job waits for a heartbeat change before it stops itself.
const DEFAULT_COORDINATOR_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a cancelled job may take to leave the queue before xp stops waiting.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

pub struct SlurmExecutor {
    settings: ExecutorSettings,
    poll_interval: Duration,
    /// The running `xp` binary, which jobs run as `xp worker`.
    xp: PathBuf,
    cache: PathBuf,
    /// This run's folder under `CACHE/slurm/`.
    run_dir: PathBuf,
    distdir: Option<PathBuf>,
    coordinator: Coordinator,
    jobs: Mutex<HashMap<u64, Tracked>>,
    /// Serialises `squeue` calls; the one caller that gets it refreshes every job.
    poll: Mutex<Instant>,
    cancelled: AtomicBool,
    next_job: AtomicU64,
    submitted: AtomicUsize,
    heartbeat: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

/// A submitted job as the coordinator follows it.
struct Tracked {
    stage: String,
    submitted: Instant,
    /// The latest state `squeue` printed; `None` before the first poll
    /// after submission, or when Slurm no longer lists the job.
    state: Option<JobState>,
    /// Whether a poll has listed the job since its submission.
    seen: bool,
    /// Whether the worker's result was read, so the job needs no cancelling.
    done: bool,
}

impl SlurmExecutor {
    /// Prepares the run's folder under `cache/slurm/` and starts the
    /// heartbeat. First cancels the jobs a killed earlier run left; the
    /// caller must hold the cache lock, so no other run is using them.
    pub fn start(settings: &ExecutorSettings, cache: &Path, distdir: Option<PathBuf>) -> Result<Self> {
        queue::check_installed("sbatch")?;
        let slurm_dir = cache.join("slurm");
        cancel_leftovers(&slurm_dir)?;

        let pid = std::process::id();
        let run_dir = slurm_dir.join(format!("run-{pid}-{}", super::worker::unix_ms()));
        fs::create_dir_all(&run_dir).with_context(|| format!("failed to create `{}`", run_dir.display()))?;
        let heartbeat_path = run_dir.join("heartbeat");
        let (stop, handle) = start_heartbeat(&heartbeat_path)?;

        let timeout = settings.coordinator_timeout.unwrap_or(DEFAULT_COORDINATOR_TIMEOUT);
        let coordinator = Coordinator {
            host: super::worker::hostname(),
            pid,
            start_ticks: job::process_start_ticks(pid),
            heartbeat: heartbeat_path,
            timeout_ms: timeout.as_millis() as u64,
        };
        let xp = std::env::current_exe().context("failed to locate the running `xp`")?;
        Ok(SlurmExecutor {
            settings: settings.clone(),
            poll_interval: settings.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL),
            xp,
            cache: cache.to_path_buf(),
            run_dir,
            distdir,
            coordinator,
            jobs: Mutex::new(HashMap::new()),
            poll: Mutex::new(Instant::now()),
            cancelled: AtomicBool::new(false),
            next_job: AtomicU64::new(1),
            submitted: AtomicUsize::new(0),
            heartbeat: Some((stop, handle)),
        })
    }

    /// Writes the job file and submits the job; returns its id and result path.
    fn submit(&self, task: &Task) -> Result<(u64, PathBuf)> {
        let stage = task.stage;
        let n = self.next_job.fetch_add(1, Ordering::Relaxed);
        let job_path = self.run_dir.join(format!("{n}.job.json"));
        let result = self.run_dir.join(format!("{n}.result.json"));
        let builtin = (stage.kind != "shell").then(|| stage_job(task, self.distdir.clone()));
        let job = WorkerJob {
            stage: stage.id.clone(),
            key: task.key.to_string(),
            command: stage.command.clone(),
            builtin,
            env: stage.env.clone(),
            threads: stage.threads,
            workspace: task.workspace.to_path_buf(),
            outputs: stage.outputs.iter().map(|o| o.value.clone()).collect(),
            cache: self.cache.clone(),
            result: result.clone(),
            coordinator: self.coordinator.clone(),
        };
        job::write_atomically(&job_path, &job)?;

        let args = self.sbatch_args(stage, task.workspace, task.log);
        let script = format!(
            "#!/bin/sh\nexec {} worker {}\n",
            shell_quote(&self.xp.to_string_lossy()),
            shell_quote(&job_path.to_string_lossy())
        );
        let id = queue::submit(&args, &script)?;

        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.record_job_id(id);
        tracing::debug!(stage = %stage.id, job = id, "submitted Slurm job");
        let tracked = Tracked { stage: stage.id.clone(), submitted: Instant::now(), state: None, seen: false, done: false };
        self.lock_jobs().insert(id, tracked);
        Ok((id, result))
    }

    fn sbatch_args(&self, stage: &Stage, workspace: &Path, log: &Path) -> Vec<String> {
        let mut args = vec![
            format!("--job-name=xp:{}", stage.id),
            // sbatch expands `%` patterns in file names; `%%` is a literal `%`.
            format!("--output={}", log.to_string_lossy().replace('%', "%%")),
            format!("--chdir={}", workspace.display()),
            "--nodes=1".to_string(),
            "--ntasks=1".to_string(),
            format!("--cpus-per-task={}", stage.threads),
            // A requeued job would run the stage again behind xp's back.
            "--no-requeue".to_string(),
        ];
        if let Some(mib) = stage.memory_mib {
            args.push(format!("--mem={mib}M"));
        }
        let settings = &self.settings;
        let optional = [("partition", &settings.partition), ("account", &settings.account), ("time", &settings.time)];
        for (name, value) in optional {
            if let Some(value) = value {
                args.push(format!("--{name}={value}"));
            }
        }
        args.extend(settings.sbatch_args.iter().cloned());
        args
    }

    /// Appends a job id to the run's `jobs` file. A failure is only logged:
    /// the file matters only if this process is killed.
    fn record_job_id(&self, id: u64) {
        let path = self.run_dir.join("jobs");
        let written = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{id}"));
        if let Err(err) = written {
            tracing::warn!(job = id, error = %err, "failed to record a Slurm job id in `{}`", path.display());
        }
    }

    fn lock_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Tracked>> {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `squeue` for every job not yet settled, unless another thread
    /// is doing so or did so less than `poll_interval` ago.
    fn refresh(&self) {
        let Ok(mut last) = self.poll.try_lock() else { return };
        if last.elapsed() < self.poll_interval {
            return;
        }
        let ids: Vec<u64> = self.lock_jobs().iter().filter(|(_, job)| !is_settled(job)).map(|(id, _)| *id).collect();
        match queue::states(&ids) {
            Ok(mut states) => {
                let mut jobs = self.lock_jobs();
                for id in ids {
                    if let Some(job) = jobs.get_mut(&id) {
                        job.state = states.remove(&id);
                        job.seen |= job.state.is_some();
                    }
                }
            }
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "failed to read the Slurm queue"),
        }
        *last = Instant::now();
    }

    /// Waits until job `id` writes its result or ends without one.
    fn wait(&self, id: u64, result_path: &Path) -> Result<Produced> {
        loop {
            if let Some(result) = job::read_result(result_path)? {
                self.lock_jobs().get_mut(&id).map(|job| job.done = true);
                return match result {
                    JobResult::Stored(manifest) => Ok(Produced::Stored(manifest)),
                    JobResult::Failed(message) => Err(anyhow!(message)),
                };
            }
            if self.cancelled.load(Ordering::SeqCst) {
                // `cancel_all` may have run between this job's submission and
                // its registration, so cancel it here as well.
                if let Err(err) = queue::cancel(&[id]) {
                    tracing::warn!(job = id, error = %format!("{err:#}"), "failed to cancel a Slurm job");
                }
                self.wait_until_gone(id);
                bail!("Slurm job {id} was cancelled");
            }
            self.refresh();
            let (state, seen, waited) = {
                let jobs = self.lock_jobs();
                let job = jobs.get(&id).expect("a job is tracked until its stage settles");
                (job.state.clone(), job.seen, job.submitted.elapsed())
            };
            match state {
                Some(state) if state.is_final() => return self.ended_without_result(id, result_path, &state.describe()),
                Some(state) if state.is_pending() => {
                    if let Some(limit) = self.settings.start_timeout.filter(|limit| waited > *limit) {
                        queue::cancel(&[id])?;
                        self.wait_until_gone(id);
                        bail!(
                            "Slurm job {id} did not start within {:.0}s (state {}); it was cancelled",
                            limit.as_secs_f64(),
                            state.describe()
                        );
                    }
                }
                // Slurm forgot the job: it ended long ago, or slurmctld lost it.
                None if seen => {
                    let state = queue::accounted_state(id).unwrap_or_else(|| "no longer listed by squeue".into());
                    return self.ended_without_result(id, result_path, &state);
                }
                _ => {}
            }
            std::thread::sleep(RESULT_CHECK);
        }
    }

    /// Reports a job that `squeue` lists as ended. Its result may have
    /// appeared since the last check.
    fn ended_without_result(&self, id: u64, result_path: &Path, state: &str) -> Result<Produced> {
        if job::read_result(result_path)?.is_some() {
            return self.wait(id, result_path);
        }
        self.lock_jobs().get_mut(&id).map(|job| job.done = true);
        bail!("Slurm job {id} ended with state {state} before writing its result")
    }

    /// Waits, at most [`CANCEL_WAIT`], until Slurm lists job `id` as ended,
    /// so that no process of it still writes to the workspace.
    fn wait_until_gone(&self, id: u64) {
        let deadline = Instant::now() + CANCEL_WAIT;
        while Instant::now() < deadline {
            match queue::states(&[id]) {
                Ok(states) => match states.get(&id) {
                    Some(state) if !state.is_final() => {}
                    _ => break,
                },
                Err(err) => {
                    tracing::warn!(job = id, error = %format!("{err:#}"), "failed to read the Slurm queue");
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.lock_jobs().get_mut(&id).map(|job| job.done = true);
    }

    /// Cancels every job whose result has not been read.
    fn cancel_unsettled(&self) {
        let ids: Vec<u64> = self.lock_jobs().iter().filter(|(_, job)| !job.done).map(|(id, _)| *id).collect();
        if ids.is_empty() {
            return;
        }
        let stages: Vec<String> = self.lock_jobs().values().filter(|job| !job.done).map(|job| job.stage.clone()).collect();
        tracing::debug!(?ids, ?stages, "cancelling Slurm jobs");
        if let Err(err) = queue::cancel(&ids) {
            tracing::warn!(?ids, error = %format!("{err:#}"), "failed to cancel Slurm jobs");
        }
    }
}

impl Executor for SlurmExecutor {
    fn execute(&self, task: &Task) -> Result<Produced> {
        if self.cancelled.load(Ordering::SeqCst) {
            bail!("not submitted: the run was interrupted");
        }
        let (id, result_path) = self.submit(task)?;
        self.wait(id, &result_path)
    }

    fn cancel_all(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel_unsettled();
    }

    /// Returns 1 for every stage: `--jobs` limits the jobs in the queue at
    /// once, and Slurm allocates each job's CPUs.
    fn slots(&self, _stage: &Stage) -> usize {
        1
    }

    fn summary(&self) -> Option<String> {
        let count = self.submitted.load(Ordering::Relaxed);
        Some(format!("submitted {count} Slurm job{}", if count == 1 { "" } else { "s" }))
    }
}

impl Drop for SlurmExecutor {
    fn drop(&mut self) {
        self.cancel_unsettled();
        if let Some((stop, handle)) = self.heartbeat.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
        if let Err(err) = fs::remove_dir_all(&self.run_dir) {
            tracing::warn!(error = %err, "failed to remove `{}`", self.run_dir.display());
        }
    }
}

fn is_settled(job: &Tracked) -> bool {
    job.done || job.state.as_ref().is_some_and(JobState::is_final)
}

/// Writes an increasing counter to `path` every second until stopped.
fn start_heartbeat(path: &Path) -> Result<(Arc<AtomicBool>, JoinHandle<()>)> {
    job::write_atomically(path, &0u64)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, path) = (Arc::clone(&stop), path.to_path_buf());
    let handle = std::thread::Builder::new()
        .name("xp-heartbeat".into())
        .spawn(move || {
            let mut beat = 0u64;
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(250));
                beat += 1;
                if beat % 4 == 0 {
                    if let Err(err) = job::write_atomically(&path, &(beat / 4)) {
                        tracing::warn!(error = %format!("{err:#}"), "failed to write the heartbeat file");
                    }
                }
            }
        })
        .context("failed to start the heartbeat thread")?;
    Ok((stop, handle))
}

/// Cancels the jobs that earlier runs recorded in `slurm_dir` and removes
/// their folders. Those runs were killed: a run that ends removes its folder.
fn cancel_leftovers(slurm_dir: &Path) -> Result<()> {
    let Ok(listing) = fs::read_dir(slurm_dir) else { return Ok(()) };
    for entry in listing.flatten() {
        let folder = entry.path();
        let ids: Vec<u64> = fs::read_to_string(folder.join("jobs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        if !ids.is_empty() {
            tracing::info!(?ids, "cancelling Slurm jobs left by an earlier run that was killed");
            let still_known: Vec<u64> = queue::states(&ids)?
                .into_iter()
                .filter(|(_, state)| !state.is_final())
                .map(|(id, _)| id)
                .collect();
            queue::cancel(&still_known)?;
        }
        fs::remove_dir_all(&folder).with_context(|| format!("failed to remove `{}`", folder.display()))?;
    }
    Ok(())
}

/// Quotes `text` as one `sh` word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quote_single_quotes() {
        assert_eq!(shell_quote("/a b/xp"), "'/a b/xp'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
