//! A damaged index, a full disk, a write limit and a read-only cache: each
//! gives a clear error, keeps nothing partial and loses no stored object.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{stage, Run, Workspace};

fn two_stages() -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}{}",
        stage("a", "mkdir -p a && echo one > a/1.txt && echo two > a/2.txt", &[], &["a"]),
        stage("b", "cat a/1.txt a/2.txt > b.txt", &["a"], &["b.txt"]),
    );
    workspace.write("p.toml", &text);
    workspace
}

/// Overwrites every file of the sled database with the same number of bytes of garbage.
fn damage_index(index: &Path) {
    for item in fs::read_dir(index).unwrap().flatten() {
        let path = item.path();
        if path.is_file() {
            let len = fs::metadata(&path).unwrap().len().max(64) as usize;
            fs::write(&path, vec![0xA5u8; len]).unwrap();
        }
    }
}

#[test]
fn damaged_index_is_rebuilt_on_next_run() {
    let workspace = two_stages();
    workspace.xp(&["run", "p.toml"]).success();
    let objects = workspace.objects();
    assert!(!objects.is_empty());

    damage_index(&workspace.path().join("cache/index"));
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("xp: the cache index was damaged ("), "{}", run.stderr);
    assert!(run.stderr.contains("rebuilt it from 2 entry records; the old one is in"), "{}", run.stderr);
    assert!(run.stderr.contains("0 ran, 2 cached"), "{}", run.stderr);
    assert_eq!(workspace.executions("a"), 1, "a stage ran again after the rebuild");
    assert_eq!(workspace.objects(), objects, "rebuilding lost or added objects");
}

#[test]
fn damaged_index_without_records_is_reported() {
    let workspace = two_stages();
    workspace.xp(&["run", "p.toml"]).success();
    let objects = workspace.objects();
    // A cache written before entry records existed has no marker.
    fs::remove_file(workspace.path().join("cache/entries/COMPLETE")).unwrap();

    damage_index(&workspace.path().join("cache/index"));
    let run = workspace.xp(&["run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("is damaged or unreadable"), "{}", run.stderr);
    assert!(run.stderr.contains("run `xp rebuild-index`"), "{}", run.stderr);
    assert_eq!(workspace.executions("a"), 1, "a stage ran on a damaged index");

    let rebuilt = workspace.xp(&["rebuild-index"]).success();
    assert!(rebuilt.stdout.contains("rebuilt the index: 2 entries, latest results of 2 stages"), "{}", rebuilt.stdout);
    assert!(rebuilt.stdout.contains("moved the old index to"), "{}", rebuilt.stdout);
    assert_eq!(workspace.objects(), objects, "rebuilding lost or added objects");

    let status = workspace.xp(&["status", "p.toml"]).success();
    assert!(status.stdout.contains("2 stages: 2 cached, 0 to run"), "{}", status.stdout);
    fs::remove_dir_all(workspace.path().join("a")).unwrap();
    let run = workspace.xp(&["run", "p.toml"]).success();
    assert!(run.stderr.contains("restored  p/a"), "{}", run.stderr);
    assert_eq!(workspace.executions("a"), 1);
    assert_eq!(workspace.read("a/2.txt"), "two\n");
}

#[test]
fn deleted_index_is_rebuilt() {
    let workspace = two_stages();
    workspace.xp(&["run", "p.toml"]).success();
    fs::remove_dir_all(workspace.path().join("cache/index")).unwrap();
    let rebuilt = workspace.xp(&["rebuild-index"]).success();
    assert!(rebuilt.stdout.contains("2 entries"), "{}", rebuilt.stdout);
    let status = workspace.xp(&["status", "p.toml"]).success();
    assert!(status.stdout.contains("2 cached, 0 to run"), "{}", status.stdout);
}

#[test]
fn rebuild_skips_bad_records_and_missing_objects() {
    let workspace = two_stages();
    workspace.xp(&["run", "p.toml"]).success();
    let records = workspace.path().join("cache/entries");
    let mut files: Vec<PathBuf> = Vec::new();
    for shard in fs::read_dir(&records).unwrap().flatten().filter(|e| e.path().is_dir()) {
        files.extend(fs::read_dir(shard.path()).unwrap().flatten().map(|e| e.path()));
    }
    assert_eq!(files.len(), 2, "one record per stored result: {files:?}");
    // Truncate one record; make the other refer to an object that is gone.
    let entries: Vec<(PathBuf, String)> = files.iter().map(|f| (f.clone(), fs::read_to_string(f).unwrap())).collect();
    let (first, second) = (&entries[0], &entries[1]);
    fs::write(&first.0, &first.1[..first.1.len() / 2]).unwrap();
    let json: serde_json::Value = serde_json::from_str(&second.1).unwrap();
    let log = json["log"].as_str().unwrap().to_string();
    let object = workspace.path().join("cache/objects").join(&log[..2]).join(&log[2..]);
    fs::remove_file(object).unwrap();
    fs::remove_dir_all(workspace.path().join("cache/index")).unwrap();

    let rebuilt = workspace.xp(&["rebuild-index"]).success();
    assert!(rebuilt.stdout.contains("0 entries"), "{}", rebuilt.stdout);
    assert!(rebuilt.stdout.contains("skipped the unreadable record"), "{}", rebuilt.stdout);
    assert!(rebuilt.stdout.contains("a cache object it refers to is missing"), "{}", rebuilt.stdout);
    workspace.xp(&["run", "p.toml"]).success();
    assert_eq!(workspace.read("b.txt"), "one\ntwo\n");
}

#[test]
fn tampered_record_is_refused() {
    let workspace = two_stages();
    workspace.xp(&["run", "p.toml"]).success();
    fs::remove_dir_all(workspace.path().join("cache/index")).unwrap();
    // A record whose content no longer hashes to its key is not trusted.
    let records = workspace.path().join("cache/entries");
    let shard = fs::read_dir(&records).unwrap().flatten().find(|e| e.path().is_dir()).unwrap().path();
    let record = fs::read_dir(&shard).unwrap().flatten().next().unwrap().path();
    let text = fs::read_to_string(&record).unwrap();
    assert!(text.contains("\"kind\":\"shell\""), "{text}");
    fs::write(&record, text.replace("\"kind\":\"shell\"", "\"kind\":\"other\"")).unwrap();
    let rebuilt = workspace.xp(&["rebuild-index"]).success();
    assert!(rebuilt.stdout.contains("rebuilt the index: 1 entries"), "{}", rebuilt.stdout);
    assert!(rebuilt.stdout.contains("does not match its name"), "{}", rebuilt.stdout);
}

/// A tmpfs mounted for one test and unmounted when dropped.
struct Mount {
    path: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs with `options` at `path`, or returns why it cannot.
    fn tmpfs(path: &Path, options: &str) -> Result<Mount, String> {
        fs::create_dir_all(path).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("mounting a tmpfs needs root".to_string());
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .output()
            .map_err(|err| format!("failed to start `mount`: {err}"))?;
        if !output.status.success() {
            return Err(format!("`mount` failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(Mount { path: path.to_path_buf() })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Returns a workspace with one stage whose 3 MB output does not fit in a 1 MiB cache.
fn big_output() -> Workspace {
    let workspace = Workspace::new();
    let text = format!(
        "name = \"p\"\n{}",
        stage("big", "ulimit -f unlimited 2>/dev/null; head -c 3000000 /dev/zero > big.bin", &[], &["big.bin"])
    );
    workspace.write("p.toml", &text);
    workspace
}

/// Asserts that the stage failed with `message` and left nothing behind:
/// no output in the workspace, no stored result, no temporary file.
fn assert_failed_clean(workspace: &Workspace, cache: &Path, run: &Run, message: &str) {
    assert!(run.stderr.contains("FAILED  p/big"), "{}", run.stderr);
    assert!(run.stderr.contains(message), "{}", run.stderr);
    assert!(!workspace.exists("big.bin"), "the failed stage's output was kept");
    let tmp: Vec<_> = fs::read_dir(cache.join("tmp")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    let entries = cache.join("entries");
    let records = fs::read_dir(&entries).unwrap().flatten().filter(|e| e.path().is_dir()).count();
    assert_eq!(records, 0, "a result was recorded");
}

#[test]
fn full_disk_fails_stage_cleanly() {
    let workspace = big_output();
    let cache = workspace.path().join("small-cache");
    let mount = match Mount::tmpfs(&cache, "size=1m") {
        Ok(mount) => mount,
        Err(reason) => {
            eprintln!("skipping full_disk_fails_stage_cleanly: {reason}");
            return;
        }
    };
    let run = workspace.xp(&["--cache", "small-cache", "run", "p.toml"]).expect_code(1);
    assert_failed_clean(&workspace, &cache, &run, "No space left on device");
    // The next run with room completes.
    drop(mount);
    workspace.xp(&["--cache", "small-cache", "run", "p.toml"]).success();
    assert_eq!(fs::metadata(workspace.path().join("big.bin")).unwrap().len(), 3_000_000);
}

#[test]
fn write_limit_fails_stage_cleanly() {
    let workspace = big_output();
    let mut command = workspace.command(&["run", "p.toml"]);
    // SAFETY: the closure runs in the child before exec and calls only
    // async-signal-safe functions (signal, setrlimit).
    unsafe {
        command.pre_exec(|| {
            // Writes past the limit then fail with EFBIG instead of raising SIGXFSZ.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 1 << 20, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_failed_clean(&workspace, &workspace.path().join("cache"), &run, "File too large");
    workspace.xp(&["run", "p.toml"]).success();
}

#[test]
fn read_only_cache_is_reported() {
    let workspace = two_stages();
    let cache = workspace.path().join("ro-cache");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let _mount = match Mount::tmpfs(&cache, "size=1m,ro") {
        Ok(mount) => Some(mount),
        Err(reason) if !root => {
            // Without root, permissions make the folder read-only.
            eprintln!("read_only_cache_is_reported: using chmod ({reason})");
            let mut permissions = fs::metadata(&cache).unwrap().permissions();
            permissions.set_readonly(true);
            fs::set_permissions(&cache, permissions).unwrap();
            None
        }
        Err(reason) => {
            eprintln!("skipping read_only_cache_is_reported: {reason}");
            return;
        }
    };
    let run = workspace.xp(&["--cache", "ro-cache", "run", "p.toml"]).expect_code(1);
    assert!(run.stderr.contains("ro-cache/lock"), "{}", run.stderr);
    assert!(
        run.stderr.contains("Read-only file system") || run.stderr.contains("Permission denied"),
        "{}",
        run.stderr
    );
    assert_eq!(workspace.executions("a"), 0, "a stage ran without a usable cache");
}
