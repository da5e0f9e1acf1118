//! Classifying a rerun's outputs against the lock and the stored result.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::Value as Json;

use super::Verdict;
use crate::cache::{self, Cache, Entry, VOLATILE};
use crate::lockfile::{short, LockedStage};
use crate::spec::Stage;

/// Compares the outputs a rerun wrote under `scratch` with the lock; files
/// that differ are compared with the stored result's copies.
pub fn classify(
    scratch: &Path,
    stage: &Stage,
    locked: &LockedStage,
    cached: Option<&Entry>,
    cache: &Cache,
    tolerance: f64,
) -> Result<Verdict> {
    let mut differences = Vec::new();
    let mut max_relative: f64 = 0.0;
    let mut close = false;
    for output in &stage.outputs {
        let path = output.value.as_str();
        let Some(rerun) = cache::hash_artifact(&scratch.join(path), false)? else {
            differences.push(format!("output {path} was not written"));
            continue;
        };
        let expected = locked.outputs.get(path).map(String::as_str).unwrap_or_default();
        if rerun.hash == expected {
            continue;
        }
        // Files are compared only with the cache's copy of the locked output.
        // A cached result with other bytes under the same key was made
        // elsewhere, so it is no evidence about the lock.
        let stored = cached.and_then(|entry| entry.outputs.get(path)).filter(|stored| stored.hash == expected);
        let Some(stored) = stored else {
            differences.push(format!(
                "output {path} differs from the lock ({} -> {}), and the cache does not hold the locked output to compare files",
                short(expected),
                short(&rerun.hash)
            ));
            continue;
        };
        let names: BTreeSet<&String> = rerun.files.keys().chain(stored.files.keys()).collect();
        for name in names.into_iter().filter(|name| !name.starts_with(VOLATILE)) {
            let shown = if name.is_empty() { path.to_string() } else { format!("{path}/{name}") };
            match (stored.files.get(name), rerun.files.get(name)) {
                (Some(old), Some(new)) if old.hash == new.hash => {}
                (Some(old), Some(new)) => {
                    let new_path = if name.is_empty() { scratch.join(path) } else { scratch.join(path).join(name) };
                    let numbers = if shown.ends_with(".json") {
                        compare_json(&cache.objects.path(&old.hash), &new_path, tolerance)
                    } else {
                        None
                    };
                    match numbers {
                        Some(Ok(relative)) => {
                            close = true;
                            max_relative = max_relative.max(relative);
                        }
                        Some(Err(problem)) => differences.push(format!("{shown}: {problem}")),
                        None => differences.push(format!(
                            "{shown} differs ({} bytes, {} -> {} bytes, {})",
                            old.size,
                            short(&old.hash),
                            new.size,
                            short(&new.hash)
                        )),
                    }
                }
                (Some(_), None) => differences.push(format!("{shown} was not written")),
                (None, Some(_)) => differences.push(format!("{shown} is new")),
                (None, None) => {}
            }
        }
    }
    Ok(if !differences.is_empty() {
        Verdict::Diverged { differences }
    } else if close {
        Verdict::NumericallyClose { max_relative_difference: max_relative }
    } else {
        Verdict::BitIdentical
    })
}

/// Compares two JSON files number by number. Returns `None` when either is
/// not valid JSON, the largest relative difference when all numbers are within
/// `tolerance` and everything else is equal, and the first difference otherwise.
fn compare_json(old: &Path, new: &Path, tolerance: f64) -> Option<Result<f64, String>> {
    let read = |path: &Path| -> Option<Json> { serde_json::from_slice(&fs::read(path).ok()?).ok() };
    let (old, new) = (read(old)?, read(new)?);
    let mut max_relative = 0.0;
    Some(walk(&old, &new, "$", tolerance, &mut max_relative).map(|()| max_relative))
}

fn walk(old: &Json, new: &Json, at: &str, tolerance: f64, max_relative: &mut f64) -> Result<(), String> {
    match (old, new) {
        (Json::Number(a), Json::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            let relative = relative_difference(a, b);
            if relative.is_nan() || relative > tolerance {
                return Err(format!("{at}: {a} -> {b} (relative difference {relative:.3e}, tolerance {tolerance:e})"));
            }
            *max_relative = max_relative.max(relative);
            Ok(())
        }
        (Json::Array(a), Json::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{at}: {} items -> {} items", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{at}[{i}]"), tolerance, max_relative)?;
            }
            Ok(())
        }
        (Json::Object(a), Json::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, &format!("{at}.{key}"), tolerance, max_relative)?,
                    _ => return Err(format!("{at}.{key} is present in only one of the two")),
                }
            }
            Ok(())
        }
        _ if old == new => Ok(()),
        _ => Err(format!("{at}: {old} -> {new}")),
    }
}

/// Returns `|a - b|` relative to the larger magnitude, 0 when both are 0.
fn relative_difference(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compare(old: Json, new: Json, tolerance: f64) -> Result<f64, String> {
        let mut max = 0.0;
        walk(&old, &new, "$", tolerance, &mut max).map(|()| max)
    }

    #[test]
    fn json_within_tolerance_is_close() {
        let result = compare(json!({"rmse": 4.0, "n": [1, 2]}), json!({"rmse": 4.000001, "n": [1, 2]}), 1e-6);
        let relative = result.expect("within tolerance");
        assert!(relative > 0.0);
        assert!(relative <= 1e-6);
    }

    #[test]
    fn json_beyond_tolerance_names_path() {
        let result = compare(json!({"epochs": [{"loss": 1.0}]}), json!({"epochs": [{"loss": 1.1}]}), 1e-6);
        let message = result.expect_err("beyond tolerance");
        assert!(message.starts_with("$.epochs[0].loss: 1 -> 1.1"), "{message}");
    }

    #[test]
    fn json_text_difference_diverges() {
        let result = compare(json!({"label": "a"}), json!({"label": "b"}), 1.0);
        assert_eq!(result, Err("$.label: \"a\" -> \"b\"".to_string()));
    }

    #[test]
    fn json_missing_key_diverges() {
        assert!(compare(json!({"a": 1}), json!({"b": 1}), 1.0).is_err());
    }

    #[test]
    fn relative_difference_of_zeros_is_zero() {
        assert_eq!(relative_difference(0.0, 0.0), 0.0);
        assert_eq!(relative_difference(2.0, 1.0), 0.5);
    }
}
