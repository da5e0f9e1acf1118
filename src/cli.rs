//! Command-line arguments. Environment variables are read here and nowhere
//! else: `XP_CACHE` (cache folder), `XP_JOBS` (thread budget), `XP_DISTDIR`
//! (download mirror) and `HOME` or `XDG_CACHE_HOME` (its default); logging
//! also honours `RUST_LOG` and `NO_COLOR`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::spec::Override;

/// Declarative experiment pipelines with a content-hashed cache.
///
/// Exit status: 0 success, 1 a stage failed, 2 invalid input (pipeline file,
/// override, option or a missing input file), 3 the cache is in use (with
/// --no-wait), 130 interrupted.
#[derive(Parser)]
#[command(name = "xp", version, max_term_width = 100)]
pub struct Cli {
    /// Log decisions to stderr (-v debug, -vv trace); `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Run as if started in DIR; pipeline paths are relative to the workspace.
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Cache folder [default: cache/ in the workspace]
    #[arg(long, env = "XP_CACHE", value_name = "DIR", global = true)]
    pub cache: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a pipeline's stages that are not cached
    Run(RunArgs),
    /// List each stage as cached or to run, with the reason
    Status(PipelineArgs),
    /// Print the stage graph as Graphviz DOT or Mermaid
    Dag {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[arg(long, value_enum, default_value = "dot")]
        format: DagFormat,
    },
    /// Write the comparison report of a pipeline's latest results, from the cache alone
    Report(PipelineArgs),
    /// Print the report table in the terminal
    Show {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Column to sort by (descending for metrics that are better higher)
        #[arg(long, value_name = "COLUMN")]
        sort_by: Option<String>,
        /// Comma-separated columns to show [default: label, varying params, metrics]
        #[arg(long, value_name = "A,B,...")]
        columns: Option<String>,
    },
    /// Print the parameter and metric differences between two variants
    Compare {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// A variant id or label
        first: String,
        /// A variant id or label
        second: String,
    },
    /// Remove cache objects that no stored result refers to
    Gc,
    /// Rebuild a damaged cache index from the entry records in `cache/entries/`
    ///
    /// The old index folder is renamed to `index.damaged.UNIXTIME`; no cache
    /// object is removed.
    RebuildIndex,
    /// Print versions, threads, CUDA availability and the cache's size
    Doctor,
}

#[derive(Args)]
pub struct PipelineArgs {
    /// Pipeline file
    pub file: PathBuf,

    /// Override a parameter: `-S lr=0.01`, or `-S pipeline.lr=0.01` for one pipeline
    #[arg(short = 'S', long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<Override>,

    /// Use the parameter values of the pipeline's `[profiles.NAME]` table
    #[arg(short = 'P', long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Rerun this stage even when cached (id `pipeline/stage` or bare name); repeatable
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,

    /// Fail at once when another xp process uses the cache, instead of waiting
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Thread budget shared by running stages [default: number of CPUs]
    #[arg(short, long, env = "XP_JOBS", value_name = "N")]
    pub jobs: Option<usize>,

    /// After a failure, still run every stage not downstream of it (the
    /// default in a sweep)
    #[arg(short, long)]
    pub keep_going: bool,

    /// In a sweep, stop starting stages after the first failure
    #[arg(long, conflicts_with = "keep_going")]
    pub fail_fast: bool,

    /// Show what would run and why, without running anything
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Folder searched, by file name and checksum, before downloading anything
    /// [default: ~/.cache/xp/distdir when it exists]
    #[arg(long, env = "XP_DISTDIR", value_name = "DIR")]
    pub distdir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DagFormat {
    Dot,
    Mermaid,
}

/// Returns the per-user download mirror that `make run` fills: `$XDG_CACHE_HOME/xp/distdir`,
/// or `~/.cache/xp/distdir`.
pub fn default_distdir() -> Option<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(cache.join("xp").join("distdir"))
}
