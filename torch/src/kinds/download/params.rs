//! The `download` stage's parameters, read from the job and checked before
//! anything is fetched.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Result};
use xp::spec::Value;
use xp::stages::StageJob;

use super::verify::{Algorithm, Checksum};

/// The default of `max_bytes`: 2 GiB.
const DEFAULT_MAX_BYTES: i64 = 2 << 30;
/// The default of `timeout_s`, in seconds.
const DEFAULT_TIMEOUT_S: f64 = 60.0;

pub struct Settings {
    pub files: Vec<FileSpec>,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// The limit on connecting, on waiting for a response and on each read.
    pub timeout: Duration,
}

/// One file to fetch, and where it may come from, in order of preference.
pub struct FileSpec {
    pub name: String,
    pub sources: Vec<Source>,
}

pub struct Source {
    pub url: String,
    pub checksum: Checksum,
}

impl FileSpec {
    /// Returns the checksum algorithms that the sources of this file use.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let used = |algorithm: &Algorithm| {
            self.sources
                .iter()
                .any(|source| source.checksum.algorithm == *algorithm)
        };
        Algorithm::ALL.into_iter().filter(used).collect()
    }
}

impl Settings {
    pub fn from_job(job: &StageJob) -> Result<Settings> {
        let stage = &job.stage;
        let max_bytes = job.int("max_bytes", DEFAULT_MAX_BYTES)?;
        if max_bytes < 1 {
            bail!("parameter `max_bytes` of stage `{stage}` must be at least 1, not {max_bytes}");
        }
        let timeout_s = job.float("timeout_s", DEFAULT_TIMEOUT_S)?;
        if !(timeout_s > 0.0 && timeout_s.is_finite()) {
            bail!("parameter `timeout_s` of stage `{stage}` must be positive, not {timeout_s}");
        }
        let items = match job.param("files") {
            Some(Value::List(items)) if !items.is_empty() => items,
            Some(Value::List(_)) => bail!("parameter `files` of stage `{stage}` is empty"),
            Some(other) => bail!(
                "parameter `files` of stage `{stage}` must be a list of tables, not `{other}`"
            ),
            None => bail!("stage `{stage}` is missing the parameter `files`"),
        };
        let mut files = Vec::new();
        let mut names = BTreeSet::new();
        for (index, item) in items.iter().enumerate() {
            let at = format!("`files[{index}]` of stage `{stage}`");
            let file = parse_file(item, &at)?;
            if !names.insert(file.name.clone()) {
                bail!("{at}: the file name `{}` appears more than once", file.name);
            }
            files.push(file);
        }
        Ok(Settings {
            files,
            max_bytes: max_bytes as u64,
            timeout: Duration::from_secs_f64(timeout_s),
        })
    }
}

fn parse_file(item: &Value, at: &str) -> Result<FileSpec> {
    let table = as_table(item, at, &["name", "sources"])?;
    let name = string_field(table, "name", at)?;
    check_name(name, at)?;
    let sources = match table.get("sources") {
        Some(Value::List(items)) if !items.is_empty() => items,
        Some(Value::List(_)) => bail!("{at}: `sources` is empty"),
        Some(other) => bail!("{at}: `sources` must be a list of tables, not `{other}`"),
        None => bail!("{at}: missing `sources`"),
    };
    let sources = sources
        .iter()
        .enumerate()
        .map(|(index, source)| parse_source(source, &format!("{at}, `sources[{index}]`")))
        .collect::<Result<_>>()?;
    Ok(FileSpec {
        name: name.to_string(),
        sources,
    })
}

fn parse_source(item: &Value, at: &str) -> Result<Source> {
    let table = as_table(item, at, &["url", "sha256", "md5"])?;
    let url = string_field(table, "url", at)?;
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("https" | "http" | "file")) {
        bail!("{at}: the url `{url}` must start with https://, http:// or file://");
    }
    let present: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| table.contains_key(a.name()))
        .collect();
    let algorithm = match present.as_slice() {
        [one] => *one,
        [] => {
            bail!("{at}: missing a checksum; set `sha256` (or `md5` where only that is published)")
        }
        _ => bail!("{at}: set one checksum, `sha256` or `md5`, not both"),
    };
    let hex = string_field(table, algorithm.name(), at)?.to_ascii_lowercase();
    if hex.len() != algorithm.hex_len() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let name = algorithm.name();
        bail!(
            "{at}: `{name}` must be {} hex digits, not `{hex}`",
            algorithm.hex_len()
        );
    }
    Ok(Source {
        url: url.to_string(),
        checksum: Checksum { algorithm, hex },
    })
}

/// Returns `item` as a table whose keys are all in `known`.
fn as_table<'a>(item: &'a Value, at: &str, known: &[&str]) -> Result<&'a BTreeMap<String, Value>> {
    let Value::Table(table) = item else {
        bail!("{at} must be a table, not `{item}`");
    };
    if let Some(key) = table.keys().find(|key| !known.contains(&key.as_str())) {
        let expected = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        bail!("{at}: unknown key `{key}`; expected {expected}");
    }
    Ok(table)
}

fn string_field<'a>(table: &'a BTreeMap<String, Value>, key: &str, at: &str) -> Result<&'a str> {
    match table.get(key) {
        Some(Value::Str(text)) => Ok(text),
        Some(other) => bail!("{at}: `{key}` must be a string, not `{other}`"),
        None => bail!("{at}: missing `{key}`"),
    }
}

/// Rejects names that could point outside the output folder.
fn check_name(name: &str, at: &str) -> Result<()> {
    if name.is_empty() || name == "." || name.contains(['/', '\0']) || name.contains("..") {
        bail!("{at}: invalid file name `{name}`; a name is one path component without `/` or `..`");
    }
    Ok(())
}
