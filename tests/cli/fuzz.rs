//! A seeded mutation fuzzer for the pipeline loader and the DAG checks, and
//! the corpus of malformed pipeline files in `tests/corpus/`.
//!
//! The fuzzer mutates valid pipeline files (byte flips, deletions, inserted
//! TOML fragments, truncation, duplicated and swapped lines) and loads each
//! result in this process. Every case must return a project or an error that
//! names a pipeline file; a panic fails the test with the seed and the input.
//! It runs for `XP_FUZZ_SECONDS` (default 20) from the seed `XP_FUZZ_SEED`
//! (default: the clock). Every 250th case also goes through the `xp` binary,
//! which must exit with 0 or 2.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::Workspace;

/// Valid pipeline files to start from, with the files they include.
const SEEDS: [(&str, &str); 9] = [
    ("example.toml", include_str!("../../pipelines/example.toml")),
    ("boston.toml", include_str!("../../pipelines/boston.toml")),
    ("mnist.toml", include_str!("../../pipelines/mnist.toml")),
    ("fashion-mnist.toml", include_str!("../../pipelines/fashion-mnist.toml")),
    ("traffic.toml", include_str!("../../pipelines/traffic.toml")),
    ("gan.toml", include_str!("../../pipelines/gan.toml")),
    ("tutorials.toml", include_str!("../../pipelines/tutorials.toml")),
    ("sweep.toml", SWEEP),
    ("random.toml", RANDOM_SWEEP),
];

const SWEEP: &str = r#"name = "s"
include = ["example.toml"]

[params]
lr = { type = "float", default = 0.001, doc = "learning rate" }
k = 2
tag = "x"

[profiles.quick]
k = 1

[sweep]
strategy = "grid"
lr = [0.001, 0.003]
k = [1, 2, 3]

[stages.prep]
kind = "shell"
command = "echo ${tag} > prep.txt"
outputs = ["prep.txt"]

[stages.train]
kind = "shell"
command = "mkdir -p out/${xp.variant} && echo ${lr} ${k} > out/${xp.variant}/m.txt"
inputs = ["prep.txt"]
outputs = ["out/${xp.variant}/m.txt"]
needs = ["example/numbers"]
env = { LC_ALL = "C", RATE = "${lr}" }
threads = 2
params = { n = "${k}", list = [1, 2], table = { a = "${tag}" } }
"#;

const RANDOM_SWEEP: &str = r#"name = "r"

[params]
lr = 0.01
units = 32
optimizer = "adam"

[sweep]
strategy = "random"
n = 4
seed = 7
lr = { distribution = "log_uniform", low = 1e-4, high = 1e-2 }
units = { distribution = "int", low = 16, high = 128 }
optimizer = ["adam", "sgd"]

[stages.a]
kind = "shell"
command = "echo ${lr} ${units} ${optimizer} > a-${xp.variant}.txt"
outputs = ["a-${xp.variant}.txt"]
"#;

/// Fragments inserted at random places: TOML syntax, keys, and values at
/// the edges of what the loader accepts.
const FRAGMENTS: &[&str] = &[
    "[", "]", "{", "}", "\"", "'", "'''", "\"\"\"", "=", ",", "\n", " ", "#", ".", "\\", "\\u0000",
    "${", "}", "${count}", "${xp.variant}", "${nope}", "$$", "${}", "${a b}",
    "..", "../", "/", "/etc/passwd", "./", "cache", "cache/index",
    "\n[stages.x]\nkind = \"shell\"\ncommand = \"true\"\n",
    "\n[stages.y]\nkind = \"train\"\n",
    "\n[stages.\"é ü\"]\nkind = \"shell\"\ncommand = \"true\"\n",
    "needs = [\"nope\"]", "needs = [\"x\"]", "needs = [\"example/numbers\"]",
    "inputs = [\"a\"]", "outputs = [\"a\"]", "outputs = [\"a\", \"a/b\"]", "outputs = []",
    "kind = \"train\"", "kind = \"\"", "command = \"\"",
    "threads = -1", "threads = 0", "threads = 99999999999999999999", "threads = 1.5",
    "\n[sweep]\n", "strategy = \"random\"", "strategy = \"zip\"", "strategy = \"nope\"",
    "n = 0", "n = -1", "n = 100000000", "seed = -1",
    "{ distribution = \"log_uniform\", low = 0, high = 1 }",
    "{ distribution = \"int\", low = 5, high = 1 }",
    "{ distribution = \"uniform\", low = 1e308, high = -1e308 }",
    "nan", "inf", "-inf", "1e-400", "1e400", "-0.0",
    "-9223372036854775808", "9223372036854775807", "0x10", "0b101", "1979-05-27T07:32:00Z",
    "\n[params]\n", "type = \"int\"", "type = \"float\"", "type = \"list\"", "default = 1.5",
    "default = \"x\"", "doc = 3",
    "include = [\"p.toml\"]", "include = [\"missing.toml\"]", "include = [\"/\"]", "include = [\"\"]",
    "\n[profiles.quick]\n", "\n[sweeps.example]\ncount = [1, 2]\n", "\n[sweeps.nope]\n",
    "name = \"é\"", "name = \"\"", "name = \"a/b\"", "ü", "☃", "\u{feff}", "\u{202e}",
    "[[stages.a.params.files]]", "true", "false", "[]", "{}", "[[]]", "{ a = { b = { c = [] } } }",
];

/// A xorshift64 generator: seeded, reproducible, no crate needed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn line_ranges(text: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            ranges.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        ranges.push((start, text.len()));
    }
    ranges
}

/// Applies one to four random mutations to `text`.
fn mutate(text: &mut Vec<u8>, rng: &mut XorShift) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(text.len() + 1);
        match rng.below(7) {
            0 if !text.is_empty() => {
                let i = rng.below(text.len());
                text[i] ^= 1 << rng.below(8);
            }
            1 if !text.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(text.len());
                text.drain(at.min(end)..end);
            }
            2 => {
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                text.splice(at..at, fragment.bytes());
            }
            3 => text.truncate(at),
            4 => {
                let lines = line_ranges(text);
                if let Some(&(start, end)) = lines.get(rng.below(lines.len())) {
                    let line = text[start..end].to_vec();
                    text.splice(end..end, line);
                }
            }
            5 => {
                let lines = line_ranges(text);
                if lines.len() >= 2 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    let (first, second) = (lines[a.min(b)], lines[a.max(b)]);
                    if first != second {
                        let mut swapped = text[..first.0].to_vec();
                        swapped.extend_from_slice(&text[second.0..second.1]);
                        swapped.extend_from_slice(&text[first.1..second.0]);
                        swapped.extend_from_slice(&text[first.0..first.1]);
                        swapped.extend_from_slice(&text[second.1..]);
                        *text = swapped;
                    }
                }
            }
            _ => {
                // Replace the value after an `=` with a fragment.
                let lines = line_ranges(text);
                if let Some(&(start, end)) = lines.get(rng.below(lines.len())) {
                    if let Some(eq) = text[start..end].iter().position(|&b| b == b'=') {
                        let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                        let value_end = if text[end - 1] == b'\n' { end - 1 } else { end };
                        text.splice(start + eq + 1..value_end, format!(" {fragment}").into_bytes());
                    }
                }
            }
        }
    }
}

/// Loads `path` and builds its DAG, as `xp status` does before opening the
/// cache; returns the rendered error, if any.
fn load(path: &Path) -> Result<(), String> {
    let project = xp::spec::load_project(path, &[], None).map_err(|err| err.to_string())?;
    xp::dag::Dag::build(&project).map_err(|err| err.to_string())?;
    Ok(())
}

fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn mutated_pipelines_never_panic() {
    let seconds = std::env::var("XP_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let base = std::env::var("XP_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let workspace = Workspace::new();
    for (name, text) in SEEDS {
        workspace.write(name, text);
    }
    let target: PathBuf = workspace.path().join("p.toml");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut executions, mut accepted, mut through_binary) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let seed = base.wrapping_add(executions).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        let mut rng = XorShift(seed);
        let (_, original) = SEEDS[rng.below(SEEDS.len())];
        let mut text = original.as_bytes().to_vec();
        mutate(&mut text, &mut rng);
        fs::write(&target, &text).unwrap();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| load(&target)));
        executions += 1;
        let result = match outcome {
            Ok(result) => result,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "loading panicked (case seed {seed}, XP_FUZZ_SEED={base}): {message}\n--- input\n{}",
                    printable(&text)
                );
            }
        };
        match &result {
            Ok(()) => accepted += 1,
            Err(message) if !message.contains(".toml") => {
                panic!("error names no pipeline file (case seed {seed}): {message}\n--- input\n{}", printable(&text));
            }
            Err(_) => {}
        }
        if executions % 250 == 0 {
            through_binary += 1;
            let run = workspace.xp(&["status", "p.toml"]);
            // A loadable file may still fail the checks that need the workspace.
            let allowed: &[i32] = if result.is_ok() { &[0, 2] } else { &[2] };
            if !allowed.contains(&run.code) || run.stderr.contains("panicked") {
                panic!(
                    "`xp status` exited with {} (case seed {seed}):\n{}\n--- input\n{}",
                    run.code,
                    run.stderr,
                    printable(&text)
                );
            }
        }
    }
    eprintln!(
        "fuzz: {executions} executions in {seconds} s ({accepted} accepted, {} rejected), \
         {through_binary} through the binary, XP_FUZZ_SEED={base}",
        executions - accepted
    );
    assert!(executions > 100, "only {executions} executions");
}

/// Each file in `tests/corpus/` starts with `# expect: TEXT` lines; `xp
/// status FILE` must exit with status 2 and print every TEXT.
#[test]
fn corpus_errors_are_exact() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "only {} corpus files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read(file).unwrap();
        let expected: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| line.strip_prefix("# expect: "))
            .map(str::to_string)
            .collect();
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let workspace = Workspace::new();
        fs::write(workspace.path().join(&name), &text).unwrap();
        let run = workspace.xp(&["status", &name]);
        if run.code != 2 {
            failures.push(format!("{name}: exit status {}\n{}", run.code, run.stderr));
        }
        for want in &expected {
            if !run.stderr.contains(want.as_str()) {
                failures.push(format!("{name}: no `{want}` in\n{}", run.stderr));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
