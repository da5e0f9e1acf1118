//! The work a pool thread does for one stage: run it and store its outputs,
//! or copy a stored result back into the workspace.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::executor::{Executor, Produced, ResultManifest, Task};
use crate::cache::{Artifact, Cache, CorruptObject, Entry, KeyComponents};
use crate::spec::Stage;

pub enum Work {
    Run { key: String, components: Box<KeyComponents> },
    Restore { key: String, entry: Box<Entry> },
}

/// The origin of a stage's result.
pub enum How {
    Ran,
    Restored,
    /// A stored result was damaged, so the stage ran again. The text describes the damage.
    Rebuilt(String),
}

pub struct Done {
    pub key: String,
    pub entry: Entry,
    pub how: How,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub log: Option<PathBuf>,
}

pub struct Worker<'a> {
    pub cache: &'a Cache,
    pub root: &'a Path,
    pub executor: &'a dyn Executor,
}

impl Worker<'_> {
    pub fn perform(&self, stage: &Stage, upstream: &[&Stage], work: Work) -> Result<Done, Failure> {
        let _span = tracing::debug_span!("stage", id = %stage.id).entered();
        let started = Instant::now();
        let (key, entry, how) = match work {
            Work::Run { key, components } => {
                let entry = self.run(stage, upstream, &key, *components)?;
                (key, entry, How::Ran)
            }
            Work::Restore { key, entry } => match self.restore(stage, &key, &entry) {
                Ok(()) => (key, *entry, How::Restored),
                Err(err) if err.downcast_ref::<CorruptObject>().is_some() || is_missing(&err) => {
                    let problem = format!("{err:#}");
                    self.cache.index.remove(&key).map_err(plain)?;
                    let entry = self.run(stage, upstream, &key, entry.components)?;
                    (key, entry, How::Rebuilt(problem))
                }
                Err(err) => return Err(plain(err)),
            },
        };
        Ok(Done { key, entry, how, elapsed: started.elapsed() })
    }

    fn restore(&self, stage: &Stage, key: &str, entry: &Entry) -> Result<()> {
        let workspace = self.cache.workspace(self.root);
        for (path, artifact) in &entry.outputs {
            if !workspace.matches(path, artifact)? {
                workspace.restore(path, artifact)?;
            }
        }
        self.cache.index.set_latest(&stage.id, key)
    }

    /// Runs the stage and records its result; on failure removes its outputs.
    fn run(
        &self,
        stage: &Stage,
        upstream: &[&Stage],
        key: &str,
        components: KeyComponents,
    ) -> Result<Entry, Failure> {
        let log = self.cache.log_path(&stage.id);
        let started_unix_ms = unix_ms();
        let started = Instant::now();
        let task = Task { stage, upstream, workspace: self.root, log: &log, key };
        let result = self.prepare(stage, &log).and_then(|()| self.executor.execute(&task));
        let recorded = result.and_then(|produced| {
            let entry = match produced {
                Produced::InWorkspace => {
                    self.check_outputs(stage)?;
                    let run = RunFacts { started_unix_ms, elapsed: started.elapsed(), host: hostname() };
                    let outputs = self.store(stage)?;
                    self.entry(stage, components, outputs, &log, run)?
                }
                Produced::Stored(manifest) => {
                    let outputs = self.adopt(stage, key, &manifest)?;
                    let run = RunFacts {
                        started_unix_ms: manifest.started_unix_ms,
                        elapsed: Duration::from_millis(manifest.duration_ms),
                        host: manifest.host,
                    };
                    self.entry(stage, components, outputs, &log, run)?
                }
            };
            self.cache.index.record(key, &entry)?;
            Ok(entry)
        });
        recorded.map_err(|err| {
            self.remove_outputs(stage);
            Failure { message: format!("{err:#}"), log: log.exists().then_some(log) }
        })
    }

    /// Removes stale outputs, so that a declared output the command fails to
    /// write is noticed, and creates their parent folders. A built-in kind's
    /// output folder is created empty.
    fn prepare(&self, stage: &Stage, log: &Path) -> Result<()> {
        let workspace = self.cache.workspace(self.root);
        for output in &stage.outputs {
            workspace.remove(&output.value)?;
            let path = self.root.join(&output.value);
            let folder = if stage.kind == "shell" { path.parent() } else { Some(path.as_path()) };
            if let Some(folder) = folder {
                fs::create_dir_all(folder)
                    .with_context(|| format!("failed to create `{}`", folder.display()))?;
            }
        }
        let folder = log.parent().expect("log paths have a parent folder");
        fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))
    }

    fn check_outputs(&self, stage: &Stage) -> Result<()> {
        for output in &stage.outputs {
            if !self.root.join(&output.value).exists() {
                anyhow::bail!("stage finished but did not write its declared output `{}`", output.value);
            }
        }
        Ok(())
    }

    fn store(&self, stage: &Stage) -> Result<BTreeMap<String, Artifact>> {
        let workspace = self.cache.workspace(self.root);
        let mut outputs = BTreeMap::new();
        for output in &stage.outputs {
            outputs.insert(output.value.clone(), workspace.store(&output.value)?);
        }
        Ok(outputs)
    }

    /// Checks a manifest of outputs that a job stored: it must be for this
    /// key, list exactly the declared outputs, and match the workspace.
    fn adopt(&self, stage: &Stage, key: &str, manifest: &ResultManifest) -> Result<BTreeMap<String, Artifact>> {
        if manifest.key != key || manifest.stage != stage.id {
            anyhow::bail!(
                "the job's result is for stage `{}` key {}, expected `{}` key {key}",
                manifest.stage,
                manifest.key,
                stage.id
            );
        }
        let declared: Vec<&str> = stage.outputs.iter().map(|o| o.value.as_str()).collect();
        let reported: Vec<&str> = manifest.outputs.keys().map(String::as_str).collect();
        let mut sorted = declared.clone();
        sorted.sort_unstable();
        if sorted != reported {
            anyhow::bail!("the job reported outputs {reported:?}, but the stage declares {declared:?}");
        }
        let workspace = self.cache.workspace(self.root);
        for (path, artifact) in &manifest.outputs {
            workspace.adopt(path, artifact)?;
        }
        Ok(manifest.outputs.clone())
    }

    fn entry(
        &self,
        stage: &Stage,
        components: KeyComponents,
        outputs: BTreeMap<String, Artifact>,
        log: &Path,
        run: RunFacts,
    ) -> Result<Entry> {
        let log = self.cache.objects.insert_file(log)?;
        Ok(Entry {
            stage: stage.id.clone(),
            components,
            outputs,
            log: Some(log),
            started_unix_ms: run.started_unix_ms,
            duration_ms: run.elapsed.as_millis() as u64,
            host: run.host,
            xp_version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    fn remove_outputs(&self, stage: &Stage) {
        let workspace = self.cache.workspace(self.root);
        for output in &stage.outputs {
            if let Err(err) = workspace.remove(&output.value) {
                tracing::warn!(stage = %stage.id, error = %err, "failed to remove a partial output");
            }
        }
    }
}

/// When, for how long and where a stage ran.
struct RunFacts {
    started_unix_ms: u64,
    elapsed: Duration,
    host: String,
}

fn plain(err: anyhow::Error) -> Failure {
    Failure { message: format!("{err:#}"), log: None }
}

fn is_missing(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

pub(super) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "unknown".into(), |h| h.trim().into())
}
