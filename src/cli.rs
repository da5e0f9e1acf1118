//! Command-line arguments. Environment variables are read here and nowhere
//! else: `XP_CACHE` (cache folder), `XP_JOBS` (thread budget), `XP_DISTDIR`
//! (download mirror) and `HOME` or `XDG_CACHE_HOME` (its default), and
//! `XDG_CONFIG_HOME` (the user configuration). Logging also honours
//! `RUST_LOG` and `NO_COLOR`, and Slurm's client commands read their own
//! variables, such as `SLURM_CONF`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::spec::{ExecutorKind, Override};

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
    /// (`xp compare FILE A B`) or two lock files (`xp compare OLD.lock
    /// NEW.lock`, each a path or `GIT_REVISION:PATH`)
    Compare {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// A variant id or label, or the newer lock file
        first: String,
        /// A variant id or label
        second: Option<String>,
    },
    /// Rerun stages without the cache and compare their outputs with the lock file
    Audit(AuditArgs),
    /// Show what changed between a stage's stored results, or which run made a file
    Why {
        /// A stage id or name, or the path of an output file or folder
        target: String,
        /// How many of the stage's most recent results to show
        #[arg(long, default_value_t = 5, value_name = "N")]
        runs: usize,
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
    /// Run one stage of a Slurm job (started by `xp run --executor slurm`)
    #[command(hide = true)]
    Worker {
        /// The job file that `xp run` wrote
        job: PathBuf,
    },
}

#[derive(Args, Clone)]
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

    /// Thread budget shared by running stages [default: number of CPUs]; with
    /// `--executor slurm`, the number of Slurm jobs queued at once [default: 100]
    #[arg(short, long, env = "XP_JOBS", value_name = "N")]
    pub jobs: Option<usize>,

    /// Executor of the stages: `local` processes, or one Slurm batch job each
    /// [default: the `[executor]` kind of the pipeline or of
    /// ~/.config/xp/config.toml, else local]
    #[arg(long, value_enum, value_name = "KIND")]
    pub executor: Option<ExecutorKind>,

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

    /// Refuse to run when any stage would differ from the pipeline's lock
    /// file, and fail when a result differs from it
    #[arg(long)]
    pub locked: bool,

    /// Folder searched, by file name and checksum, before downloading anything
    /// [default: ~/.cache/xp/distdir when it exists]
    #[arg(long, env = "XP_DISTDIR", value_name = "DIR")]
    pub distdir: Option<PathBuf>,
}

#[derive(Args)]
pub struct AuditArgs {
    /// Pipeline file; its lock file sets the profile and overrides unless
    /// -P or -S are given
    #[command(flatten)]
    pub pipeline: PipelineArgs,

    /// Audit only these stages (id `pipeline/stage` or bare name); repeatable
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,

    /// Audit N stages drawn at random from the selection
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,

    /// Seed of the random draw of --sample
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Folder searched, by file name and checksum, before downloading anything
    #[arg(long, env = "XP_DISTDIR", value_name = "DIR")]
    pub distdir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DagFormat {
    Dot,
    Mermaid,
}

/// Returns the user configuration file: `$XDG_CONFIG_HOME/xp/config.toml`,
/// or `~/.config/xp/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(config.join("xp").join("config.toml"))
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
