//! `xp`: declarative experiment pipelines with a content-hashed cache.
//!
//! The engine (this library and the `xp` binary) does not link libtorch:
//! loading it costs about 0.2 s of static initialisation at every start, which
//! would dominate an all-cached rerun. Stages that train with libtorch run in
//! the separate `xp-torch` binary.

pub mod audit;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod dag;
pub mod environment;
pub mod exec;
pub mod lockfile;
pub mod report;
pub mod spec;
pub mod stages;

use std::io::IsTerminal;
use std::process::ExitCode;


use clap::Parser;

use crate::cli::Cli;
use crate::commands::Outcome;

/// Parses the command line, runs the command and returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match commands::dispatch(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::StageFailed) => ExitCode::from(1),
        Ok(Outcome::InvalidInput) => ExitCode::from(2),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Ok(Outcome::Worker(code)) => ExitCode::from(code),
        Err(err) => {
            let code = commands::exit_code(&err);
            if !commands::is_broken_pipe(&err) {
                eprintln!("error: {}", render_error(&err));
            }
            ExitCode::from(code)
        }
    }
}

/// Prints a pipeline-file error as it is (it has its own layout), and other
/// errors with one cause per line.
fn render_error(err: &anyhow::Error) -> String {
    if let Some(spec) = err.downcast_ref::<crate::spec::SpecError>() {
        return spec.to_string();
    }
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    text
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "xp=debug",
        _ => "xp=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr)
        .init();
}
