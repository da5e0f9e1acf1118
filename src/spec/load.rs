//! Reading pipeline files and following their `include` lists.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostic::{closest, Location, SourceFile, SpecError};
use super::raw::RawFile;
use super::resolve::resolve_pipeline;
use super::{ExecutorSettings, Override, Project};

/// A parsed file together with its source, for locating later errors.
pub(super) struct ParsedFile {
    pub source: Arc<SourceFile>,
    pub raw: RawFile,
}

/// Loads `root` and every file it includes, applies the `profile` (when
/// given) and then `overrides`, and checks everything that can be checked
/// without running a stage.
pub fn load_project(
    root: &Path,
    overrides: &[Override],
    profile: Option<&str>,
) -> Result<Project, SpecError> {
    let mut files = Vec::new();
    let mut visiting = Vec::new();
    let mut loaded = HashSet::new();
    collect(root, None, &mut visiting, &mut loaded, &mut files)?;

    check_overrides(&files, overrides)?;
    let sweeps = collect_sweeps(&files)?;
    if let Some(name) = profile {
        if !files.iter().any(|file| file.raw.profiles.contains_key(name)) {
            let known = files.iter().flat_map(|file| file.raw.profiles.keys().map(String::as_str));
            return Err(SpecError::plain(format!("profile `{name}` not found"))
                .with_suggestion(name, known));
        }
    }
    let mut pipelines = Vec::new();
    let mut names: Vec<(String, Location)> = Vec::new();
    for file in &files {
        let sweep = file.raw.name.as_ref().and_then(|name| sweeps.get(name.get_ref().as_str()).copied());
        let Some(pipeline) = resolve_pipeline(file, overrides, profile, sweep)? else { continue };
        let location = pipeline_location(file);
        if let Some((_, first)) = names.iter().find(|(name, _)| *name == pipeline.name) {
            let (line, _) = first.line_col();
            return Err(SpecError::at(
                &location,
                format!("pipeline `{}` is declared twice", pipeline.name),
            )
            .with_help(format!("first declared in {}:{line}", first.path().display())));
        }
        names.push((pipeline.name.clone(), location));
        pipelines.push(pipeline);
    }
    if pipelines.is_empty() {
        return Err(SpecError::plain(format!("`{}` declares no stages", root.display())));
    }
    // `collect` appends each file after the files it includes, so the root is last.
    let root_file = files.last().expect("the root file was loaded");
    let executor = match &root_file.raw.executor {
        Some(table) => super::executor::resolve(&root_file.source, table.get_ref())?,
        None => ExecutorSettings::default(),
    };
    Ok(Project { pipelines, executor })
}

fn pipeline_location(file: &ParsedFile) -> Location {
    let span = file.raw.name.as_ref().map_or(0..0, |name| name.span());
    Location::new(&file.source, span)
}

/// Depth-first walk over includes; `visiting` is the current chain, to report
/// include cycles, and `loaded` skips files reached twice without a cycle.
fn collect(
    path: &Path,
    included_at: Option<&Location>,
    visiting: &mut Vec<PathBuf>,
    loaded: &mut HashSet<PathBuf>,
    files: &mut Vec<ParsedFile>,
) -> Result<(), SpecError> {
    let canonical = fs::canonicalize(path).map_err(|err| {
        read_error(path, included_at, &err.to_string())
    })?;
    if let Some(start) = visiting.iter().position(|p| *p == canonical) {
        let chain: Vec<String> = visiting[start..]
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| p.display().to_string())
            .collect();
        let message = format!("include cycle: {}", chain.join(" -> "));
        return Err(match included_at {
            Some(location) => SpecError::at(location, message),
            None => SpecError::plain(message),
        });
    }
    if !loaded.insert(canonical.clone()) {
        return Ok(());
    }
    let text = fs::read_to_string(path)
        .map_err(|err| read_error(path, included_at, &err.to_string()))?;
    let source = Arc::new(SourceFile { path: path.to_path_buf(), text });
    let raw: RawFile = parse(&source)?;
    visiting.push(canonical);
    let base = path.parent().unwrap_or(Path::new("."));
    for include in &raw.include {
        let location = Location::new(&source, include.span());
        collect(&base.join(include.get_ref()), Some(&location), visiting, loaded, files)?;
    }
    visiting.pop();
    files.push(ParsedFile { source, raw });
    Ok(())
}

fn read_error(path: &Path, included_at: Option<&Location>, cause: &str) -> SpecError {
    let message = format!("failed to read pipeline file `{}`: {cause}", path.display());
    match included_at {
        Some(location) => SpecError::at(location, message),
        None => SpecError::plain(message),
    }
}

/// Parses TOML into `T`, such as [`RawFile`], turning serde's unknown-field
/// errors into a located message with a "did you mean" hint.
pub(super) fn parse<T: serde::de::DeserializeOwned>(source: &Arc<SourceFile>) -> Result<T, SpecError> {
    toml::from_str(&source.text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        let location = Location::new(source, span);
        let message = err.message().trim().to_string();
        match unknown_field(&message) {
            Some(field) => {
                let expected = expected_fields(&message);
                let error = SpecError::at(&location, format!("unknown key `{field}`"));
                match closest(field, expected.iter().copied()) {
                    Some(best) => error.with_help(format!("did you mean `{best}`?")),
                    None => error.with_help(format!("expected one of {}", quote_list(&expected))),
                }
            }
            None => SpecError::at(&location, message),
        }
    })
}

/// Extracts `x` from serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn expected_fields(message: &str) -> Vec<&str> {
    let Some((_, expected)) = message.split_once("expected") else { return Vec::new() };
    expected.split('`').skip(1).step_by(2).collect()
}

fn quote_list(items: &[&str]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

/// A sweep table with the file it was written in.
pub(super) type SweepSource<'a> = (&'a Arc<SourceFile>, &'a toml::Spanned<toml::Table>);

/// Gathers `[sweeps.PIPELINE]` tables from every file, checking that each
/// names a pipeline and that no pipeline is swept by two files.
fn collect_sweeps(files: &[ParsedFile]) -> Result<std::collections::HashMap<&str, SweepSource<'_>>, SpecError> {
    let names: Vec<&str> = files.iter().filter_map(|f| f.raw.name.as_ref()).map(|n| n.get_ref().as_str()).collect();
    let mut sweeps = std::collections::HashMap::new();
    for file in files {
        for (pipeline, table) in &file.raw.sweeps {
            let location = Location::new(&file.source, table.span());
            if !names.contains(&pipeline.as_str()) {
                return Err(SpecError::at(&location, format!("`[sweeps.{pipeline}]` names no included pipeline"))
                    .with_suggestion(pipeline, names.iter().copied()));
            }
            if sweeps.insert(pipeline.as_str(), (&file.source, table)).is_some() {
                return Err(SpecError::at(&location, format!("pipeline `{pipeline}` is swept twice")));
            }
        }
    }
    Ok(sweeps)
}

/// Rejects overrides that match no parameter of any pipeline.
fn check_overrides(files: &[ParsedFile], overrides: &[Override]) -> Result<(), SpecError> {
    for o in overrides {
        let named = |file: &&ParsedFile| {
            o.pipeline.as_deref().is_none_or(|p| file.raw.name.as_ref().is_some_and(|n| n.get_ref() == p))
        };
        let candidates: Vec<&ParsedFile> = files.iter().filter(named).collect();
        if let Some(pipeline) = &o.pipeline {
            if candidates.is_empty() {
                let names = files.iter().filter_map(|f| f.raw.name.as_ref()).map(|n| n.get_ref().as_str());
                return Err(SpecError::plain(format!("override `-S {pipeline}.{}`: pipeline `{pipeline}` not found", o.param))
                    .with_suggestion(pipeline, names));
            }
        }
        if !candidates.iter().any(|file| file.raw.params.contains_key(&o.param)) {
            let params = candidates.iter().flat_map(|f| f.raw.params.keys()).map(String::as_str);
            return Err(SpecError::plain(format!("override `-S {}`: parameter `{}` not found", o.param, o.param))
                .with_suggestion(&o.param, params));
        }
    }
    Ok(())
}
