//! Sweeps: a pipeline's `[sweep]` table expands into variants, each a set of
//! parameter values.
//!
//! ```toml
//! [sweep]
//! strategy = "grid"            # every combination (the default)
//! lr = [0.001, 0.01]
//! batch_size = [32, 64]
//!
//! # strategy = "zip"           # the i-th value of every list together
//! # strategy = "random"        # `n` samples drawn with `seed`
//! # n = 8
//! # seed = 1
//! # lr = { distribution = "log_uniform", low = 1e-4, high = 1e-2 }
//! # dropout = { distribution = "uniform", low = 0.1, high = 0.5 }
//! # units = { distribution = "int", low = 16, high = 128 }   # both ends included
//! # optimizer = ["adam", "sgd"]                               # a choice
//! ```
//!
//! Swept names must be parameters of the pipeline, and values take the
//! parameter's type as `-S` values do. A parameter set with `-S` is not swept.
//! Each variant's id is a hash of its values, so it stays the same when
//! other variants are added or removed; its label lists the values.

use std::collections::BTreeMap;
use std::sync::Arc;

use toml::Spanned;

use super::diagnostic::{Location, SourceFile, SpecError};
use super::value::{Value, ValueType};

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Eight hex digits of the hash of `values`.
    pub id: String,
    /// `name=value` pairs in the sweep's order, joined by commas.
    pub label: String,
    /// The swept parameters' values.
    pub values: BTreeMap<String, Value>,
}

/// Keys of `[sweep]` that are settings, not parameters: `strategy` always,
/// `n` and `seed` in a random sweep (so parameters with those names can be
/// swept by grid and zip only).
fn is_setting(key: &str, strategy: &str) -> bool {
    key == "strategy" || (strategy == "random" && (key == "n" || key == "seed"))
}

/// Expands a `[sweep]` table; `params` are the pipeline's parameters after the
/// profile and overrides, and `overridden` the names set with `-S`.
pub fn expand(
    source: &Arc<SourceFile>,
    sweep: &Spanned<toml::Table>,
    params: &BTreeMap<String, Value>,
    overridden: &[&str],
) -> Result<Vec<Variant>, SpecError> {
    let at = Location::new(source, sweep.span());
    let table = sweep.get_ref();
    let strategy = match table.get("strategy") {
        None => "grid",
        Some(toml::Value::String(s)) => s.as_str(),
        Some(_) => return Err(SpecError::at(&at, "`strategy` in `[sweep]` must be a string")),
    };
    let mut axes: Vec<(&str, &toml::Value, ValueType)> = Vec::new();
    for (name, value) in table.iter().filter(|(name, _)| !is_setting(name, strategy)) {
        let Some(current) = params.get(name) else {
            return Err(SpecError::at(&at, format!("`[sweep]` sets `{name}`, which is not a parameter"))
                .with_suggestion(name, params.keys().map(String::as_str)));
        };
        if !overridden.contains(&name.as_str()) {
            axes.push((name, value, current.value_type()));
        }
    }
    let points = match strategy {
        "grid" => grid(&at, &axes)?,
        "zip" => zip(&at, &axes)?,
        "random" => random(&at, table, &axes)?,
        other => {
            return Err(SpecError::at(&at, format!("unknown sweep strategy `{other}`"))
                .with_suggestion(other, ["grid", "zip", "random"]))
        }
    };
    // Equal points (a value listed twice) are one variant.
    let mut variants: Vec<Variant> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for candidate in points.into_iter().map(variant) {
        if seen.insert(candidate.id.clone()) {
            variants.push(candidate);
        }
    }
    Ok(variants)
}

type Point = Vec<(String, Value)>;

/// The maximum number of points one sweep may expand to. Every variant adds
/// its stages to the DAG, so a larger count is almost surely a mistake (such
/// as an extra zero in `n`), and it would exhaust memory before any check.
pub const MAX_POINTS: usize = 10_000;

fn too_many(at: &Location, count: impl std::fmt::Display) -> SpecError {
    SpecError::at(at, format!("the sweep expands to {count} variants, more than the maximum of {MAX_POINTS}"))
}

fn list<'a>(at: &Location, name: &str, value: &'a toml::Value) -> Result<&'a Vec<toml::Value>, SpecError> {
    match value {
        toml::Value::Array(items) if !items.is_empty() => Ok(items),
        _ => Err(SpecError::at(at, format!("`{name}` in `[sweep]` must be a non-empty list of values"))),
    }
}

fn typed(at: &Location, name: &str, value: &toml::Value, ty: ValueType) -> Result<Value, SpecError> {
    Value::from_toml(value).and_then(|v| v.coerce(ty)).ok_or_else(|| {
        SpecError::at(at, format!("`{name}` in `[sweep]`: `{value}` is not {}", ty.article_name()))
    })
}

fn grid(at: &Location, axes: &[(&str, &toml::Value, ValueType)]) -> Result<Vec<Point>, SpecError> {
    let mut count: usize = 1;
    for (name, value, _) in axes {
        count = count.saturating_mul(list(at, name, value)?.len());
    }
    if count > MAX_POINTS {
        return Err(too_many(at, count));
    }
    let mut points: Vec<Point> = vec![Vec::new()];
    for (name, value, ty) in axes {
        let values = list(at, name, value)?;
        let mut next = Vec::with_capacity(points.len() * values.len());
        for point in &points {
            for item in values {
                let mut extended = point.clone();
                extended.push((name.to_string(), typed(at, name, item, *ty)?));
                next.push(extended);
            }
        }
        points = next;
    }
    Ok(if axes.is_empty() { Vec::new() } else { points })
}

fn zip(at: &Location, axes: &[(&str, &toml::Value, ValueType)]) -> Result<Vec<Point>, SpecError> {
    let Some((first, first_value, _)) = axes.first() else { return Ok(Vec::new()) };
    let length = list(at, first, first_value)?.len();
    let mut points: Vec<Point> = vec![Vec::new(); length];
    for (name, value, ty) in axes {
        let values = list(at, name, value)?;
        if values.len() != length {
            return Err(SpecError::at(
                at,
                format!("`zip` needs lists of one length: `{first}` has {length} values, `{name}` {}", values.len()),
            ));
        }
        for (point, item) in points.iter_mut().zip(values) {
            point.push((name.to_string(), typed(at, name, item, *ty)?));
        }
    }
    Ok(points)
}

fn random(
    at: &Location,
    table: &toml::Table,
    axes: &[(&str, &toml::Value, ValueType)],
) -> Result<Vec<Point>, SpecError> {
    let n = match table.get("n") {
        Some(toml::Value::Integer(n)) if *n > MAX_POINTS as i64 => return Err(too_many(at, n)),
        Some(toml::Value::Integer(n)) if *n >= 1 => *n as usize,
        _ => return Err(SpecError::at(at, "a `random` sweep needs `n`, the number of samples, at least 1")),
    };
    let seed = match table.get("seed") {
        None => 0,
        Some(toml::Value::Integer(seed)) => *seed as u64,
        Some(_) => return Err(SpecError::at(at, "`seed` in `[sweep]` must be an integer")),
    };
    let mut rng = SplitMix64(seed);
    let mut points = Vec::with_capacity(n);
    for _ in 0..n {
        let mut point = Vec::new();
        for (name, spec, ty) in axes {
            point.push((name.to_string(), draw(at, name, spec, *ty, &mut rng)?));
        }
        points.push(point);
    }
    Ok(points)
}

/// Draws one value: a list is a uniform choice; a table names a distribution.
fn draw(at: &Location, name: &str, spec: &toml::Value, ty: ValueType, rng: &mut SplitMix64) -> Result<Value, SpecError> {
    if let toml::Value::Array(items) = spec {
        let items = list(at, name, spec).map(|_| items)?;
        let index = (rng.next_f64() * items.len() as f64) as usize;
        return typed(at, name, &items[index.min(items.len() - 1)], ty);
    }
    let toml::Value::Table(table) = spec else {
        return Err(SpecError::at(at, format!("`{name}` in `[sweep]` must be a list or a distribution table")));
    };
    let number = |key: &str| table.get(key).and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64)));
    let (Some(low), Some(high)) = (number("low"), number("high")) else {
        if let Some(values) = table.get("values") {
            return draw(at, name, values, ty, rng);
        }
        return Err(SpecError::at(at, format!("`{name}` in `[sweep]` needs `low` and `high`, or `values`")));
    };
    if low > high {
        return Err(SpecError::at(at, format!("`{name}` in `[sweep]`: `low` is above `high`")));
    }
    let distribution = table.get("distribution").and_then(|d| d.as_str()).unwrap_or("uniform");
    let drawn = match distribution {
        "uniform" => Value::Float(round(low + rng.next_f64() * (high - low))),
        "log_uniform" if low > 0.0 => {
            Value::Float(round((low.ln() + rng.next_f64() * (high.ln() - low.ln())).exp()))
        }
        "log_uniform" => {
            return Err(SpecError::at(at, format!("`{name}`: `log_uniform` needs `low` above 0")))
        }
        "int" => {
            let span = (high as i64 - low as i64 + 1) as f64;
            Value::Int(low as i64 + ((rng.next_f64() * span) as i64).min(span as i64 - 1))
        }
        "choice" => return Err(SpecError::at(at, format!("`{name}`: a `choice` lists its `values`"))),
        other => {
            return Err(SpecError::at(at, format!("`{name}`: unknown distribution `{other}`"))
                .with_suggestion(other, ["uniform", "log_uniform", "int", "choice"]))
        }
    };
    drawn.coerce(ty).ok_or_else(|| {
        SpecError::at(at, format!("`{name}`: a `{distribution}` draw is not {}", ty.article_name()))
    })
}

/// Rounds to 6 significant digits, so labels stay short and values print exactly.
fn round(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

fn variant(point: Point) -> Variant {
    let values: BTreeMap<String, Value> = point.iter().cloned().collect();
    // Serialising plain values cannot fail.
    let encoded = serde_json::to_vec(&values).expect("values serialise to JSON");
    let id = blake3::hash(&encoded).to_hex()[..8].to_string();
    let label = point.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    Variant { id, label, values }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small seeded generator whose
/// output is the same on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1) from the top 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_text(text: &str, params: &[(&str, Value)]) -> Result<Vec<Variant>, SpecError> {
        let source = Arc::new(SourceFile { path: "s.toml".into(), text: text.to_string() });
        let table: toml::Table = toml::from_str(text).unwrap();
        let sweep = Spanned::new(0..text.len(), table);
        let params: BTreeMap<String, Value> = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        expand(&source, &sweep, &params, &[])
    }

    fn params() -> Vec<(&'static str, Value)> {
        vec![("lr", Value::Float(0.1)), ("units", Value::Int(8)), ("opt", Value::Str("adam".into()))]
    }

    #[test]
    fn grid_gives_every_combination() {
        let variants = expand_text("lr = [0.1, 0.01]\nunits = [8, 16, 32]", &params()).unwrap();
        assert_eq!(variants.len(), 6);
        assert_eq!(variants[0].label, "lr=0.1,units=8");
        assert_eq!(variants[5].label, "lr=0.01,units=32");
    }

    #[test]
    fn zip_pairs_values() {
        let variants = expand_text("strategy = \"zip\"\nlr = [0.1, 0.01]\nunits = [8, 16]", &params()).unwrap();
        let labels: Vec<&str> = variants.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(labels, vec!["lr=0.1,units=8", "lr=0.01,units=16"]);
    }

    #[test]
    fn zip_rejects_unequal_lengths() {
        let error = expand_text("strategy = \"zip\"\nlr = [0.1, 0.01]\nunits = [8]", &params()).unwrap_err();
        assert!(error.message.contains("lists of one length"), "{}", error.message);
    }

    #[test]
    fn random_draws_from_each_distribution() {
        let text = "strategy = \"random\"\nn = 20\nseed = 3\n\
                    lr = { distribution = \"log_uniform\", low = 1e-4, high = 1e-2 }\n\
                    units = { distribution = \"int\", low = 4, high = 6 }\nopt = [\"adam\", \"sgd\"]";
        let variants = expand_text(text, &params()).unwrap();
        assert_eq!(variants.len(), 20);
        for variant in &variants {
            let Value::Float(lr) = variant.values["lr"] else { panic!("lr is not a float") };
            assert!((1e-4..=1e-2).contains(&lr), "{lr}");
            let Value::Int(units) = variant.values["units"] else { panic!("units is not an int") };
            assert!((4..=6).contains(&units), "{units}");
        }
        let again = expand_text(text, &params()).unwrap();
        assert_eq!(variants, again, "the same seed gives the same samples");
    }

    #[test]
    fn uniform_draw_stays_in_range() {
        let text = "strategy = \"random\"\nn = 50\nlr = { distribution = \"uniform\", low = 0.5, high = 0.75 }";
        for variant in expand_text(text, &params()).unwrap() {
            let Value::Float(lr) = variant.values["lr"] else { panic!("lr is not a float") };
            assert!((0.5..=0.75).contains(&lr), "{lr}");
        }
    }

    #[test]
    fn variant_id_depends_only_on_values() {
        let two = expand_text("lr = [0.1, 0.01]", &params()).unwrap();
        let three = expand_text("lr = [0.5, 0.1, 0.01]", &params()).unwrap();
        assert_eq!(two[0].id, three[1].id);
        assert_eq!(two[1].id, three[2].id);
        assert_ne!(two[0].id, two[1].id);
    }

    #[test]
    fn unknown_parameter_is_rejected() {
        let error = expand_text("rate = [1]", &params()).unwrap_err();
        assert!(error.message.contains("`rate`"), "{}", error.message);
    }

    #[test]
    fn wrong_value_type_is_rejected() {
        let error = expand_text("units = [\"many\"]", &params()).unwrap_err();
        assert!(error.message.contains("is not an int"), "{}", error.message);
    }
}
