//! The workspace lock: one `xp` process at a time uses a cache folder.
//!
//! The lock is an advisory `flock` on `<cache>/lock`, released by the kernel
//! when the holder exits, even by SIGKILL. The holder writes its pid and command
//! line into the file so that a waiting process can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Held for as long as the value lives.
pub struct WorkspaceLock {
    _file: File,
}

/// The action taken when another process has the lock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    Wait,
    Fail,
}

/// An attempt to lock a workspace that another process holds.
#[derive(Debug, thiserror::Error)]
#[error("the cache `{path}` is in use by {holder}")]
pub struct WorkspaceBusy {
    pub path: String,
    pub holder: String,
}

impl WorkspaceLock {
    pub fn acquire(cache_root: &Path, when_busy: WhenBusy) -> Result<Self> {
        let path = cache_root.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("failed to open the lock file `{}`", path.display()))?;
        if let Err(err) = file.try_lock() {
            if let std::fs::TryLockError::Error(err) = err {
                return Err(err).with_context(|| format!("failed to lock `{}`", path.display()));
            }
            let holder = describe_holder(&mut file);
            if when_busy == WhenBusy::Fail {
                bail!(WorkspaceBusy { path: cache_root.display().to_string(), holder });
            }
            eprintln!("xp: waiting for {holder}, which is using `{}`", cache_root.display());
            file.lock()
                .with_context(|| format!("failed to lock `{}`", path.display()))?;
        }
        write_holder(&mut file)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        Ok(WorkspaceLock { _file: file })
    }
}

/// Reads the holder's description, giving a holder that has just taken the
/// lock up to 0.2 s to write it.
fn describe_holder(file: &mut File) -> String {
    for _ in 0..4 {
        let mut text = String::new();
        let _ = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut text));
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    "another xp process".to_string()
}

fn write_holder(file: &mut File) -> std::io::Result<()> {
    let command: Vec<String> = std::env::args().collect();
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "pid {} (`{}`)", std::process::id(), command.join(" "))?;
    file.flush()
}
