//! Slurm executor benchmark: the wall-clock cost of running stages as Slurm
//! jobs instead of local processes. It uses the one-node cluster that the CLI
//! tests start (`tests/cli/slurm/cluster.rs`), which needs root.
//!
//! Pipelines: one stage of `true` (the latency of one job), and sweeps of 20
//! variants whose stage runs `true` or `sleep 1`. Each runs in a fresh
//! workspace, locally with `--jobs` set to the CPU count and through Slurm,
//! where the node's CPU count also bounds the jobs running at once. Run with
//! `cargo bench --workspace --profile dev --bench slurm`; figures are medians.

#[allow(dead_code)]
#[path = "../tests/cli/slurm/cluster.rs"]
mod cluster;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REPEATS: usize = 3;

fn main() {
    let Some(cluster) = cluster::cluster("the Slurm benchmark") else { return };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("CPUs (local --jobs and Slurm node): {cpus}; median of {REPEATS} runs\n");
    println!("{:<24} {:>10} {:>10} {:>18}", "pipeline", "local", "slurm", "added per stage");
    for (label, stages, command) in [
        ("1 stage, true", 1, "true"),
        ("20-variant sweep, true", 20, "true"),
        ("20-variant sweep, sleep 1", 20, "sleep 1"),
    ] {
        let pipeline = sweep(stages, command);
        let jobs = cpus.to_string();
        let local = median(|| time_run(&pipeline, &["run", "--jobs", &jobs, "p.toml"], &cluster.conf));
        let slurm = median(|| time_run(&pipeline, &["run", "--executor", "slurm", "p.toml"], &cluster.conf));
        let added = (slurm.as_secs_f64() - local.as_secs_f64()) / stages as f64;
        println!(
            "{label:<24} {:>9.2}s {:>9.2}s {:>17.2}s",
            local.as_secs_f64(),
            slurm.as_secs_f64(),
            added
        );
    }
}

/// Builds a pipeline whose one stage runs `command` in each of `variants`
/// variants, without a sweep for 1.
fn sweep(variants: usize, command: &str) -> String {
    let values: Vec<String> = (1..=variants).map(|i| i.to_string()).collect();
    let sweep = if variants > 1 { format!("[sweep]\ni = [{}]\n\n", values.join(", ")) } else { String::new() };
    format!(
        "name = \"bench\"\n\n[params]\ni = 1\n\n{sweep}[stages.work]\nkind = \"shell\"\n\
         command = \"{command}; echo ${{i}} > out-${{xp.variant}}.txt\"\noutputs = [\"out-${{xp.variant}}.txt\"]\n"
    )
}

/// Runs `xp ARGS` in a fresh workspace holding `pipeline` as `p.toml`.
fn time_run(pipeline: &str, args: &[&str], slurm_conf: &Path) -> Duration {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    fs::write(dir.path().join("p.toml"), pipeline).expect("write the pipeline");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_xp"))
        .args(args)
        .current_dir(dir.path())
        .env("SLURM_CONF", slurm_conf)
        .env_remove("XP_JOBS")
        .env("XDG_CONFIG_HOME", dir.path().join(".config"))
        .stdin(Stdio::null())
        .output()
        .expect("start xp");
    let elapsed = started.elapsed();
    assert!(output.status.success(), "xp {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    elapsed
}

fn median(mut measure: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..REPEATS).map(|_| measure()).collect();
    times.sort();
    times[REPEATS / 2]
}
