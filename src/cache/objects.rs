//! The content-addressed object store: `objects/ab/cdef...`, named by the
//! blake3 hash of the bytes. Objects are written to `tmp/` and renamed into
//! place, so a reader never sees a partial object.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

pub struct ObjectStore {
    objects: PathBuf,
    tmp: PathBuf,
}

/// An object whose bytes no longer match its name.
#[derive(Debug, thiserror::Error)]
#[error("cache object `{}` is corrupt: its content hash is {actual}", path.display())]
pub struct CorruptObject {
    pub path: PathBuf,
    pub actual: String,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ObjectStore {
    pub fn open(root: &Path) -> Result<Self> {
        let store = ObjectStore { objects: root.join("objects"), tmp: root.join("tmp") };
        for dir in [&store.objects, &store.tmp] {
            fs::create_dir_all(dir)
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
        }
        Ok(store)
    }

    pub fn path(&self, hash: &str) -> PathBuf {
        self.objects.join(&hash[..2]).join(&hash[2..])
    }

    /// A fresh path under `tmp/`, unique within this process and across processes.
    pub fn temp_path(&self, label: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{label}.{}.{n}", std::process::id()))
    }

    /// Copies `source` into the store, hashing while copying; returns the hash.
    pub fn insert_file(&self, source: &Path) -> Result<String> {
        let temp = self.temp_path("object");
        let result = self.insert_via(source, &temp);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn insert_via(&self, source: &Path, temp: &Path) -> Result<String> {
        let mut input =
            File::open(source).with_context(|| format!("failed to read `{}`", source.display()))?;
        let mut output = File::create(temp)
            .with_context(|| format!("failed to create `{}`", temp.display()))?;
        let hash = copy_hashing(&mut input, &mut output)
            .with_context(|| format!("failed to copy `{}` into the cache", source.display()))?;
        output.sync_all().with_context(|| format!("failed to sync `{}`", temp.display()))?;
        drop(output);
        let target = self.path(&hash);
        if target.exists() {
            fs::remove_file(temp).ok();
            return Ok(hash);
        }
        let parent = target.parent().expect("object paths have a parent folder");
        fs::create_dir_all(parent)
            .with_context(|| format!("failed to create `{}`", parent.display()))?;
        fs::set_permissions(temp, fs::Permissions::from_mode(0o444)).ok();
        fs::rename(temp, &target)
            .with_context(|| format!("failed to move an object into `{}`", target.display()))?;
        Ok(hash)
    }

    /// Copies object `hash` to `dest` through a temporary file, verifying its
    /// content; a corrupt object is deleted and reported as [`CorruptObject`].
    pub fn restore(&self, hash: &str, dest: &Path, executable: bool) -> Result<()> {
        let source = self.path(hash);
        let temp = restore_temp_path(dest, std::process::id());
        let result = (|| -> Result<()> {
            let mut input = File::open(&source)
                .with_context(|| format!("cache object `{}` is missing", source.display()))?;
            let mut output = File::create(&temp)
                .with_context(|| format!("failed to create `{}`", temp.display()))?;
            let actual = copy_hashing(&mut input, &mut output)
                .with_context(|| format!("failed to restore `{}`", dest.display()))?;
            if actual != hash {
                fs::remove_file(&source).ok();
                bail!(CorruptObject { path: source.clone(), actual });
            }
            let mode = if executable { 0o755 } else { 0o644 };
            fs::set_permissions(&temp, fs::Permissions::from_mode(mode)).ok();
            fs::rename(&temp, dest)
                .with_context(|| format!("failed to restore `{}`", dest.display()))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Removes the temporary files that an `xp` killed while restoring `dest`
    /// left beside it. Only the holder of the workspace lock may call this.
    pub fn remove_stale_restores(&self, dest: &Path) {
        let Some(folder) = dest.parent() else { return };
        let prefix = restore_temp_prefix(dest);
        let Ok(listing) = fs::read_dir(folder) else { return };
        for item in listing.flatten() {
            if item.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(item.path());
            }
        }
    }

    /// Removes every object not in `keep`; returns the count and bytes freed.
    pub fn remove_unreferenced(
        &self,
        keep: &std::collections::HashSet<String>,
    ) -> Result<(usize, u64)> {
        let (mut count, mut bytes) = (0, 0);
        for shard in read_dir_sorted(&self.objects)? {
            let prefix = file_name(&shard);
            for object in read_dir_sorted(&shard)? {
                let hash = format!("{prefix}{}", file_name(&object));
                if keep.contains(&hash) {
                    continue;
                }
                let size = object.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&object)
                    .with_context(|| format!("failed to remove `{}`", object.display()))?;
                count += 1;
                bytes += size;
            }
        }
        for leftover in read_dir_sorted(&self.tmp)? {
            fs::remove_file(&leftover).ok();
        }
        Ok((count, bytes))
    }
}

/// Returns the name of the temporary files beside `dest` up to the pid: `.NAME.xp-restore.`.
fn restore_temp_prefix(dest: &Path) -> String {
    let name = dest.file_name().map_or("output".into(), |n| n.to_string_lossy());
    format!(".{name}.xp-restore.")
}

/// Returns the temporary file through which process `pid` restores `dest`.
fn restore_temp_path(dest: &Path, pid: u32) -> PathBuf {
    dest.with_file_name(format!("{}{pid}", restore_temp_prefix(dest)))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("failed to list `{}`", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Copies all of `input` to `output` and returns the blake3 hash of the bytes.
pub fn copy_hashing(input: &mut impl Read, output: &mut impl Write) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        output.write_all(&buffer[..n])?;
    }
    output.flush()?;
    Ok(hasher.finalize().to_hex().to_string())
}
