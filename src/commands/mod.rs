//! One module per subcommand; this one routes to them and maps errors to
//! exit statuses.

mod audit;
mod cache;
mod doctor;
mod locking;
mod lockdiff;
mod report;
mod run;
mod why;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cache::{Cache, WhenBusy, WorkspaceBusy};
use crate::cli::{Cli, Command, PipelineArgs};
use crate::dag::{self, Dag};
use crate::spec::{self, SpecError};

/// The result of a command that ran to its end.
pub enum Outcome {
    Success,
    StageFailed,
    /// Every failure was a missing input file.
    InvalidInput,
    Interrupted,
    /// `xp worker` ended with this exit status.
    Worker(u8),
}

pub fn dispatch(cli: Cli) -> Result<Outcome> {
    if let Command::Worker { job } = &cli.command {
        return Ok(Outcome::Worker(crate::exec::slurm::remote::run(job)));
    }
    let workspace = Workspace::new(cli.directory.as_deref(), cli.cache.as_deref())?;
    match cli.command {
        Command::Run(args) => run::run(&workspace, &args, cli.verbose > 0),
        Command::Status(args) => run::status(&workspace, &args),
        Command::Dag { pipeline, format } => {
            let dag = workspace.load(&pipeline)?;
            let text = match format {
                crate::cli::DagFormat::Dot => dag::to_dot(&dag),
                crate::cli::DagFormat::Mermaid => dag::to_mermaid(&dag),
            };
            print_stdout(&text)?;
            Ok(Outcome::Success)
        }
        Command::Audit(args) => audit::audit(&workspace, &args),
        Command::Why { target, runs } => why::why(&workspace, &target, runs),
        Command::Gc => {
            let cache = Cache::open(&workspace.cache, WhenBusy::Wait)?;
            let report = cache.gc()?;
            print_stdout(&format!(
                "removed {} objects, freed {}; {} objects still referenced\n",
                report.objects,
                human_bytes(report.bytes),
                report.kept
            ))?;
            Ok(Outcome::Success)
        }
        Command::RebuildIndex => cache::rebuild_index(&workspace),
        Command::Doctor => doctor::doctor(&workspace),
        Command::Report(args) => report::report(&workspace, &args),
        Command::Show { pipeline, sort_by, columns } => {
            report::show(&workspace, &pipeline, sort_by.as_deref(), columns.as_deref())
        }
        Command::Compare { pipeline, first, second } => match second {
            Some(second) if !lockdiff::names_locks(&pipeline.file, Some(&second)) => {
                report::compare(&workspace, &pipeline, &first, &second)
            }
            Some(_) => Err(SpecError::plain("give two lock files, or a pipeline file and two variants").into()),
            None => lockdiff::compare_locks(&workspace, &pipeline.file.to_string_lossy(), &first),
        },
        Command::Worker { .. } => unreachable!("handled before the workspace is opened"),
    }
}

/// The workspace root and cache folder a command works in.
pub struct Workspace {
    pub root: PathBuf,
    pub cache: PathBuf,
}

impl Workspace {
    fn new(directory: Option<&Path>, cache: Option<&Path>) -> Result<Self> {
        let current = std::env::current_dir().context("failed to read the current folder")?;
        let root = match directory {
            Some(dir) => current.join(dir),
            None => current,
        };
        let cache = match cache {
            Some(dir) => root.join(dir),
            None => root.join("cache"),
        };
        Ok(Workspace { root, cache })
    }

    /// Loads a pipeline file (relative to the workspace) and builds its DAG.
    fn load(&self, args: &PipelineArgs) -> Result<Dag> {
        Ok(self.load_project(args)?.1)
    }

    /// Loads a pipeline file and returns both the resolved project and its DAG.
    fn load_project(&self, args: &PipelineArgs) -> Result<(spec::Project, Dag)> {
        let joined = self.root.join(&args.file);
        // Relative to the current folder when possible, so errors show short paths.
        let current = std::env::current_dir().unwrap_or_default();
        let path = joined.strip_prefix(&current).unwrap_or(&joined);
        let project = spec::load_project(path, &args.overrides, args.profile.as_deref())?;
        let dag = Dag::build(&project)?;
        self.check_outputs_outside_cache(&dag)?;
        dag::check_output_links(&dag, &self.root)?;
        Ok((project, dag))
    }

    /// Rejects outputs that are, contain or lie inside the cache folder:
    /// removing such an output before its stage runs would delete the cache.
    fn check_outputs_outside_cache(&self, dag: &Dag) -> Result<(), SpecError> {
        let Ok(inside) = self.cache.strip_prefix(&self.root) else { return Ok(()) };
        let cache = inside.to_string_lossy();
        for stage in &dag.stages {
            for output in &stage.outputs {
                let path = output.value.as_str();
                let nested = |inner: &str, outer: &str| {
                    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
                };
                if nested(path, &cache) || nested(&cache, path) {
                    return Err(SpecError::at(
                        &output.location,
                        format!("output `{path}` of stage `{}` overlaps the cache folder `{cache}`", stage.id),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Exit status for an error: 2 for invalid input, 3 for a busy cache, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<SpecError>().is_some() {
        2
    } else if err.downcast_ref::<crate::lockfile::LockMismatch>().is_some() {
        2
    } else if err.downcast_ref::<WorkspaceBusy>().is_some() {
        3
    } else if is_broken_pipe(err) {
        0
    } else {
        1
    }
}

pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|c| c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

/// Writes to stdout; a closed pipe (`xp dag x.toml | head`) becomes an error
/// that `main` turns into a quiet exit.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
