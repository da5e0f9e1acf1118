//! The description of one built-in stage run, written by `xp` as JSON and read
//! by `xp-torch stage JOB_FILE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::spec::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageJob {
    /// `pipeline/stage`.
    pub stage: String,
    pub kind: String,
    /// The workspace root; relative paths in parameters are relative to it.
    pub workspace: PathBuf,
    pub params: BTreeMap<String, Value>,
    /// The folder the stage writes everything into; it exists and is empty.
    pub output: PathBuf,
    /// The stages this one depends on, in pipeline order.
    pub upstream: Vec<Upstream>,
    /// CPU threads the stage may use.
    pub threads: usize,
    /// A local mirror searched for downloads before the network.
    pub distdir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upstream {
    pub stage: String,
    pub kind: String,
    /// Absolute paths of the upstream stage's outputs.
    pub outputs: Vec<PathBuf>,
}

impl StageJob {
    /// Writes the job as JSON to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("failed to encode the job file")?;
        std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
    }

    pub fn read(path: &Path) -> Result<StageJob> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the job file `{}`", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("job file `{}` is invalid", path.display()))
    }

    /// Returns the single output folder of the one upstream stage of `kind`.
    pub fn upstream_of_kind(&self, kind: &str) -> Result<&Path> {
        let matching: Vec<&Upstream> = self.upstream.iter().filter(|u| u.kind == kind).collect();
        match matching.as_slice() {
            [one] => match one.outputs.as_slice() {
                [path] => Ok(path),
                _ => bail!("stage `{}` must have exactly one output", one.stage),
            },
            [] => bail!("stage `{}` needs a `{kind}` stage upstream", self.stage),
            _ => bail!("stage `{}` has more than one `{kind}` stage upstream", self.stage),
        }
    }

    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    /// Returns an integer parameter, or `default` when the stage does not set it.
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        match self.params.get(name) {
            None => Ok(default),
            Some(Value::Int(i)) => Ok(*i),
            Some(other) => bail!("parameter `{name}` of stage `{}` must be an int, not `{other}`", self.stage),
        }
    }

    /// Returns a float parameter (an int is accepted), or `default`.
    pub fn float(&self, name: &str, default: f64) -> Result<f64> {
        match self.params.get(name) {
            None => Ok(default),
            Some(Value::Float(x)) => Ok(*x),
            Some(Value::Int(i)) => Ok(*i as f64),
            Some(other) => bail!("parameter `{name}` of stage `{}` must be a float, not `{other}`", self.stage),
        }
    }

    /// Returns a string parameter, or `default`.
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.params.get(name) {
            None => Ok(default.to_string()),
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(other) => bail!("parameter `{name}` of stage `{}` must be a string, not `{other}`", self.stage),
        }
    }

    /// Returns a bool parameter, or `default`.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool> {
        match self.params.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => bail!("parameter `{name}` of stage `{}` must be a bool, not `{other}`", self.stage),
        }
    }
}
