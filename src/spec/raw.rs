//! Structs that mirror a pipeline file as written, before any check beyond
//! TOML syntax, unknown keys and field types.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// One pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The pipeline's name; required when the file declares stages.
    pub name: Option<Spanned<String>>,
    /// Other pipeline files to load, relative to this file.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// Parameters: `lr = 0.001`, or `lr = { type = "float", default = 0.001 }`.
    #[serde(default)]
    pub params: IndexMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub stages: IndexMap<String, Spanned<RawStage>>,
    /// Parameter values to sweep over; see the sweep module.
    pub sweep: Option<Spanned<toml::Table>>,
    /// Sweeps of included pipelines, by pipeline name; each replaces that
    /// pipeline's own `[sweep]`.
    #[serde(default)]
    pub sweeps: IndexMap<String, Spanned<toml::Table>>,
    /// Named sets of parameter values, chosen with `--profile NAME`.
    #[serde(default)]
    pub profiles: IndexMap<String, IndexMap<String, Spanned<toml::Value>>>,
    /// Settings of `xp audit` for this pipeline.
    pub audit: Option<RawAudit>,
    /// The executor and its settings. Only the table of the file given to `xp run` counts.
    pub executor: Option<Spanned<RawExecutor>>,
}

/// The `[audit]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// Relative difference allowed between the numbers of a rerun and the
    /// stored result for the stage to count as numerically close.
    pub tolerance: Option<Spanned<f64>>,
}

/// A user configuration file, which may set executor defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserConfig {
    pub executor: Option<Spanned<RawExecutor>>,
}

/// The `[executor]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExecutor {
    /// `local` or `slurm`; `--executor` overrides it.
    pub kind: Option<Spanned<String>>,
    pub partition: Option<Spanned<String>>,
    pub account: Option<Spanned<String>>,
    /// Slurm time limit of each job, in a format `sbatch --time` accepts.
    pub time: Option<Spanned<String>>,
    /// More arguments for every `sbatch` call.
    #[serde(default)]
    pub sbatch_args: Vec<Spanned<String>>,
    /// Seconds a job may stay pending before xp cancels it.
    pub start_timeout: Option<Spanned<toml::Value>>,
    /// Seconds without a heartbeat from `xp run` after which a job stops itself.
    pub coordinator_timeout: Option<Spanned<toml::Value>>,
    /// Seconds between two `squeue` calls.
    pub poll_interval: Option<Spanned<toml::Value>>,
}

/// One `[stages.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub kind: Spanned<String>,
    /// The `sh` command of a `shell` stage.
    pub command: Option<Spanned<String>>,
    /// Stages that must finish first: `name` in this pipeline or `pipeline/name`.
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    /// Files or folders the stage reads, relative to the workspace.
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    /// Files or folders the stage writes, relative to the workspace.
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    /// The stage's own parameters; values may interpolate pipeline parameters.
    #[serde(default)]
    pub params: IndexMap<String, Spanned<toml::Value>>,
    /// Environment variables set for the stage; part of its cache key.
    #[serde(default)]
    pub env: IndexMap<String, Spanned<String>>,
    /// CPU threads the stage uses; the scheduler keeps the running sum within `--jobs`.
    pub threads: Option<Spanned<i64>>,
    /// Memory the stage needs: MiB as an integer, or a string such as `"4G"`.
    pub memory: Option<Spanned<toml::Value>>,
}
