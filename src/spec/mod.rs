//! Pipeline files: loading, includes, parameters, interpolation and checks.
//!
//! A file is parsed into the `raw` structs, which mirror the TOML, and then
//! converted in one pass into a [`Project`] of [`Pipeline`]s whose stages have
//! every parameter resolved, every path normalised and every reference checked.
//! Each error carries the file, line and column it concerns.

mod diagnostic;
mod executor;
mod interpolate;
mod load;
mod raw;
mod resolve;
mod sweep;
mod value;
mod variants;

use std::collections::BTreeMap;

pub use diagnostic::{Location, SpecError};
pub use executor::{load_user_settings, ExecutorKind, ExecutorSettings};
pub use load::load_project;
pub use sweep::Variant;
pub use value::Value;

/// Every pipeline reached from one root file through `include`.
#[derive(Debug)]
pub struct Project {
    pub pipelines: Vec<Pipeline>,
    /// The `[executor]` table of the root file; included files' tables are ignored.
    pub executor: ExecutorSettings,
}

#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    /// Parameter values after the profile and overrides, before any sweep.
    pub params: BTreeMap<String, Value>,
    /// The sweep's variants; empty without a sweep.
    pub variants: Vec<Variant>,
    pub stages: Vec<Stage>,
    /// The relative tolerance of `xp audit` for numbers, from `[audit]`.
    pub audit_tolerance: Option<f64>,
}

/// A string from a pipeline file with the place it was written.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub location: Location,
}

/// A stage with everything resolved.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `pipeline/stage`, or `pipeline/stage@VARIANT` for a stage that differs
    /// across a sweep's variants; unique in a project.
    pub id: String,
    pub pipeline: String,
    /// The name in the pipeline file.
    pub name: String,
    /// The sweep variant this stage belongs to; `None` for a shared stage.
    pub variant: Option<std::sync::Arc<Variant>>,
    pub kind: String,
    /// The command as written, before interpolation (shell stages).
    pub command_template: Option<String>,
    /// The command with parameters inserted and shell-quoted (shell stages).
    pub command: Option<String>,
    /// Explicit dependencies, as stage ids.
    pub needs: Vec<Located<String>>,
    pub inputs: Vec<Located<String>>,
    pub outputs: Vec<Located<String>>,
    /// The stage's own parameters and the pipeline parameters its fields use.
    pub params: BTreeMap<String, Value>,
    pub env: BTreeMap<String, String>,
    pub threads: usize,
    /// Memory the stage needs, in MiB; the Slurm executor requests it with `--mem`.
    pub memory_mib: Option<u64>,
    /// The stage's table in its file.
    pub location: Location,
}

/// A `-S key=value` override: `key` is `param` or `pipeline.param`.
#[derive(Debug, Clone)]
pub struct Override {
    pub pipeline: Option<String>,
    pub param: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("invalid override `{text}`: expected KEY=VALUE"))?;
        let (pipeline, param) = match key.split_once('.') {
            Some((pipeline, param)) => (Some(pipeline.to_string()), param.to_string()),
            None => (None, key.to_string()),
        };
        if param.is_empty() {
            return Err(format!("invalid override `{text}`: the key is empty"));
        }
        Ok(Override { pipeline, param, value: value.to_string() })
    }
}
