//! Typed parameter values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A parameter value. Pipeline parameters are scalars; a stage's own
/// parameters may also be lists and tables, such as a download's sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Table(BTreeMap<String, Value>),
}

/// The type of a parameter; pipeline parameters are declared as one of the
/// four scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Bool,
    Int,
    Float,
    Str,
    List,
    Table,
}

impl ValueType {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "bool" => Some(ValueType::Bool),
            "int" => Some(ValueType::Int),
            "float" => Some(ValueType::Float),
            "string" => Some(ValueType::Str),
            _ => None,
        }
    }

    pub const NAMES: [&'static str; 4] = ["bool", "int", "float", "string"];

    /// Returns the name with its indefinite article: "an int", "a float".
    pub fn article_name(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {name}")
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "bool",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Str => "string",
            ValueType::List => "list",
            ValueType::Table => "table",
        }
    }
}

impl Value {
    /// Converts a TOML scalar; arrays, tables, datetimes and floats that are
    /// not finite (`nan`, `inf`) give `None`, because a key cannot tell
    /// non-finite values apart.
    pub fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Boolean(b) => Some(Value::Bool(*b)),
            toml::Value::Integer(i) => Some(Value::Int(*i)),
            toml::Value::Float(f) if f.is_finite() => Some(Value::Float(*f)),
            toml::Value::String(s) => Some(Value::Str(s.clone())),
            _ => None,
        }
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Bool(_) => ValueType::Bool,
            Value::Int(_) => ValueType::Int,
            Value::Float(_) => ValueType::Float,
            Value::Str(_) => ValueType::Str,
            Value::List(_) => ValueType::List,
            Value::Table(_) => ValueType::Table,
        }
    }

    /// Converts `self` to `ty`, widening integers to floats; `None` when the
    /// types do not fit.
    pub fn coerce(self, ty: ValueType) -> Option<Value> {
        match (self, ty) {
            (Value::Int(i), ValueType::Float) => Some(Value::Float(i as f64)),
            (value, ty) if value.value_type() == ty => Some(value),
            _ => None,
        }
    }

    /// Parses a command-line value (`-S key=value`) for a parameter of type `ty`.
    /// Strings need no quotes; other types use TOML syntax.
    pub fn parse_for(text: &str, ty: ValueType) -> Option<Value> {
        if ty == ValueType::Str {
            let quoted = toml::from_str::<toml::Table>(&format!("v = {text}")).ok();
            let unquoted = quoted.and_then(|table| table.get("v").and_then(Value::from_toml));
            return match unquoted {
                Some(Value::Str(s)) => Some(Value::Str(s)),
                _ => Some(Value::Str(text.to_string())),
            };
        }
        let table = toml::from_str::<toml::Table>(&format!("v = {text}")).ok()?;
        Value::from_toml(table.get("v")?)?.coerce(ty)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::List(_) | Value::Table(_) => {
                // Serialising plain values to JSON cannot fail.
                let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
                write!(f, "{json}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_for_float_accepts_integer() {
        assert_eq!(Value::parse_for("3", ValueType::Float), Some(Value::Float(3.0)));
    }

    #[test]
    fn parse_for_int_rejects_text() {
        assert_eq!(Value::parse_for("abc", ValueType::Int), None);
    }

    #[test]
    fn parse_for_string_takes_bare_and_quoted() {
        assert_eq!(Value::parse_for("adam", ValueType::Str), Some(Value::Str("adam".into())));
        assert_eq!(Value::parse_for("\"a b\"", ValueType::Str), Some(Value::Str("a b".into())));
    }

    #[test]
    fn float_display_keeps_decimal_point() {
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::Float(0.0003).to_string(), "0.0003");
    }
}
