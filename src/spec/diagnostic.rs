//! Errors in pipeline files, located by file, line and column and rendered with
//! the offending source line and carets under the problem.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A pipeline file's text, shared by every location that points into it.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// A byte range in a pipeline file.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: Arc<SourceFile>,
    pub span: Range<usize>,
}

impl Location {
    pub fn new(file: &Arc<SourceFile>, span: Range<usize>) -> Self {
        Location { file: Arc::clone(file), span }
    }

    /// Returns the 1-based line and column of the span's start.
    pub fn line_col(&self) -> (usize, usize) {
        let text = &self.file.text;
        let start = self.span.start.min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..start].chars().count() + 1;
        (line, col)
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// An error in a pipeline file or in a command-line override of it.
#[derive(Debug)]
pub struct SpecError {
    pub message: String,
    pub location: Option<Location>,
    pub help: Option<String>,
}

impl SpecError {
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        SpecError { message: message.into(), location: Some(location.clone()), help: None }
    }

    /// An error with no position in a file, such as a bad `-S` override.
    pub fn plain(message: impl Into<String>) -> Self {
        SpecError { message: message.into(), location: None, help: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a "did you mean" hint when one of `candidates` is close to `word`.
    pub fn with_suggestion<'a>(
        self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        match closest(word, candidates) {
            Some(best) => self.with_help(format!("did you mean `{best}`?")),
            None => self,
        }
    }
}

impl std::error::Error for SpecError {}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(location) = &self.location else {
            write!(f, "{}", self.message)?;
            if let Some(help) = &self.help {
                write!(f, "\n  = help: {help}")?;
            }
            return Ok(());
        };
        let (line, col) = location.line_col();
        writeln!(f, "{}", self.message)?;
        writeln!(f, "  --> {}:{line}:{col}", location.path().display())?;
        let text = &location.file.text;
        let source_line = text.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string().len();
        let width = caret_width(source_line, col, location.span.len());
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{line} | {source_line}")?;
        write!(f, "{:gutter$} | {}{}", "", " ".repeat(col - 1), "^".repeat(width))?;
        if let Some(help) = &self.help {
            write!(f, "\n{:gutter$} = help: {help}", "")?;
        }
        Ok(())
    }
}

/// Width of the caret run: the span, cut at the end of its first line, at least one.
fn caret_width(source_line: &str, col: usize, span_len: usize) -> usize {
    let rest = source_line.chars().count().saturating_sub(col - 1);
    span_len.min(rest).max(1)
}

/// Returns the candidate most similar to `word`, if any is similar enough to be
/// a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}
