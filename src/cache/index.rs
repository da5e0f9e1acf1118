//! The sled index: which stage keys have a complete result, and what it is.
//!
//! Trees:
//! - `entries`: stage key -> [`Entry`] (JSON),
//! - `latest`: stage id -> key of that stage's most recent result,
//! - `files`: workspace path -> [`FileStamp`], so unchanged files are not rehashed;
//! - `outcomes`: stage id -> [`Outcome`] of its most recent run, for reports;
//! - `history`: stage id -> keys of its last [`HISTORY_LENGTH`] distinct
//!   results, oldest first, so `xp why` can list what changed between runs.
//!
//! An entry and its `latest` pointer are written in one transaction, after the
//! stage's objects are on disk, and the index is flushed before `xp` reports
//! the stage as done.
//!
//! Before that transaction, the entry is also written as a file,
//! `entries/ab/abcd….json` beside `index/` (temporary file, then rename).
//! These records make the index rebuildable: when sled's files are damaged,
//! `xp rebuild-index` creates a new database from them (see [`rebuild`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::key::KeyComponents;

/// One stored stage result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub stage: String,
    pub components: KeyComponents,
    /// Each declared output by its workspace path.
    pub outputs: BTreeMap<String, Artifact>,
    /// Object hash of the stage's captured stdout and stderr.
    pub log: Option<String>,
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    pub host: String,
    pub xp_version: String,
}

/// A stored output: one file, or a folder of files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Content hash of the file, or of the folder's sorted file list.
    pub hash: String,
    /// Files by path relative to the output; a single file has the path "".
    pub files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub hash: String,
    pub size: u64,
    pub executable: bool,
}

/// The size, modification time and inode of a file when it was last hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub hash: String,
}

impl Entry {
    /// Returns one hash over all outputs, which stages that `need` this one depend on.
    pub fn output_hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for (path, artifact) in &self.outputs {
            hasher.update(path.as_bytes());
            hasher.update(b"\0");
            hasher.update(artifact.hash.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finalize().to_hex().to_string()
    }

    /// Lists every object the entry refers to.
    pub fn objects(&self) -> impl Iterator<Item = &str> {
        let files = self.outputs.values().flat_map(|a| a.files.values()).map(|f| f.hash.as_str());
        files.chain(self.log.as_deref())
    }
}

pub struct Index {
    /// The folder of entry records, `entries/` in the cache.
    records: PathBuf,
    /// The cache's `tmp/`, where record files are written before the rename.
    tmp: PathBuf,
    db: sled::Db,
    entries: sled::Tree,
    latest: sled::Tree,
    files: sled::Tree,
    outcomes: sled::Tree,
    history: sled::Tree,
}

/// How many past results of each stage `history` keeps.
pub const HISTORY_LENGTH: usize = 20;

/// The source of a stage's result in its most recent run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub key: String,
    /// `ran`, `cached` or `restored`.
    pub source: String,
}

/// A sled database that could not be opened: its files are damaged or unreadable.
#[derive(Debug, thiserror::Error)]
#[error(
    "the cache index `{}` is damaged or unreadable; run `xp rebuild-index` to rebuild it \
     from the entry records in `{}` (no cache object is removed)",
    path.display(),
    records.display()
)]
pub struct DamagedIndex {
    pub path: PathBuf,
    pub records: PathBuf,
}

impl Index {
    /// Opens the sled database at `cache/index`; entry records go to `cache/entries`.
    pub fn open(cache_root: &Path) -> Result<Self> {
        let path = cache_root.join("index");
        let records = cache_root.join("entries");
        let damaged = || DamagedIndex { path: path.clone(), records: records.clone() };
        if !path.exists() {
            // A new index: every entry it will hold gets a record.
            mark_complete(&records)?;
        }
        let db = sled::Config::new().path(&path).open().map_err(|err| match err {
            // A folder the user may not write is not damage, so report the I/O error itself.
            sled::Error::Io(io) if is_access_error(&io) => anyhow::Error::new(io)
                .context(format!("failed to open the cache index `{}`", path.display())),
            other => anyhow::Error::new(other).context(damaged()),
        })?;
        let tree = |name: &str| {
            db.open_tree(name).with_context(|| format!("failed to open index tree `{name}`"))
        };
        let opened = (|| {
            Ok::<_, anyhow::Error>((tree("entries")?, tree("latest")?, tree("files")?, tree("outcomes")?, tree("history")?))
        })()
        .map_err(|err| err.context(damaged()))?;
        let (entries, latest, files, outcomes, history) = opened;
        let tmp = cache_root.join("tmp");
        Ok(Index { records, tmp, entries, latest, files, outcomes, history, db })
    }

    /// Returns the record file of entry `key`.
    fn record_path(&self, key: &str) -> PathBuf {
        record_path(&self.records, key)
    }

    pub fn entry(&self, key: &str) -> Result<Option<Entry>> {
        let Some(bytes) = self.entries.get(key).context("failed to read the cache index")? else {
            return Ok(None);
        };
        let entry = serde_json::from_slice(&bytes).with_context(|| {
            format!("index entry `{key}` is unreadable; `xp rebuild-index` rebuilds the index")
        })?;
        Ok(Some(entry))
    }

    /// Returns the key and entry of `stage`'s most recent result.
    pub fn latest(&self, stage: &str) -> Result<Option<(String, Entry)>> {
        let Some(key) = self.latest.get(stage).context("failed to read the cache index")? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        Ok(self.entry(&key)?.map(|entry| (key, entry)))
    }

    /// Records a complete result and makes it `stage`'s latest, atomically.
    /// The entry's record file is written first, so every entry in the
    /// database has a record from which [`rebuild`] can restore it.
    pub fn record(&self, key: &str, entry: &Entry) -> Result<()> {
        let bytes = serde_json::to_vec(entry).context("failed to encode an index entry")?;
        write_record(&self.record_path(key), &self.tmp, &bytes)?;
        (&self.entries, &self.latest, &self.history)
            .transaction(|(entries, latest, history)| {
                entries.insert(key.as_bytes(), bytes.as_slice())?;
                latest.insert(entry.stage.as_bytes(), key.as_bytes())?;
                let past = history.get(entry.stage.as_bytes())?;
                let keys = appended(past.as_deref(), key);
                history.insert(entry.stage.as_bytes(), keys.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|err: TransactionError<()>| anyhow::anyhow!("{err:?}"))
            .context("failed to write the cache index")?;
        self.flush()
    }

    /// Records how the latest run of `stage` got its result, for reports.
    pub fn set_outcome(&self, stage: &str, outcome: &Outcome) -> Result<()> {
        let bytes = serde_json::to_vec(outcome).context("failed to encode an outcome")?;
        self.outcomes.insert(stage, bytes).context("failed to write the cache index")?;
        Ok(())
    }

    pub fn outcome(&self, stage: &str) -> Option<Outcome> {
        let bytes = self.outcomes.get(stage).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Points `stage`'s latest result at an existing entry.
    pub fn set_latest(&self, stage: &str, key: &str) -> Result<()> {
        if self.latest.get(stage)?.as_deref() != Some(key.as_bytes()) {
            self.latest.insert(stage, key).context("failed to write the cache index")?;
            let past = self.history.get(stage).context("failed to read the cache index")?;
            let keys = appended(past.as_deref(), key);
            self.history.insert(stage, keys).context("failed to write the cache index")?;
        }
        Ok(())
    }

    /// Returns the keys of `stage`'s recent results, oldest first; the last
    /// one is its latest.
    pub fn history(&self, stage: &str) -> Result<Vec<String>> {
        let past = self.history.get(stage).context("failed to read the cache index")?;
        Ok(decode_keys(past.as_deref()))
    }

    /// Lists the ids of every stage with a recorded result.
    pub fn stages(&self) -> Result<Vec<String>> {
        self.latest
            .iter()
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key.context("failed to read the cache index")?).into_owned()))
            .collect()
    }

    /// Removes an entry whose objects turned out to be corrupt or missing,
    /// with its record file.
    pub fn remove(&self, key: &str) -> Result<()> {
        self.entries.remove(key).context("failed to write the cache index")?;
        let record = self.record_path(key);
        match fs::remove_file(&record) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("failed to remove `{}`", record.display()))
            }
            _ => Ok(()),
        }
    }

    pub fn all_entries(&self) -> impl Iterator<Item = Result<(String, Entry)>> + '_ {
        self.entries.iter().map(|item| {
            let (key, bytes) = item.context("failed to read the cache index")?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let entry = serde_json::from_slice(&bytes)
                .with_context(|| format!("index entry `{key}` is unreadable"))?;
            Ok((key, entry))
        })
    }

    pub fn stamp(&self, path: &str) -> Option<FileStamp> {
        let bytes = self.files.get(path).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn set_stamp(&self, path: &str, stamp: &FileStamp) -> Result<()> {
        let bytes = serde_json::to_vec(stamp).context("failed to encode a file stamp")?;
        self.files.insert(path, bytes).context("failed to write the cache index")?;
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush().context("failed to flush the cache index")?;
        Ok(())
    }
}

/// The file in `entries/` whose presence states that every entry of the
/// index has a record file. Caches written before records existed lack it.
const COMPLETE_MARKER: &str = "COMPLETE";

fn mark_complete(records: &Path) -> Result<()> {
    fs::create_dir_all(records).with_context(|| format!("failed to create `{}`", records.display()))?;
    let marker = records.join(COMPLETE_MARKER);
    fs::write(&marker, "every index entry has a record file here\n")
        .with_context(|| format!("failed to write `{}`", marker.display()))
}

/// Returns whether the records in `cache_root/entries` cover every entry of
/// the index, so that rebuilding from them loses no result.
pub fn records_complete(cache_root: &Path) -> bool {
    cache_root.join("entries").join(COMPLETE_MARKER).is_file()
}

/// Returns whether opening failed for lack of permission or on a read-only
/// file system, not because the database is damaged.
fn is_access_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(err.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem)
}

fn record_path(records: &Path, key: &str) -> PathBuf {
    let shard = key.get(..2).unwrap_or("__");
    records.join(shard).join(format!("{key}.json"))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// killed xp leaves a record complete or absent. The file is not synced,
/// because an fsync per stage made cold runs of 1,000 trivial stages 23-49%
/// slower (three runs on the shared 2-core development machine). A record
/// lost to a power failure matters only if the index is damaged as well.
fn write_record(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<()> {
    let folder = path.parent().expect("record paths have a parent folder");
    for dir in [folder, tmp] {
        fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    }
    let temp = tmp.join(format!("record.{}.{}", std::process::id(), unique()));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(err).with_context(|| format!("failed to write the entry record `{}`", path.display()));
    }
    Ok(())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The outcome of [`rebuild`]: the entries restored and those left out.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Entries written to the new index.
    pub entries: usize,
    /// Stages whose latest result was set.
    pub stages: usize,
    /// Record files that could not be parsed, by path, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// Entries left out because an object they refer to is missing, by key.
    pub incomplete: Vec<String>,
    /// The new path of the previous index folder, when there was one.
    pub moved_to: Option<PathBuf>,
}

/// Replaces the sled database at `cache_root/index` with one built from the
/// entry records in `cache_root/entries`. The old folder is renamed to
/// `index.damaged.UNIXTIME`, not deleted. An entry whose objects are not all
/// in `objects` is left out (its record file stays, so nothing is deleted).
/// Each stage's latest result is its entry that started last. File stamps
/// and report outcomes are not restored: files are hashed again on the next
/// run. The caller must hold the workspace lock.
pub fn rebuild(cache_root: &Path, object_exists: impl Fn(&str) -> bool) -> Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let path = cache_root.join("index");
    if path.exists() {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut aside = cache_root.join(format!("index.damaged.{seconds}"));
        for n in 1.. {
            if !aside.exists() {
                break;
            }
            aside = cache_root.join(format!("index.damaged.{seconds}.{n}"));
        }
        fs::rename(&path, &aside).with_context(|| {
            format!("failed to move `{}` to `{}`", path.display(), aside.display())
        })?;
        report.moved_to = Some(aside);
    }
    let index = Index::open(cache_root)?;
    let mut latest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for record in list_records(&index.records)? {
        let parsed = fs::read(&record)
            .map_err(|err| err.to_string())
            .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).map_err(|err| err.to_string()));
        let entry = match parsed {
            Ok(entry) => entry,
            Err(reason) => {
                report.unreadable.push((record, reason));
                continue;
            }
        };
        let key = record.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if entry.components.key() != key {
            let reason = "its content does not match its name (the key of its components)".to_string();
            report.unreadable.push((record, reason));
            continue;
        }
        if !entry.objects().all(&object_exists) {
            report.incomplete.push(key);
            continue;
        }
        let bytes = serde_json::to_vec(&entry).context("failed to encode an index entry")?;
        index.entries.insert(key.as_bytes(), bytes).context("failed to write the cache index")?;
        report.entries += 1;
        let newer = latest.get(&entry.stage).is_none_or(|(started, _)| entry.started_unix_ms >= *started);
        if newer {
            latest.insert(entry.stage.clone(), (entry.started_unix_ms, key));
        }
    }
    for (stage, (_, key)) in &latest {
        index.latest.insert(stage.as_bytes(), key.as_bytes()).context("failed to write the cache index")?;
        let history = appended(None, key);
        index.history.insert(stage.as_bytes(), history).context("failed to write the cache index")?;
    }
    report.stages = latest.len();
    index.flush()?;
    mark_complete(&index.records)?;
    Ok(report)
}

/// Lists every `*.json` record under `records`, sorted; none when the folder is missing.
fn list_records(records: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let shards = match fs::read_dir(records) {
        Ok(shards) => shards,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(err) => return Err(err).with_context(|| format!("failed to list `{}`", records.display())),
    };
    for shard in shards {
        let shard = shard.with_context(|| format!("failed to list `{}`", records.display()))?.path();
        if !shard.is_dir() {
            continue;
        }
        let listing = fs::read_dir(&shard).with_context(|| format!("failed to list `{}`", shard.display()))?;
        for item in listing {
            let path = item.with_context(|| format!("failed to list `{}`", shard.display()))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn decode_keys(bytes: Option<&[u8]>) -> Vec<String> {
    bytes.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default()
}

/// Returns the encoded history `past` with `key` moved or added to its end,
/// trimmed to [`HISTORY_LENGTH`] keys.
fn appended(past: Option<&[u8]>, key: &str) -> Vec<u8> {
    let mut keys = decode_keys(past);
    keys.retain(|k| k != key);
    keys.push(key.to_string());
    let excess = keys.len().saturating_sub(HISTORY_LENGTH);
    keys.drain(..excess);
    serde_json::to_vec(&keys).expect("a list of strings serialises to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_moves_repeated_key_to_end() {
        let first = appended(None, "a");
        let second = appended(Some(&first), "b");
        let third = appended(Some(&second), "a");
        assert_eq!(decode_keys(Some(&third)), vec!["b", "a"]);
    }

    #[test]
    fn history_keeps_recent_keys_only() {
        let mut encoded = Vec::new();
        for i in 0..HISTORY_LENGTH + 5 {
            encoded = appended(Some(&encoded), &i.to_string());
        }
        let keys = decode_keys(Some(&encoded));
        assert_eq!(keys.len(), HISTORY_LENGTH);
        assert_eq!(keys[0], "5");
        assert_eq!(keys.last().map(String::as_str), Some("24"));
    }
}
