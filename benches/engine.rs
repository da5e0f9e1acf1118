//! Engine benchmark: generated shell pipelines of trivial stages, timed
//! through the `xp` binary as a user runs it.
//!
//! Shapes: a chain of 100 stages, and a fan-out of 1,000 (one source, 998
//! parallel stages, one join). For each: a cold run with 2 jobs, an all-cached
//! rerun, `xp status`, and a rerun after changing the middle stage's parameter.
//! Run with `make bench`; figures are wall-clock medians over repeated runs.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const REPEATS: usize = 15;

fn main() {
    println!("{:<12} {:<28} {:>10} {:>10}", "shape", "operation", "median", "min");
    bench_shape("chain-100", &chain(100), 50);
    bench_shape("fanout-1000", &fan_out(1000), 500);
}

fn bench_shape(name: &str, pipeline: &str, middle: usize) {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    fs::write(dir.path().join("p.toml"), pipeline).expect("write the pipeline");
    let cold = time(dir.path(), &["run", "--jobs", "2", "p.toml"]);
    report(name, "cold run, 2 jobs", &[cold]);
    let null: Vec<Duration> =
        (0..REPEATS).map(|_| time(dir.path(), &["run", "--jobs", "2", "p.toml"])).collect();
    report(name, "null rerun (all cached)", &null);
    let status: Vec<Duration> = (0..REPEATS).map(|_| time(dir.path(), &["status", "p.toml"])).collect();
    report(name, "status", &status);
    let changed = format!("v{middle}=2");
    let rerun = time(dir.path(), &["run", "--jobs", "2", "p.toml", "-S", &changed]);
    report(name, &format!("rerun after -S {changed}"), &[rerun]);
}

/// Builds a chain where stage i copies stage i-1's output and appends its own parameter.
fn chain(n: usize) -> String {
    let mut text = header(n);
    for i in 0..n {
        let (read, inputs) = if i == 0 {
            (String::new(), String::new())
        } else {
            (format!("cat out/{}.txt > out/{i}.txt; ", i - 1), format!("\"out/{}.txt\"", i - 1))
        };
        let _ = write!(
            text,
            "[stages.s{i}]\nkind = \"shell\"\ncommand = \"{read}echo ${{v{i}}} >> out/{i}.txt\"\n\
             inputs = [{inputs}]\noutputs = [\"out/{i}.txt\"]\n\n"
        );
    }
    text
}

/// Builds a pipeline of one source, n - 2 stages reading it, and one join reading them all.
fn fan_out(n: usize) -> String {
    let mut text = header(n);
    let _ = write!(
        text,
        "[stages.s0]\nkind = \"shell\"\ncommand = \"mkdir -p out && echo ${{v0}} > out/0.txt\"\noutputs = [\"out/0.txt\"]\n\n"
    );
    let mut joined = Vec::new();
    for i in 1..n - 1 {
        let _ = write!(
            text,
            "[stages.s{i}]\nkind = \"shell\"\ncommand = \"echo ${{v{i}}} > out/{i}.txt\"\n\
             inputs = [\"out/0.txt\"]\noutputs = [\"out/{i}.txt\"]\n\n"
        );
        joined.push(format!("\"out/{i}.txt\""));
    }
    let last = n - 1;
    let _ = write!(
        text,
        "[stages.s{last}]\nkind = \"shell\"\ncommand = \"cat out/*.txt | wc -l > join.txt\"\n\
         inputs = [{}]\noutputs = [\"join.txt\"]\n",
        joined.join(", ")
    );
    text
}

fn header(n: usize) -> String {
    let mut text = String::from("name = \"bench\"\n\n[params]\n");
    for i in 0..n {
        let _ = writeln!(text, "v{i} = 1");
    }
    text.push('\n');
    text
}

fn time(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_xp"))
        .args(args)
        .current_dir(dir)
        .env_remove("XP_CACHE")
        .output()
        .expect("start xp");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "xp {args:?} failed\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn report(shape: &str, operation: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let min = sorted[0];
    println!("{shape:<12} {operation:<28} {:>8.1}ms {:>8.1}ms", ms(median), ms(min));
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
