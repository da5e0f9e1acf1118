//! The audit report, as Markdown for reviewers and JSON for tools.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::{StageAudit, Verdict};
use crate::environment::Environment;

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub pipeline: String,
    pub lock: String,
    pub started: String,
    pub host: String,
    /// The machine the audit ran on.
    pub environment: Environment,
    /// The machine the lock file was written on.
    pub lock_environment: Environment,
    /// The relative tolerance used for numbers, by pipeline.
    pub tolerances: std::collections::BTreeMap<String, f64>,
    pub stages: Vec<StageAudit>,
}

impl AuditReport {
    /// Counts the stages by verdict label.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let labels = ["bit-identical", "numerically close", "diverged", "not audited"];
        labels
            .iter()
            .map(|label| (*label, self.stages.iter().filter(|s| s.verdict.label() == *label).count()))
            .collect()
    }

    pub fn passed(&self) -> bool {
        self.stages.iter().all(|s| s.verdict.passed())
    }

    pub fn to_markdown(&self) -> String {
        let mut text = format!("# Audit of `{}`\n\n", self.pipeline);
        let _ = writeln!(text, "Each stage was rerun in a scratch folder without the cache and its outputs");
        let _ = writeln!(text, "were compared with the lock file `{}`.\n", self.lock);
        let _ = writeln!(text, "- started: {} on `{}`", self.started, self.host);
        let env = &self.environment;
        let _ = writeln!(text, "- machine: {}, {} CPUs, {}", env.cpu_model, env.cpus, env.os);
        let libtorch = env.libtorch_version.as_deref().unwrap_or("not used");
        let _ = writeln!(text, "- xp {}, libtorch {libtorch}", env.xp_version);
        let changes = self.lock_environment.differences(env);
        if changes.is_empty() {
            let _ = writeln!(text, "- the lock was written on the same kind of machine");
        } else {
            let _ = writeln!(text, "- differences from the machine that wrote the lock: {}", changes.join("; "));
        }
        for (pipeline, tolerance) in &self.tolerances {
            let _ = writeln!(text, "- relative tolerance for numbers in `{pipeline}`: {tolerance:e}");
        }
        let counts: Vec<String> = self.counts().iter().map(|(label, n)| format!("{n} {label}")).collect();
        let _ = writeln!(text, "\n**Result: {}.** {}\n", if self.passed() { "reproduced" } else { "NOT reproduced" }, counts.join(", "));
        let _ = writeln!(text, "| stage | kind | threads | verdict | cache matches lock | seconds |");
        let _ = writeln!(text, "|---|---|---:|---|---|---:|");
        for stage in &self.stages {
            let verdict = match &stage.verdict {
                Verdict::NumericallyClose { max_relative_difference } => {
                    format!("numerically close (max relative difference {max_relative_difference:.2e})")
                }
                other => other.label().to_string(),
            };
            let cache = if stage.cache_matches_lock { "yes" } else { "no" };
            let _ = writeln!(
                text,
                "| `{}` | {} | {} | {verdict} | {cache} | {:.1} |",
                stage.stage, stage.kind, stage.threads, stage.seconds
            );
        }
        let failing: Vec<&StageAudit> = self.stages.iter().filter(|s| !s.verdict.passed()).collect();
        if !failing.is_empty() {
            let _ = writeln!(text, "\n## What did not reproduce\n");
        }
        for stage in failing {
            let _ = writeln!(text, "### `{}`\n", stage.stage);
            match &stage.verdict {
                Verdict::Diverged { differences } => {
                    for difference in differences {
                        let _ = writeln!(text, "- {difference}");
                    }
                }
                Verdict::NotAudited { reason } => {
                    let _ = writeln!(text, "- {}", reason.replace('\n', " "));
                }
                _ => {}
            }
            if let Some(log) = &stage.log {
                let _ = writeln!(text, "- log of the rerun: `{}`", log.display());
            }
            text.push('\n');
        }
        text
    }
}

/// Writes `audit.md` and `audit.json` into `folder`; returns their paths.
pub fn write_reports(report: &AuditReport, folder: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(folder).with_context(|| format!("failed to create `{}`", folder.display()))?;
    let markdown = folder.join("audit.md");
    fs::write(&markdown, report.to_markdown()).with_context(|| format!("failed to write `{}`", markdown.display()))?;
    let json = folder.join("audit.json");
    let mut text = serde_json::to_string_pretty(report).context("failed to encode the audit report")?;
    text.push('\n');
    fs::write(&json, text).with_context(|| format!("failed to write `{}`", json.display()))?;
    Ok(vec![markdown, json])
}
