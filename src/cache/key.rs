//! Stage keys: what a stage's result depends on, hashed whole.
//!
//! The key is the blake3 hash of a canonical JSON encoding of
//! [`KeyComponents`]. Every map is a `BTreeMap`, so the encoding does not depend
//! on the order in which a pipeline file lists things, and user parameters live
//! in their own map, so no parameter name can collide with an internal field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::Value;

/// Everything a stage's result depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyComponents {
    pub kind: String,
    /// Fingerprint of the source that implements `kind`.
    pub code: String,
    /// The command before interpolation, for shell stages; the parameters it
    /// uses are in `params`.
    pub command: Option<String>,
    pub params: BTreeMap<String, Value>,
    /// Content hash of every declared input, by workspace-relative path.
    pub inputs: BTreeMap<String, String>,
    /// Output hash of every stage named in `needs`, by stage id.
    pub upstream: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    /// Declared output paths: moving an output is a different result.
    pub outputs: Vec<String>,
}

/// Version tag hashed in front of the components; bump it when their meaning changes.
const KEY_DOMAIN: &[u8] = b"xp stage key v1\0";

impl KeyComponents {
    /// Returns the stage key as 64 hex digits.
    pub fn key(&self) -> String {
        // Serialising maps of strings and plain values cannot fail.
        let encoded = serde_json::to_vec(self).expect("key components serialise to JSON");
        let mut hasher = blake3::Hasher::new();
        hasher.update(KEY_DOMAIN);
        hasher.update(&encoded);
        hasher.finalize().to_hex().to_string()
    }

    /// Lists what differs from `previous`, in words a user can act on;
    /// `producers` maps output paths to the stage that writes them.
    pub fn differences(
        &self,
        previous: &KeyComponents,
        producers: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut reasons = Vec::new();
        diff_maps(&previous.params, &self.params, &mut reasons, |name, old, new| match (old, new) {
            (Some(old), Some(new)) => format!("param {name}: {old} -> {new}"),
            (None, Some(new)) => format!("param {name} added: {new}"),
            (Some(old), None) => format!("param {name} removed (was {old})"),
            (None, None) => unreachable!("diff_maps reports only keys present on one side"),
        });
        diff_maps(&previous.inputs, &self.inputs, &mut reasons, |path, old, new| {
            match (producers.get(path), old, new) {
                (Some(stage), Some(old), Some(new)) => {
                    format!("upstream {stage} output {path} changed {}", hashes(old, new))
                }
                (None, Some(old), Some(new)) => format!("input {path} changed {}", hashes(old, new)),
                (_, None, _) => format!("input {path} added"),
                (_, _, None) => format!("input {path} removed"),
            }
        });
        diff_maps(&previous.upstream, &self.upstream, &mut reasons, |stage, old, new| {
            match (old, new) {
                (Some(old), Some(new)) => format!("upstream {stage} output changed {}", hashes(old, new)),
                (None, _) => format!("now needs {stage}"),
                (_, None) => format!("no longer needs {stage}"),
            }
        });
        if previous.code != self.code {
            reasons.push(format!("code of kind {} changed {}", self.kind, hashes(&previous.code, &self.code)));
        }
        if previous.kind != self.kind {
            reasons.push(format!("kind: {} -> {}", previous.kind, self.kind));
        }
        if previous.command != self.command {
            reasons.push("command changed".to_string());
        }
        diff_maps(&previous.env, &self.env, &mut reasons, |name, old, new| {
            let show = |v: Option<&String>| v.map_or("unset".to_string(), |v| format!("{v:?}"));
            format!("env {name}: {} -> {}", show(old), show(new))
        });
        if previous.outputs != self.outputs {
            reasons.push("declared outputs changed".to_string());
        }
        reasons
    }
}

/// Formats an old and a new hash by their first 8 hex digits: `(1a2b3c4d -> 5e6f7a8b)`.
fn hashes(old: &str, new: &str) -> String {
    let short = |hash: &str| hash[..hash.len().min(8)].to_string();
    format!("({} -> {})", short(old), short(new))
}

/// Calls `describe` for every key whose value differs between `old` and `new`.
fn diff_maps<V: PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    reasons: &mut Vec<String>,
    describe: impl Fn(&str, Option<&V>, Option<&V>) -> String,
) {
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        if before != after {
            reasons.push(describe(name, before, after));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components() -> KeyComponents {
        KeyComponents {
            kind: "shell".into(),
            code: "c0de".into(),
            command: Some("echo ${n} > out.txt".into()),
            params: BTreeMap::from([("n".to_string(), Value::Int(3))]),
            inputs: BTreeMap::from([("in.txt".to_string(), "aa".to_string())]),
            upstream: BTreeMap::from([("p/a".to_string(), "bb".to_string())]),
            env: BTreeMap::from([("LANG".to_string(), "C".to_string())]),
            outputs: vec!["out.txt".into()],
        }
    }

    #[test]
    fn key_is_stable() {
        // A fixed value: when the encoding changes, every stored result is
        // invalidated, so this must change only together with `KEY_DOMAIN`.
        assert_eq!(components().key(), "56032b956e4245381e052afa4c07f57f2aa31e22e1a6e46cb9a3d52b3f7378a9");
    }

    #[test]
    fn key_changes_with_each_component() {
        let base = components().key();
        let changes: Vec<(&str, fn(&mut KeyComponents))> = vec![
            ("kind", |c| c.kind = "train".into()),
            ("code", |c| c.code = "other".into()),
            ("command", |c| c.command = Some("echo".into())),
            ("param value", |c| { c.params.insert("n".into(), Value::Int(4)); }),
            ("param type", |c| { c.params.insert("n".into(), Value::Float(3.0)); }),
            ("input", |c| { c.inputs.insert("in.txt".into(), "ab".into()); }),
            ("upstream", |c| { c.upstream.insert("p/a".into(), "bc".into()); }),
            ("env", |c| { c.env.insert("LANG".into(), "en".into()); }),
            ("outputs", |c| c.outputs = vec!["other.txt".into()]),
        ];
        for (what, change) in changes {
            let mut changed = components();
            change(&mut changed);
            assert_ne!(changed.key(), base, "changing the {what} must change the key");
        }
    }

    #[test]
    fn user_param_cannot_mimic_internal_field() {
        let mut with_param = components();
        with_param.params.insert("kind".into(), Value::Str("shell".into()));
        assert_ne!(with_param.key(), components().key());
    }

    #[test]
    fn differences_name_param_and_values() {
        let old = components();
        let mut new = components();
        new.params.insert("n".into(), Value::Int(4));
        assert_eq!(new.differences(&old, &BTreeMap::new()), vec!["param n: 3 -> 4"]);
    }

    #[test]
    fn differences_name_upstream_producer() {
        let old = components();
        let mut new = components();
        new.inputs.insert("in.txt".into(), "zz".into());
        let producers = BTreeMap::from([("in.txt".to_string(), "p/prep".to_string())]);
        assert_eq!(new.differences(&old, &producers), vec!["upstream p/prep output in.txt changed (aa -> zz)"]);
    }
}
