//! `xp-torch`: the built-in stage kinds of xp, in the one binary that links
//! libtorch.
//!
//! - `xp-torch info` prints libtorch's version, its thread count and CUDA
//!   availability as `key: value` lines, for `xp doctor`.
//! - `xp-torch stage JOB_FILE` runs one stage described by the JSON job file
//!   that `xp` writes; it exits with status 1 and a message on failure.

mod data;
mod dataset;
mod gan;
mod kinds;
mod model;
mod plot;
mod seg;
mod traffic;

use std::path::Path;
use std::process::ExitCode;

use xp::stages::StageJob;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["info"] => {
            print_info();
            ExitCode::SUCCESS
        }
        ["stage", job] => match run_stage(Path::new(job)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: xp-torch info | xp-torch stage JOB_FILE");
            ExitCode::from(2)
        }
    }
}

fn print_info() {
    println!("libtorch: {}", env!("XP_LIBTORCH_VERSION"));
    println!("torch threads: {}", tch::get_num_threads());
    let cuda = if tch::Cuda::is_available() {
        format!("available, {} device(s)", tch::Cuda::device_count())
    } else {
        "not available".to_string()
    };
    println!("cuda: {cuda}");
}

/// Serialises tests that use libtorch's random generator, which is global to
/// the process while tests run on parallel threads. In a real run each stage
/// owns its `xp-torch` process.
#[cfg(test)]
fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_stage(job_path: &Path) -> anyhow::Result<()> {
    let job = StageJob::read(job_path)?;
    tch::set_num_threads(job.threads as i32);
    tch::set_num_interop_threads(1);
    kinds::run(&job)
}
