//! SIGKILL of `xp run` at random moments: whatever the moment, the next run
//! completes, every stored object matches its hash, and the outputs equal
//! those of an uninterrupted run.
//!
//! The kill delays come from a xorshift generator. Its base seed is
//! `XP_KILL_SEED` when set, otherwise the clock, and every failure names the
//! trial's seed, so `XP_KILL_SEED=SEED XP_KILL_TRIALS=1` replays it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{finish, Workspace};

const DEFAULT_TRIALS: u64 = 50;

/// Five stages on two jobs: a folder of eight files, two stages reading it,
/// a 3 MB file (its hashing and copying take long enough to be hit) and a
/// stage joining them.
const PIPELINE: &str = r#"name = "k"

[stages.gen]
kind = "shell"
command = "mkdir -p gen && for i in 1 2 3 4 5 6 7 8; do seq 1 $((i * 400)) > gen/part$i.txt; done"
outputs = ["gen"]

[stages.sum]
kind = "shell"
command = "cat gen/*.txt | awk '{ s += $1 } END { print s }' > sum.txt"
inputs = ["gen"]
outputs = ["sum.txt"]

[stages.count]
kind = "shell"
command = "wc -l gen/*.txt > count.txt"
inputs = ["gen"]
outputs = ["count.txt"]

[stages.big]
kind = "shell"
command = "head -c 3000000 /dev/zero | tr '\\0' x > big.bin"
outputs = ["big.bin"]

[stages.report]
kind = "shell"
command = "cat sum.txt count.txt > report.txt && wc -c < big.bin >> report.txt"
inputs = ["sum.txt", "count.txt", "big.bin"]
outputs = ["report.txt"]
"#;

/// A small xorshift64 generator: enough to spread kill delays, no crate needed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Returns a value in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// Reads a decimal or `0x`-prefixed hexadecimal number from the environment.
fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Reads every file of the pipeline's outputs, by workspace path.
fn outputs(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for name in ["sum.txt", "count.txt", "big.bin", "report.txt"] {
        files.insert(name.to_string(), fs::read(root.join(name)).unwrap_or_default());
    }
    for item in fs::read_dir(root.join("gen")).into_iter().flatten().flatten() {
        let name = format!("gen/{}", item.file_name().to_string_lossy());
        files.insert(name, fs::read(item.path()).unwrap());
    }
    files
}

fn write_pipeline() -> Workspace {
    let workspace = Workspace::new();
    workspace.write("p.toml", PIPELINE);
    workspace
}

/// Lists the files xp leaves next to an output while restoring it.
fn restore_leftovers(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for folder in [root.to_path_buf(), root.join("gen")] {
        for item in fs::read_dir(folder).into_iter().flatten().flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.contains(".xp-restore.") {
                found.push(name);
            }
        }
    }
    found
}

/// One trial: a run killed after `delays[0]` ms, optionally a resumed run
/// killed after `delays[1]` ms, then a run that must complete. Returns
/// whether that run had to rebuild a damaged index.
fn trial(delays: &[u64], expected: &BTreeMap<String, Vec<u8>>) -> Result<bool, String> {
    let workspace = write_pipeline();
    for &delay in delays {
        let child = workspace.spawn(&["run", "--jobs", "2", "p.toml"]);
        std::thread::sleep(Duration::from_millis(delay));
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let killed = finish(child);
        if killed.code != -1 && killed.code != 0 {
            return Err(format!("the killed run exited with {}: {}", killed.code, killed.stderr));
        }
        let corrupt = workspace.corrupt_objects();
        if !corrupt.is_empty() {
            return Err(format!("objects do not match their hash after the kill: {corrupt:?}"));
        }
    }

    let run = workspace.xp(&["run", "--jobs", "2", "p.toml"]);
    if run.code != 0 {
        return Err(format!("the run after the kill exited with {}:\n{}", run.code, run.stderr));
    }
    let found = outputs(workspace.path());
    if &found != expected {
        let differing: Vec<&String> =
            expected.keys().chain(found.keys()).filter(|k| expected.get(*k) != found.get(*k)).collect();
        return Err(format!("outputs differ from an uninterrupted run: {differing:?}\n{}", run.stderr));
    }

    let corrupt = workspace.corrupt_objects();
    if !corrupt.is_empty() {
        return Err(format!("objects do not match their hash: {corrupt:?}"));
    }
    let leftovers = restore_leftovers(workspace.path());
    if !leftovers.is_empty() {
        return Err(format!("temporary restore files left in the workspace: {leftovers:?}"));
    }
    let status = workspace.xp(&["status", "p.toml"]);
    if !status.stdout.contains("5 stages: 5 cached, 0 to run") {
        return Err(format!("not everything is cached after the run:\n{}", status.stdout));
    }
    Ok(run.stderr.contains("the cache index was damaged"))
}

#[test]
fn random_sigkills_never_corrupt_results() {
    let reference = write_pipeline();
    let started = Instant::now();
    reference.xp(&["run", "--jobs", "2", "p.toml"]).success();
    let full_ms = started.elapsed().as_millis() as u64;
    let expected = outputs(reference.path());
    assert_eq!(expected.len(), 12, "{:?}", expected.keys());

    let base = env_u64("XP_KILL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let trials = env_u64("XP_KILL_TRIALS").unwrap_or(DEFAULT_TRIALS);
    // Delays cover the whole run and a little beyond it.
    let span = full_ms + full_ms / 5 + 1;
    let mut rebuilt = 0;
    for n in 0..trials {
        let seed = base.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut rng = XorShift::new(seed);
        let mut delays = vec![rng.below(span)];
        if rng.below(2) == 1 {
            delays.push(rng.below(span));
        }
        match trial(&delays, &expected) {
            Ok(true) => rebuilt += 1,
            Ok(false) => {}
            Err(problem) => panic!(
                "kill trial {n} failed (XP_KILL_SEED={seed:#x} XP_KILL_TRIALS=1, delays {delays:?} ms, \
                 uninterrupted run {full_ms} ms): {problem}"
            ),
        }
    }
    eprintln!(
        "kill trials: {trials} passed, {rebuilt} of them after rebuilding a damaged index \
         (base seed {base:#x}, uninterrupted run {full_ms} ms)"
    );
}

/// Returns whether process `pid` has exited (it may remain a zombie until reaped).
fn is_gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn next_run_kills_orphans_of_killed_run() {
    let workspace = Workspace::new();
    let text = "name = \"p\"\n[stages.a]\nkind = \"shell\"\n\
                command = \"sleep 120 & echo $! > bg.pid; touch started; wait\"\noutputs = [\"a.txt\"]\n";
    workspace.write("p.toml", text);
    let child = workspace.spawn(&["run", "p.toml"]);
    workspace.wait_for("started", Duration::from_secs(20));
    let pid: i32 = workspace.read("bg.pid").trim().parse().unwrap();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    finish(child);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!is_gone(pid), "the background process {pid} should outlive the killed xp");

    workspace.xp(&["status", "p.toml"]).success();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_gone(pid), "the next xp left the orphan {pid} running");
    assert_eq!(fs::read_dir(workspace.path().join("cache/runs")).unwrap().count(), 0);
}

#[test]
fn finished_run_keeps_background_processes() {
    let workspace = Workspace::new();
    let text = "name = \"p\"\n[stages.a]\nkind = \"shell\"\n\
                command = '''sh -c 'echo $$$$ > bg.pid; exec sleep 120' > /dev/null 2>&1 &
while [ ! -s bg.pid ]; do sleep 0.01; done; echo a > a.txt'''\n\
                outputs = [\"a.txt\"]\n";
    workspace.write("p.toml", text);
    workspace.xp(&["run", "p.toml"]).success();
    let pid: i32 = workspace.read("bg.pid").trim().parse().unwrap();
    workspace.xp(&["status", "p.toml"]).success();
    let alive = !is_gone(pid);
    // SAFETY: as above; the test started this process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(alive, "a process left by a run that finished normally was killed");
}
