//! The `[executor]` table: which executor runs the stages, and the settings of
//! the Slurm executor.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::diagnostic::{Location, SourceFile, SpecError};
use super::raw::{RawExecutor, RawUserConfig};

/// The executor that runs a pipeline's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// As child processes of `xp`.
    Local,
    /// As Slurm batch jobs, one per stage.
    Slurm,
}

/// Checked `[executor]` settings, from the pipeline file given to `xp run`
/// or from the user configuration.
#[derive(Debug, Clone, Default)]
pub struct ExecutorSettings {
    pub kind: Option<ExecutorKind>,
    /// `sbatch --partition`.
    pub partition: Option<String>,
    /// `sbatch --account`.
    pub account: Option<String>,
    /// `sbatch --time`: the time limit of each job.
    pub time: Option<String>,
    /// Passed to every `sbatch` call after xp's own arguments.
    pub sbatch_args: Vec<String>,
    /// Maximum time a job may stay pending before xp cancels it and fails its stage.
    pub start_timeout: Option<Duration>,
    /// Time without a heartbeat from `xp run` after which a job stops itself.
    pub coordinator_timeout: Option<Duration>,
    /// Time between two `squeue` calls.
    pub poll_interval: Option<Duration>,
}

impl ExecutorSettings {
    /// Fills the settings this table leaves unset from `defaults`, the user
    /// configuration's. The `sbatch_args` of both apply, those of `defaults` first.
    pub fn or(self, defaults: ExecutorSettings) -> ExecutorSettings {
        let mut sbatch_args = defaults.sbatch_args;
        sbatch_args.extend(self.sbatch_args);
        ExecutorSettings {
            kind: self.kind.or(defaults.kind),
            partition: self.partition.or(defaults.partition),
            account: self.account.or(defaults.account),
            time: self.time.or(defaults.time),
            sbatch_args,
            start_timeout: self.start_timeout.or(defaults.start_timeout),
            coordinator_timeout: self.coordinator_timeout.or(defaults.coordinator_timeout),
            poll_interval: self.poll_interval.or(defaults.poll_interval),
        }
    }
}

/// Reads the `[executor]` table of the user configuration file at `path`.
/// A missing file sets nothing.
pub fn load_user_settings(path: &Path) -> Result<ExecutorSettings, SpecError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(ExecutorSettings::default()),
        Err(err) => {
            return Err(SpecError::plain(format!(
                "failed to read the user configuration `{}`: {err}",
                path.display()
            )))
        }
    };
    let source = Arc::new(SourceFile { path: path.to_path_buf(), text });
    let raw: RawUserConfig = super::load::parse(&source)?;
    match raw.executor {
        Some(table) => resolve(&source, table.get_ref()),
        None => Ok(ExecutorSettings::default()),
    }
}

/// Checks a raw `[executor]` table; errors point at the offending value.
pub(super) fn resolve(source: &Arc<SourceFile>, raw: &RawExecutor) -> Result<ExecutorSettings, SpecError> {
    let at = |span: std::ops::Range<usize>| Location::new(source, span);
    let kind = match &raw.kind {
        None => None,
        Some(kind) => Some(match kind.get_ref().as_str() {
            "local" => ExecutorKind::Local,
            "slurm" => ExecutorKind::Slurm,
            other => {
                return Err(SpecError::at(&at(kind.span()), format!("unknown executor `{other}`"))
                    .with_suggestion(other, ["local", "slurm"]))
            }
        }),
    };
    let text = |field: &Option<Spanned<String>>, name: &str| -> Result<Option<String>, SpecError> {
        match field {
            Some(value) if value.get_ref().trim().is_empty() => {
                Err(SpecError::at(&at(value.span()), format!("`{name}` must not be empty")))
            }
            Some(value) => Ok(Some(value.get_ref().clone())),
            None => Ok(None),
        }
    };
    let time = text(&raw.time, "time")?;
    if let (Some(limit), Some(field)) = (&time, &raw.time) {
        if !limit.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '-') {
            return Err(SpecError::at(&at(field.span()), format!("invalid Slurm time limit `{limit}`"))
                .with_help("use minutes, `HH:MM:SS` or `D-HH:MM:SS`, as `sbatch --time` takes"));
        }
    }
    Ok(ExecutorSettings {
        kind,
        partition: text(&raw.partition, "partition")?,
        account: text(&raw.account, "account")?,
        time,
        sbatch_args: raw.sbatch_args.iter().map(|arg| arg.get_ref().clone()).collect(),
        start_timeout: seconds(source, &raw.start_timeout, "start_timeout")?,
        coordinator_timeout: seconds(source, &raw.coordinator_timeout, "coordinator_timeout")?,
        poll_interval: seconds(source, &raw.poll_interval, "poll_interval")?,
    })
}

/// Reads a positive number of seconds, integer or float.
fn seconds(
    source: &Arc<SourceFile>,
    field: &Option<Spanned<toml::Value>>,
    name: &str,
) -> Result<Option<Duration>, SpecError> {
    let Some(value) = field else { return Ok(None) };
    let number = match value.get_ref() {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    };
    match number {
        Some(x) if x.is_finite() && x > 0.0 && x < 1e9 => Ok(Some(Duration::from_secs_f64(x))),
        _ => Err(SpecError::at(
            &Location::new(source, value.span()),
            format!("`{name}` must be a positive number of seconds"),
        )),
    }
}

/// Parses a stage's `memory`: an integer in MiB, or a string of digits with an
/// optional unit `K`, `M`, `G` or `T` (powers of 1024, as Slurm reads them,
/// optionally followed by `B` or `iB`). Returns MiB, rounded up.
pub(super) fn parse_memory(value: &toml::Value) -> Result<u64, String> {
    const HINT: &str = "use MiB as an integer, or a string such as \"512M\" or \"4G\"";
    let (digits, unit) = match value {
        toml::Value::Integer(i) if *i > 0 => return Ok(*i as u64),
        toml::Value::Integer(_) => return Err("`memory` must be positive".into()),
        toml::Value::String(text) => {
            let text = text.trim();
            let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
            (&text[..split], text[split..].trim())
        }
        _ => return Err(format!("invalid `memory`: {HINT}")),
    };
    let invalid = || format!("invalid `memory` value `{value}`: {HINT}");
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let unit = unit.trim_end_matches("iB").trim_end_matches('B');
    let kib = match unit.to_ascii_uppercase().as_str() {
        "K" => amount,
        "" | "M" => amount.checked_mul(1 << 10).ok_or_else(invalid)?,
        "G" => amount.checked_mul(1 << 20).ok_or_else(invalid)?,
        "T" => amount.checked_mul(1 << 30).ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    if kib == 0 {
        return Err("`memory` must be positive".into());
    }
    Ok(kib.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::parse_memory;

    fn text(s: &str) -> toml::Value {
        toml::Value::String(s.into())
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory(&toml::Value::Integer(300)), Ok(300));
        assert_eq!(parse_memory(&text("512M")), Ok(512));
        assert_eq!(parse_memory(&text("4G")), Ok(4096));
        assert_eq!(parse_memory(&text("4GiB")), Ok(4096));
        assert_eq!(parse_memory(&text("1T")), Ok(1 << 20));
        assert_eq!(parse_memory(&text("1500K")), Ok(2));
        assert_eq!(parse_memory(&text("64")), Ok(64));
    }

    #[test]
    fn memory_rejects_bad_values() {
        for bad in ["", "G", "4X", "-1G", "1.5G", "0"] {
            assert!(parse_memory(&text(bad)).is_err(), "accepted {bad:?}");
        }
        assert!(parse_memory(&toml::Value::Integer(0)).is_err());
        assert!(parse_memory(&toml::Value::Boolean(true)).is_err());
    }
}
