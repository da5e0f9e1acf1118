//! A workspace in a temporary folder and a way to run the `xp` binary in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Workspace {
    dir: tempfile::TempDir,
}

/// The result of one `xp` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit status is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn success(self) -> Run {
        self.expect_code(0)
    }

    /// Returns the labels `xp run` printed for `stage` (run, done, cached, ...), in order.
    pub fn labels(&self, stage: &str) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let label = words.next()?;
                (words.next()? == stage).then(|| label.to_string())
            })
            .collect()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("create a temporary folder") }
    }

    /// Creates a workspace whose folder name starts with `prefix`, such as
    /// one with spaces or non-ASCII letters.
    pub fn with_prefix(prefix: &str) -> Workspace {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("create a temporary folder");
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.path().join(rel))
            .unwrap_or_else(|err| panic!("failed to read {rel}: {err}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.dir.path().join(rel).exists()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xp"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("XP_CACHE")
            .env_remove("XP_JOBS")
            .env_remove("RUST_LOG")
            // No user configuration, whatever the account running the tests has.
            .env("XDG_CONFIG_HOME", self.dir.path().join(".config"))
            .stdin(Stdio::null());
        command
    }

    pub fn xp(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("start xp"))
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start xp")
    }

    /// Counts how many times a stage command appended its name to `runs.log`.
    pub fn executions(&self, stage: &str) -> usize {
        let log = self.dir.path().join("runs.log");
        fs::read_to_string(log).unwrap_or_default().lines().filter(|l| *l == stage).count()
    }

    /// Lists every object file in the cache.
    pub fn objects(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(shards) = fs::read_dir(self.dir.path().join("cache/objects")) else { return found };
        for shard in shards.flatten() {
            found.extend(fs::read_dir(shard.path()).unwrap().flatten().map(|e| e.path()));
        }
        found.sort();
        found
    }

    /// Lists every object whose content does not hash to its name.
    pub fn corrupt_objects(&self) -> Vec<PathBuf> {
        self.objects()
            .into_iter()
            .filter(|path| {
                let shard = path.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
                let name = format!("{shard}{}", path.file_name().unwrap().to_string_lossy());
                blake3::hash(&fs::read(path).unwrap()).to_hex().as_str() != name
            })
            .collect()
    }

    /// Waits until `rel` exists; panics after `limit`.
    pub fn wait_for(&self, rel: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.exists(rel) {
            assert!(Instant::now() < deadline, "{rel} did not appear within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn finish(child: Child) -> Run {
    Run::from_output(child.wait_with_output().expect("wait for xp"))
}

/// Returns a shell stage table whose command records its execution in `runs.log`.
pub fn stage(name: &str, command: &str, inputs: &[&str], outputs: &[&str]) -> String {
    let list = |items: &[&str]| {
        items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "[stages.{name}]\nkind = \"shell\"\ncommand = '''echo {name} >> runs.log\n{command}'''\ninputs = [{}]\noutputs = [{}]\n\n",
        list(inputs),
        list(outputs)
    )
}
