//! `xp why`: what changed between a stage's stored results, or which stage
//! and run made a file, from the cache index alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::{print_stdout, Outcome, Workspace};
use crate::cache::{self, Cache, Entry, WhenBusy};
use crate::lockfile::short;
use crate::spec::SpecError;

pub fn why(workspace: &Workspace, target: &str, runs: usize) -> Result<Outcome> {
    let cache = Cache::open(&workspace.cache, WhenBusy::Wait)?;
    let stages = cache.index.stages()?;
    let text = match find_stage(&stages, target) {
        Found::One(stage) => stage_history(&cache, stage, runs)?,
        Found::Many(matches) => {
            return Err(SpecError::plain(format!(
                "`{target}` matches several stages: {}; give the full id",
                matches.join(", ")
            ))
            .into())
        }
        Found::None => match artifact_origin(&cache, workspace, target)? {
            Some(text) => text,
            None => {
                return Err(SpecError::plain(format!(
                    "`{target}` is neither a stage with a stored result nor an output of one"
                ))
                .with_suggestion(target, stages.iter().map(String::as_str))
                .into())
            }
        },
    };
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

enum Found<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
    None,
}

/// Finds a stage by its id, or by a name that one id ends with
/// (`train` or `boston/train` for `boston/train@1a2b3c4d`).
fn find_stage<'a>(stages: &'a [String], target: &str) -> Found<'a> {
    if let Some(exact) = stages.iter().find(|id| *id == target) {
        return Found::One(exact);
    }
    let matches: Vec<&str> = stages
        .iter()
        .map(String::as_str)
        .filter(|id| {
            let base = id.split('@').next().unwrap_or(id);
            let name = base.rsplit('/').next().unwrap_or(base);
            base == target || name == target || id.ends_with(&format!("/{target}"))
        })
        .collect();
    match matches.as_slice() {
        [] => Found::None,
        [one] => Found::One(one),
        _ => Found::Many(matches),
    }
}

/// Lists a stage's stored results, newest first, each with what changed
/// since the one before it.
fn stage_history(cache: &Cache, stage: &str, runs: usize) -> Result<String> {
    let keys = cache.index.history(stage)?;
    let mut entries = Vec::new();
    for key in &keys {
        if let Some(entry) = cache.index.entry(key)? {
            entries.push((key.clone(), entry));
        }
    }
    if entries.is_empty() {
        if let Some((key, entry)) = cache.index.latest(stage)? {
            entries.push((key, entry));
        }
    }
    let producers = producers(cache)?;
    let mut text = format!("stage {stage}: {} stored result(s), newest first\n", entries.len());
    let shown = entries.len().min(runs.max(1));
    for position in (entries.len() - shown..entries.len()).rev() {
        let (key, entry) = &entries[position];
        let latest = if position + 1 == entries.len() { "  (latest)" } else { "" };
        let _ = writeln!(text, "\nrun {}  key {}{latest}", position + 1, short(key));
        let _ = writeln!(
            text,
            "  made {} on {}, took {:.1} s, xp {}",
            format_unix_ms(entry.started_unix_ms),
            entry.host,
            entry.duration_ms as f64 / 1000.0,
            entry.xp_version
        );
        if position == 0 {
            let _ = writeln!(text, "  first stored result");
            describe_components(&mut text, entry);
            continue;
        }
        let previous = &entries[position - 1].1;
        let changes = entry.components.differences(&previous.components, &producers);
        let _ = writeln!(text, "  changed since run {}:", position);
        if changes.is_empty() {
            let _ = writeln!(text, "    nothing in the key (the same inputs, run again with --force)");
        }
        for change in changes {
            let _ = writeln!(text, "    {change}");
        }
    }
    if entries.len() > shown {
        let _ = writeln!(text, "\n{} older result(s) not shown; use --runs N", entries.len() - shown);
    }
    Ok(text)
}

/// Describes the key components of a stage's first stored result.
fn describe_components(text: &mut String, entry: &Entry) {
    let components = &entry.components;
    let _ = writeln!(text, "    kind {} (code {})", components.kind, short(&components.code));
    for (name, value) in &components.params {
        let _ = writeln!(text, "    param {name} = {value}");
    }
    for (path, hash) in &components.inputs {
        let _ = writeln!(text, "    input {path} {}", short(hash));
    }
    for (stage, hash) in &components.upstream {
        let _ = writeln!(text, "    upstream {stage} {}", short(hash));
    }
}

/// Maps each output path of a stored result to the stage that writes it.
fn producers(cache: &Cache) -> Result<BTreeMap<String, String>> {
    let mut producers = BTreeMap::new();
    for stage in cache.index.stages()? {
        if let Some((_, entry)) = cache.index.latest(&stage)? {
            for path in entry.outputs.keys() {
                producers.insert(path.clone(), stage.clone());
            }
        }
    }
    Ok(producers)
}

/// Names the stage and run that made the file or folder at `target`, by
/// matching its content against the stored results that declare it.
fn artifact_origin(cache: &Cache, workspace: &Workspace, target: &str) -> Result<Option<String>> {
    let relative = relative_path(workspace, target);
    let mut declared = Vec::new();
    for item in cache.index.all_entries() {
        let (key, entry) = item?;
        for (output, artifact) in &entry.outputs {
            let inner = if relative == *output {
                Some(String::new())
            } else {
                relative.strip_prefix(&format!("{output}/")).map(str::to_string)
            };
            let Some(inner) = inner else { continue };
            let hash = if inner.is_empty() {
                Some(artifact.hash.clone())
            } else {
                artifact.files.get(&inner).map(|f| f.hash.clone())
            };
            declared.push((key.clone(), entry.clone(), output.clone(), hash));
        }
    }
    if declared.is_empty() {
        return Ok(None);
    }
    let current = cache::hash_artifact(&workspace.root.join(&relative), false)?.map(|a| a.hash);
    let mut text = String::new();
    let Some(current) = current else {
        let (_, entry, output, _) = &declared[0];
        let _ = writeln!(text, "{relative} does not exist; it is an output ({output}) of stage {}", entry.stage);
        let _ = writeln!(text, "run `xp run` to restore it from the cache");
        return Ok(Some(text));
    };
    let mut matching: Vec<_> = declared.iter().filter(|(.., hash)| hash.as_deref() == Some(&current)).collect();
    matching.sort_by_key(|(_, entry, ..)| std::cmp::Reverse(entry.started_unix_ms));
    match matching.first() {
        Some((key, entry, output, _)) => {
            let _ = writeln!(text, "{relative} (content {}) was made by stage {}", short(&current), entry.stage);
            let _ = writeln!(
                text,
                "  run with key {} on {} at {}, took {:.1} s, as part of output {output}",
                short(key),
                entry.host,
                format_unix_ms(entry.started_unix_ms),
                entry.duration_ms as f64 / 1000.0
            );
            let latest = cache.index.latest(&entry.stage)?.map(|(k, _)| k);
            if latest.as_deref() != Some(key.as_str()) {
                let _ = writeln!(text, "  this is not the stage's latest result; see `xp why {}`", entry.stage);
            }
            describe_components(&mut text, entry);
        }
        None => {
            let stage = &declared[0].1.stage;
            let _ = writeln!(
                text,
                "{relative} (content {}) is an output of stage {stage}, but matches none of its {} stored result(s):",
                short(&current),
                declared.len()
            );
            let _ = writeln!(text, "it was changed after xp wrote it; `xp run` restores the stored result");
        }
    }
    Ok(Some(text))
}

/// Returns `target` relative to the workspace, with `/` separators and no `./`.
fn relative_path(workspace: &Workspace, target: &str) -> String {
    let current = std::env::current_dir().unwrap_or_default();
    let absolute = current.join(target);
    let relative = absolute.strip_prefix(&workspace.root).unwrap_or(Path::new(target));
    let parts: Vec<String> = relative
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_unix_ms(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", time / 3600, time / 60 % 60, time % 60)
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date, by Howard
/// Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_formats_as_utc() {
        assert_eq!(format_unix_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_ms(1_796_400_000_000), "2026-12-04 16:00:00 UTC");
    }

    #[test]
    fn stage_found_by_suffix() {
        let stages = vec!["boston/train".to_string(), "mnist/train@1a2b".to_string(), "mnist/plot".to_string()];
        assert!(matches!(find_stage(&stages, "plot"), Found::One("mnist/plot")));
        assert!(matches!(find_stage(&stages, "mnist/train"), Found::One("mnist/train@1a2b")));
        assert!(matches!(find_stage(&stages, "train"), Found::Many(_)));
        assert!(matches!(find_stage(&stages, "evaluate"), Found::None));
    }
}
