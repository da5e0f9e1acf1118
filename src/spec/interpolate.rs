//! `${name}` interpolation of parameters into stage fields.
//!
//! `$$` writes a literal `$`. Inside a shell command every inserted value is
//! quoted for `sh`, so a parameter such as `1; touch pwned` stays one argument.

use super::value::Value;

/// How inserted values are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// The value's plain text.
    Raw,
    /// The value quoted as one `sh` word.
    Shell,
}

/// A reference that names no parameter; `offset` is its byte offset in the template.
#[derive(Debug)]
pub struct UnknownReference {
    pub name: String,
    pub offset: usize,
}

/// A malformed `${` with no closing brace or an invalid name.
#[derive(Debug)]
pub enum InterpolationError {
    Unknown(UnknownReference),
    Malformed { offset: usize, message: String },
}

/// Returns the names referenced by `${...}` in `template`, in order of appearance.
pub fn references(template: &str) -> Result<Vec<String>, InterpolationError> {
    let mut names = Vec::new();
    for_each_part(template, |part| {
        if let Part::Reference { name, .. } = part {
            names.push(name.to_string());
        }
    })?;
    Ok(names)
}

/// Renders `template`, replacing each `${name}` by `lookup(name)`.
pub fn render<'v>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'v Value>,
    quoting: Quoting,
) -> Result<String, InterpolationError> {
    let mut output = String::with_capacity(template.len());
    let mut unknown = None;
    for_each_part(template, |part| match part {
        Part::Text(text) => output.push_str(text),
        Part::Reference { name, offset } => match lookup(name) {
            Some(value) if quoting == Quoting::Shell => output.push_str(&shell_quote(value)),
            Some(value) => output.push_str(&value.to_string()),
            None => {
                unknown.get_or_insert(UnknownReference { name: name.to_string(), offset });
            }
        },
    })?;
    match unknown {
        Some(reference) => Err(InterpolationError::Unknown(reference)),
        None => Ok(output),
    }
}

/// Returns the name when `template` is exactly one `${name}` and nothing else,
/// so that the value can keep its type.
pub fn whole_reference(template: &str) -> Option<&str> {
    let name = template.strip_prefix("${")?.strip_suffix('}')?;
    is_valid_name(name).then_some(name)
}

enum Part<'a> {
    Text(&'a str),
    Reference { name: &'a str, offset: usize },
}

fn for_each_part<'a>(
    template: &'a str,
    mut visit: impl FnMut(Part<'a>),
) -> Result<(), InterpolationError> {
    let mut rest = 0;
    while let Some(found) = template[rest..].find('$') {
        let dollar = rest + found;
        visit(Part::Text(&template[rest..dollar]));
        let after = &template[dollar + 1..];
        if after.starts_with('$') {
            visit(Part::Text("$"));
            rest = dollar + 2;
        } else if after.starts_with('{') {
            let Some(close) = after.find('}') else {
                return Err(InterpolationError::Malformed {
                    offset: dollar,
                    message: "`${` has no closing `}`".to_string(),
                });
            };
            let name = &after[1..close];
            if !is_valid_name(name) {
                return Err(InterpolationError::Malformed {
                    offset: dollar,
                    message: format!("`${{{name}}}` is not a valid parameter reference"),
                });
            }
            visit(Part::Reference { name, offset: dollar });
            rest = dollar + close + 2;
        } else {
            // A lone `$` (such as a shell variable `$HOME`) is kept as it is.
            visit(Part::Text("$"));
            rest = dollar + 1;
        }
    }
    visit(Part::Text(&template[rest..]));
    Ok(())
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Quotes a value as a single `sh` word.
pub fn shell_quote(value: &Value) -> String {
    let text = value.to_string();
    let safe = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
    if safe {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn values() -> BTreeMap<String, Value> {
        let mut values = BTreeMap::new();
        values.insert("lr".to_string(), Value::Float(0.001));
        values.insert("name".to_string(), Value::Str("1; touch pwned".to_string()));
        values
    }

    #[test]
    fn render_raw_inserts_text() {
        let values = values();
        let text = render("lr=${lr} $$5 $HOME", |n| values.get(n), Quoting::Raw).unwrap();
        assert_eq!(text, "lr=0.001 $5 $HOME");
    }

    #[test]
    fn render_shell_quotes_metacharacters() {
        let values = values();
        let text = render("echo ${name}", |n| values.get(n), Quoting::Shell).unwrap();
        assert_eq!(text, r"echo '1; touch pwned'");
    }

    #[test]
    fn shell_quote_escapes_single_quote() {
        assert_eq!(shell_quote(&Value::Str("it's".into())), r"'it'\''s'");
    }

    #[test]
    fn render_reports_unknown_reference() {
        let values = values();
        match render("a ${nope} b", |n| values.get(n), Quoting::Raw) {
            Err(InterpolationError::Unknown(reference)) => {
                assert_eq!(reference.name, "nope");
                assert_eq!(reference.offset, 2);
            }
            other => panic!("expected an unknown reference, got {other:?}"),
        }
    }

    #[test]
    fn render_rejects_unclosed_brace() {
        let values = values();
        assert!(matches!(
            render("a ${lr", |n| values.get(n), Quoting::Raw),
            Err(InterpolationError::Malformed { offset: 2, .. })
        ));
    }

    #[test]
    fn whole_reference_detects_single_reference() {
        assert_eq!(whole_reference("${lr}"), Some("lr"));
        assert_eq!(whole_reference("x${lr}"), None);
    }
}
