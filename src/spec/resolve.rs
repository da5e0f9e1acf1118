//! Conversion of one parsed file into a [`Pipeline`]: parameters with their
//! overrides, then each stage with its fields interpolated and checked.

use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;

use super::diagnostic::{Location, SourceFile, SpecError};
use super::interpolate::{self, InterpolationError, Quoting};
use super::load::{ParsedFile, SweepSource};
use super::raw::RawStage;
use super::{sweep, variants};
use super::value::{Value, ValueType};
use super::{Located, Override, Pipeline, Stage};
use crate::stages;

/// Resolves the pipeline a file declares; `None` for a file that only includes others.
pub(super) fn resolve_pipeline(
    file: &ParsedFile,
    overrides: &[Override],
    profile: Option<&str>,
    external_sweep: Option<SweepSource>,
) -> Result<Option<Pipeline>, SpecError> {
    let raw = &file.raw;
    let source = &file.source;
    let Some(name) = &raw.name else {
        if let Some((stage, table)) = raw.stages.first() {
            let location = Location::new(source, table.span());
            return Err(SpecError::at(&location, format!("stage `{stage}` has no pipeline"))
                .with_help("add `name = \"...\"` at the top of the file"));
        }
        return Ok(None);
    };
    check_name(source, name, "pipeline")?;
    for (profile_name, values) in &raw.profiles {
        check_profile(source, &raw.params, name.get_ref(), profile_name, values)?;
    }
    let profile = profile.and_then(|name| raw.profiles.get(name).map(|values| (name, values)));
    let params = resolve_params(source, &raw.params, name.get_ref(), profile, overrides)?;
    let pipeline = name.get_ref();
    let overridden: Vec<&str> = overrides
        .iter()
        .filter(|o| o.pipeline.as_deref().is_none_or(|p| p == pipeline))
        .map(|o| o.param.as_str())
        .collect();
    let sweep = external_sweep.or(raw.sweep.as_ref().map(|table| (source, table)));
    let variants = match sweep {
        Some((sweep_source, table)) => sweep::expand(sweep_source, table, &params, &overridden)?,
        None => Vec::new(),
    };
    let resolve_stages = |params: &BTreeMap<String, Value>, variant: &str| {
        let context = StageContext { source, pipeline, params, variant: Value::Str(variant.to_string()) };
        raw.stages
            .iter()
            .map(|(stage_name, table)| {
                let location = Location::new(source, table.span());
                context.resolve(stage_name, table.get_ref(), location)
            })
            .collect::<Result<Vec<Stage>, SpecError>>()
    };
    let stages = if variants.is_empty() {
        resolve_stages(&params, "")?
    } else {
        let mut per_variant = Vec::new();
        for variant in &variants {
            let mut values = params.clone();
            values.extend(variant.values.iter().map(|(k, v)| (k.clone(), v.clone())));
            per_variant.push(resolve_stages(&values, &variant.id)?);
        }
        variants::merge(pipeline, &variants, per_variant)
    };
    let audit_tolerance = audit_tolerance(source, raw)?;
    Ok(Some(Pipeline { name: pipeline.clone(), params, variants, stages, audit_tolerance }))
}

fn audit_tolerance(source: &Arc<SourceFile>, raw: &super::raw::RawFile) -> Result<Option<f64>, SpecError> {
    let Some(tolerance) = raw.audit.as_ref().and_then(|audit| audit.tolerance.as_ref()) else {
        return Ok(None);
    };
    let value = *tolerance.get_ref();
    if !value.is_finite() || value < 0.0 {
        let location = Location::new(source, tolerance.span());
        return Err(SpecError::at(&location, format!("`audit.tolerance` must be a finite number >= 0, not {value}")));
    }
    Ok(Some(value))
}

/// Letters and digits of any script, `_` and `-`. Spaces, `/`, `@` and `.`
/// are excluded because ids are `pipeline/stage@variant` and appear in
/// progress lines and file names.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn check_name(source: &Arc<SourceFile>, name: &Spanned<String>, what: &str) -> Result<(), SpecError> {
    let text = name.get_ref();
    let valid = !text.is_empty()
        && text.chars().all(is_name_char);
    if valid {
        return Ok(());
    }
    Err(SpecError::at(&Location::new(source, name.span()), format!("invalid {what} name `{text}`"))
        .with_help("use letters, digits, `_` and `-`"))
}

/// Rejects a profile that sets a parameter the pipeline does not declare.
fn check_profile(
    source: &Arc<SourceFile>,
    declared: &IndexMap<String, Spanned<toml::Value>>,
    pipeline: &str,
    profile: &str,
    values: &IndexMap<String, Spanned<toml::Value>>,
) -> Result<(), SpecError> {
    let Some((name, value)) = values.iter().find(|(name, _)| !declared.contains_key(*name)) else {
        return Ok(());
    };
    let location = Location::new(source, value.span());
    Err(SpecError::at(
        &location,
        format!("profile `{profile}` sets `{name}`, which is not a parameter of pipeline `{pipeline}`"),
    )
    .with_suggestion(name, declared.keys().map(String::as_str)))
}

/// Reads parameter declarations and applies the profile and overrides that target them.
fn resolve_params(
    source: &Arc<SourceFile>,
    declared: &IndexMap<String, Spanned<toml::Value>>,
    pipeline: &str,
    profile: Option<(&str, &IndexMap<String, Spanned<toml::Value>>)>,
    overrides: &[Override],
) -> Result<BTreeMap<String, Value>, SpecError> {
    let mut params = BTreeMap::new();
    for (name, declaration) in declared {
        let location = Location::new(source, declaration.span());
        let (ty, default) = parse_declaration(name, declaration.get_ref(), &location)?;
        let mut value = default;
        if let Some(set) = profile.and_then(|(_, values)| values.get(name)) {
            let at = Location::new(source, set.span());
            let given = Value::from_toml(set.get_ref())
                .ok_or_else(|| SpecError::at(&at, format!("`{name}` must be a {}", ty.name())))?;
            let given_type = given.value_type().name();
            value = given.coerce(ty).ok_or_else(|| {
                SpecError::at(&at, format!("`{name}` is a {given_type} here, expected {}", ty.article_name()))
            })?;
        }
        for o in overrides.iter().filter(|o| o.param == *name) {
            if o.pipeline.as_deref().is_some_and(|p| p != pipeline) {
                continue;
            }
            value = Value::parse_for(&o.value, ty).ok_or_else(|| {
                SpecError::plain(format!(
                    "override `-S {}={}`: expected {} for parameter `{name}` of pipeline `{pipeline}`",
                    o.param,
                    o.value,
                    ty.article_name()
                ))
            })?;
        }
        params.insert(name.clone(), value);
    }
    Ok(params)
}

/// Returns the type and default of `name = value` or `name = { type, default }`.
fn parse_declaration(
    name: &str,
    declaration: &toml::Value,
    location: &Location,
) -> Result<(ValueType, Value), SpecError> {
    let toml::Value::Table(table) = declaration else {
        return match Value::from_toml(declaration) {
            Some(value) => Ok((value.value_type(), value)),
            None => Err(SpecError::at(
                location,
                format!("parameter `{name}` must be a bool, int, finite float or string"),
            )),
        };
    };
    if let Some(key) = table.keys().find(|key| !["type", "default", "doc"].contains(&key.as_str())) {
        return Err(SpecError::at(location, format!("unknown key `{key}` in parameter `{name}`"))
            .with_suggestion(key, ["type", "default", "doc"]));
    }
    let default = table.get("default").and_then(Value::from_toml).ok_or_else(|| {
        SpecError::at(location, format!("parameter `{name}` needs a scalar `default`"))
    })?;
    let Some(type_value) = table.get("type") else {
        return Ok((default.value_type(), default));
    };
    let type_name = type_value.as_str().unwrap_or("");
    let ty = ValueType::parse(type_name).ok_or_else(|| {
        SpecError::at(location, format!("parameter `{name}` has unknown type `{type_name}`"))
            .with_suggestion(type_name, ValueType::NAMES)
    })?;
    let default_type = default.value_type().name();
    let default = default.coerce(ty).ok_or_else(|| {
        SpecError::at(
            location,
            format!("default of parameter `{name}` is a {default_type}, expected {}", ty.article_name()),
        )
    })?;
    Ok((ty, default))
}

struct StageContext<'a> {
    source: &'a Arc<SourceFile>,
    pipeline: &'a str,
    params: &'a BTreeMap<String, Value>,
    /// The sweep variant's id, or empty: the value of `${xp.variant}`.
    variant: Value,
}

/// The interpolation name of the current sweep variant's id.
const VARIANT_REFERENCE: &str = "xp.variant";

impl StageContext<'_> {
    fn resolve(&self, name: &str, raw: &RawStage, location: Location) -> Result<Stage, SpecError> {
        let id = format!("{}/{name}", self.pipeline);
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(SpecError::at(&location, format!("invalid stage name `{name}`"))
                .with_help("use letters, digits, `_` and `-`"));
        }
        let kind = raw.kind.get_ref();
        if !stages::kinds().any(|known| known == kind) {
            return Err(SpecError::at(&self.at(&raw.kind), format!("unknown stage kind `{kind}`"))
                .with_suggestion(kind, stages::kinds()));
        }

        let own = self.own_params(raw)?;
        // The stage's own parameters shadow the pipeline's.
        let lookup = |name: &str| {
            if name == VARIANT_REFERENCE {
                return Some(&self.variant);
            }
            own.get(name).or_else(|| self.params.get(name))
        };

        let mut used = BTreeMap::new();
        let mut render = |field: &Spanned<String>, quoting| -> Result<String, SpecError> {
            let text = self.render(field, lookup, quoting)?;
            for reference in interpolate::references(field.get_ref()).unwrap_or_default() {
                if reference == VARIANT_REFERENCE {
                    used.insert(reference, self.variant.clone());
                } else if let (false, Some(value)) = (own.contains_key(&reference), self.params.get(&reference)) {
                    used.insert(reference, value.clone());
                }
            }
            Ok(text)
        };

        let command = raw.command.as_ref().map(|c| render(c, Quoting::Shell)).transpose()?;
        let inputs = self.paths(&raw.inputs, "input", &mut render)?;
        let mut outputs = self.paths(&raw.outputs, "output", &mut render)?;
        if kind != "shell" && outputs.is_empty() {
            // Built-in kinds write one folder, by default named after the stage.
            let value = format!("build/{}/{name}", self.pipeline);
            outputs.push(Located { value, location: location.clone() });
        }
        let mut env = BTreeMap::new();
        for (key, value) in &raw.env {
            env.insert(key.clone(), render(value, Quoting::Raw)?);
        }
        for value in raw.params.values() {
            let mut texts = Vec::new();
            collect_strings(value.get_ref(), &mut texts);
            for reference in texts.into_iter().flat_map(|t| interpolate::references(t).unwrap_or_default()) {
                if let Some(value) = self.params.get(&reference) {
                    used.insert(reference, value.clone());
                }
            }
        }

        check_kind_fields(kind, raw, &location, self.source)?;
        let threads = match &raw.threads {
            None => 1,
            Some(t) if *t.get_ref() >= 1 => *t.get_ref() as usize,
            Some(t) => {
                return Err(SpecError::at(&self.at(t), "`threads` must be at least 1"));
            }
        };
        let memory_mib = match &raw.memory {
            None => None,
            Some(memory) => Some(
                super::executor::parse_memory(memory.get_ref())
                    .map_err(|message| SpecError::at(&self.at(memory), message))?,
            ),
        };
        let needs = raw
            .needs
            .iter()
            .map(|need| {
                let target = need.get_ref();
                let qualified =
                    if target.contains('/') { target.clone() } else { format!("{}/{target}", self.pipeline) };
                Located { value: qualified, location: self.at(need) }
            })
            .collect();

        let mut params = own;
        params.extend(used);
        Ok(Stage {
            id,
            pipeline: self.pipeline.to_string(),
            name: name.to_string(),
            variant: None,
            kind: kind.clone(),
            command_template: raw.command.as_ref().map(|c| c.get_ref().clone()),
            command,
            needs,
            inputs,
            outputs,
            params,
            env,
            threads,
            memory_mib,
            location,
        })
    }

    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        Location::new(self.source, spanned.span())
    }

    /// Resolves the stage's `params` table; a string that is exactly `${name}`
    /// takes the referenced parameter's value and type.
    fn own_params(&self, raw: &RawStage) -> Result<BTreeMap<String, Value>, SpecError> {
        let mut own = BTreeMap::new();
        for (name, value) in &raw.params {
            let resolved = self.own_value(name, value.get_ref(), value)?;
            own.insert(name.clone(), resolved);
        }
        Ok(own)
    }

    /// Resolves one value of a stage's `params`, recursing into lists and
    /// tables; errors point at the parameter as a whole (`field`).
    fn own_value(
        &self,
        name: &str,
        value: &toml::Value,
        field: &Spanned<toml::Value>,
    ) -> Result<Value, SpecError> {
        match value {
            toml::Value::String(text) => match interpolate::whole_reference(text) {
                Some(reference) => match self.params.get(reference) {
                    Some(value) => Ok(value.clone()),
                    None => Err(self.unknown_reference(field, reference, 0)),
                },
                None => {
                    let spanned = Spanned::new(field.span(), text.clone());
                    Ok(Value::Str(self.render(&spanned, |n| self.params.get(n), Quoting::Raw)?))
                }
            },
            toml::Value::Array(items) => {
                let items = items.iter().map(|item| self.own_value(name, item, field));
                Ok(Value::List(items.collect::<Result<_, _>>()?))
            }
            toml::Value::Table(table) => {
                let mut resolved = BTreeMap::new();
                for (key, item) in table {
                    resolved.insert(key.clone(), self.own_value(name, item, field)?);
                }
                Ok(Value::Table(resolved))
            }
            other => Value::from_toml(other).ok_or_else(|| {
                SpecError::at(
                    &self.at(field),
                    format!("stage parameter `{name}` contains a date or time, which is not supported"),
                )
            }),
        }
    }

    fn render<'v>(
        &self,
        field: &Spanned<String>,
        lookup: impl Fn(&str) -> Option<&'v Value>,
        quoting: Quoting,
    ) -> Result<String, SpecError> {
        interpolate::render(field.get_ref(), lookup, quoting).map_err(|err| match err {
            InterpolationError::Unknown(reference) => {
                self.unknown_reference(field, &reference.name, reference.offset)
            }
            InterpolationError::Malformed { offset, message } => {
                SpecError::at(&self.inside(field, offset, 2), message)
            }
        })
    }

    fn unknown_reference<T>(&self, field: &Spanned<T>, name: &str, offset: usize) -> SpecError {
        let location = self.inside(field, offset, name.len() + 3);
        SpecError::at(&location, format!("parameter `{name}` not found"))
            .with_suggestion(name, self.params.keys().map(String::as_str))
    }

    /// Locates `len` bytes at `offset` inside a string value, skipping its
    /// opening quote; escapes in the string can shift the column.
    fn inside<T>(&self, field: &Spanned<T>, offset: usize, len: usize) -> Location {
        let span = field.span();
        let quote = self.source.text[span.start..].starts_with(['"', '\'']) as usize;
        let start = span.start + quote + offset;
        Location::new(self.source, start..start + len)
    }

    fn paths(
        &self,
        fields: &[Spanned<String>],
        what: &str,
        render: &mut impl FnMut(&Spanned<String>, Quoting) -> Result<String, SpecError>,
    ) -> Result<Vec<Located<String>>, SpecError> {
        let mut paths = Vec::new();
        for field in fields {
            let text = render(field, Quoting::Raw)?;
            let location = self.at(field);
            let normal = normalise_path(&text)
                .map_err(|problem| SpecError::at(&location, format!("{what} `{text}` {problem}")))?;
            paths.push(Located { value: normal, location });
        }
        Ok(paths)
    }
}

/// Appends every string inside `value` to `texts`.
fn collect_strings<'a>(value: &'a toml::Value, texts: &mut Vec<&'a str>) {
    match value {
        toml::Value::String(text) => texts.push(text),
        toml::Value::Array(items) => items.iter().for_each(|item| collect_strings(item, texts)),
        toml::Value::Table(table) => table.values().for_each(|item| collect_strings(item, texts)),
        _ => {}
    }
}

/// Rejects fields that make no sense for the stage's kind.
fn check_kind_fields(
    kind: &str,
    raw: &RawStage,
    location: &Location,
    source: &Arc<SourceFile>,
) -> Result<(), SpecError> {
    if kind == "shell" {
        if raw.command.is_none() {
            return Err(SpecError::at(location, "a `shell` stage needs a `command`"));
        }
        return Ok(());
    }
    if let Some(command) = &raw.command {
        let at = Location::new(source, command.span());
        return Err(SpecError::at(&at, format!("a `{kind}` stage takes no `command`"))
            .with_help("only `shell` stages run commands; set the kind's parameters in `params`"));
    }
    if raw.outputs.len() > 1 {
        let at = Location::new(source, raw.outputs[1].span());
        return Err(SpecError::at(&at, format!("a `{kind}` stage writes one output folder")));
    }
    Ok(())
}

/// Turns a workspace-relative path into `a/b/c` form; rejects absolute paths
/// and paths that climb out of the workspace with `..`.
pub fn normalise_path(text: &str) -> Result<String, &'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::CurDir => {}
            Component::ParentDir => return Err("leaves the workspace (`..` is not allowed)"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("is absolute; paths are relative to the workspace")
            }
        }
    }
    if parts.is_empty() {
        return Err("is empty");
    }
    Ok(parts.join("/"))
}
