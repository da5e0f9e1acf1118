//! The sled index: which stage keys have a complete result, and what it is.
//!
//! Trees:
//! - `entries`: stage key -> [`Entry`] (JSON),
//! - `latest`: stage id -> key of that stage's most recent result,
//! - `files`: workspace path -> [`FileStamp`], so unchanged files are not rehashed;
//! - `outcomes`: stage id -> [`Outcome`] of its most recent run, for reports;
//! - `history`: stage id -> keys of its last [`HISTORY_LENGTH`] distinct
//!   results, oldest first, so `xp why` can say what changed between runs.
//!
//! An entry and its `latest` pointer are written in one transaction, after the
//! stage's objects are on disk, and the index is flushed before `xp` reports
//! the stage as done.

use std::collections::BTreeMap;
use std::path::Path;

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

impl Index {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new().path(path).open().with_context(|| {
            format!(
                "failed to open the cache index `{}`",
                path.display()
            )
        })?;
        let tree = |name: &str| {
            db.open_tree(name).with_context(|| format!("failed to open index tree `{name}`"))
        };
        Ok(Index {
            entries: tree("entries")?,
            latest: tree("latest")?,
            files: tree("files")?,
            outcomes: tree("outcomes")?,
            history: tree("history")?,
            db,
        })
    }

    pub fn entry(&self, key: &str) -> Result<Option<Entry>> {
        let Some(bytes) = self.entries.get(key).context("failed to read the cache index")? else {
            return Ok(None);
        };
        let entry = serde_json::from_slice(&bytes)
            .with_context(|| format!("index entry `{key}` is unreadable"))?;
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
    pub fn record(&self, key: &str, entry: &Entry) -> Result<()> {
        let bytes = serde_json::to_vec(entry).context("failed to encode an index entry")?;
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

    /// Removes an entry whose objects turned out to be corrupt or missing.
    pub fn remove(&self, key: &str) -> Result<()> {
        self.entries.remove(key).context("failed to write the cache index")?;
        Ok(())
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
