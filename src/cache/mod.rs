//! The cache: a content-addressed object store and a sled index over it.
//!
//! Layout of a cache folder (by default `cache/` in the workspace):
//!
//! - `objects/ab/cdef…`: every stored file, named by its blake3 hash;
//! - `index/`: the sled database of stage results ([`Entry`]);
//! - `entries/ab/abcd….json`: each entry of the index as a file, from which
//!   `xp rebuild-index` rebuilds a damaged index;
//! - `logs/<pipeline>/<stage>.log`: each stage's latest stdout and stderr;
//! - `tmp/`: files being written, renamed into place when complete;
//! - `lock`: held by the one `xp` process using the cache;
//! - `runs/`: one file per `xp` run holding the cache, left behind only by a
//!   killed run (see [`orphans`]).
//!
//! Files under `volatile/` in an output folder are stored and restored with
//! it but do not count in its hash (see [`files::VOLATILE`]).
//!
//! A stage's result enters the index only after all its outputs are stored as
//! objects, so an interrupted stage leaves at most unreferenced objects, which
//! `xp gc` removes. Objects are verified against their hash whenever they are
//! copied back into the workspace.

mod files;
mod index;
mod key;
mod lock;
mod objects;
mod orphans;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use files::{check_inside, hash_artifact, store_output, OutsideWorkspace, Workspace, VOLATILE};
pub use index::{Artifact, DamagedIndex, Entry, FileRecord, Index, Outcome, RebuildReport};
pub use key::KeyComponents;
pub use lock::{WhenBusy, WorkspaceBusy, WorkspaceLock};
pub use objects::{CorruptObject, ObjectStore};
pub use orphans::{run_id, RUN_ID_VARIABLE};

pub struct Cache {
    pub root: PathBuf,
    pub index: Index,
    pub objects: ObjectStore,
    /// Dropped before the lock, so the run's file is gone when the next `xp` locks.
    _marker: orphans::RunMarker,
    _lock: WorkspaceLock,
}

/// Counts of what `xp gc` removed and kept.
pub struct GcReport {
    pub objects: usize,
    pub bytes: u64,
    pub kept: usize,
}

impl Cache {
    /// Locks and opens the cache at `root`, creating it when missing.
    pub fn open(root: &Path, when_busy: WhenBusy) -> Result<Self> {
        fs::create_dir_all(root)
            .with_context(|| format!("failed to create the cache folder `{}`", root.display()))?;
        let lock = WorkspaceLock::acquire(root, when_busy)?;
        let marker = orphans::reap_and_mark(root)?;
        let objects = ObjectStore::open(root)?;
        let index = match Index::open(root) {
            Ok(index) => index,
            Err(err) if err.downcast_ref::<DamagedIndex>().is_some() && index::records_complete(root) => {
                // sled can leave a database it cannot open when xp is killed
                // at the wrong moment. Every entry has a record, so rebuilding
                // loses no result.
                let cause = err.root_cause().to_string();
                let report = rebuild_with(root, &objects)?;
                let aside = report.moved_to.as_ref().map_or(String::new(), |p| format!("; the old one is in `{}`", p.display()));
                eprintln!(
                    "xp: the cache index was damaged ({cause}); rebuilt it from {} entry records{aside}",
                    report.entries
                );
                Index::open(root)?
            }
            Err(err) => return Err(err),
        };
        Ok(Cache { root: root.to_path_buf(), index, objects, _marker: marker, _lock: lock })
    }

    /// Locks the cache at `root` and replaces its index with one rebuilt from
    /// the entry records; see [`index::rebuild`]. No object is removed.
    pub fn rebuild_index(root: &Path, when_busy: WhenBusy) -> Result<RebuildReport> {
        if !root.is_dir() {
            anyhow::bail!("the cache folder `{}` does not exist", root.display());
        }
        let _lock = WorkspaceLock::acquire(root, when_busy)?;
        let objects = ObjectStore::open(root)?;
        rebuild_with(root, &objects)
    }

    pub fn workspace<'a>(&'a self, root: &'a Path) -> Workspace<'a> {
        Workspace { root, index: &self.index, objects: &self.objects }
    }

    /// Returns the log file of a stage's latest run.
    pub fn log_path(&self, stage_id: &str) -> PathBuf {
        self.root.join("logs").join(format!("{stage_id}.log"))
    }

    /// Removes every object that no index entry refers to.
    pub fn gc(&self) -> Result<GcReport> {
        let mut keep = HashSet::new();
        for item in self.index.all_entries() {
            let (_, entry) = item?;
            keep.extend(entry.objects().map(str::to_string));
        }
        let (objects, bytes) = self.objects.remove_unreferenced(&keep)?;
        Ok(GcReport { objects, bytes, kept: keep.len() })
    }
}

/// Rebuilds the index of the locked cache at `root`, keeping only entries
/// whose objects are all in `objects`.
fn rebuild_with(root: &Path, objects: &ObjectStore) -> Result<RebuildReport> {
    let is_hash = |hash: &str| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    index::rebuild(root, |hash| is_hash(hash) && objects.path(hash).is_file())
}

/// Total size in bytes of the files under `dir`; 0 when it does not exist.
pub fn folder_size(dir: &Path) -> u64 {
    let Ok(listing) = fs::read_dir(dir) else { return 0 };
    listing
        .filter_map(|item| item.ok())
        .map(|item| match item.metadata() {
            Ok(m) if m.is_dir() => folder_size(&item.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
