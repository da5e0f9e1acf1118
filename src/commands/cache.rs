//! `xp rebuild-index`: a new cache index from the entry records.

use anyhow::Result;

use super::{print_stdout, Outcome, Workspace};
use crate::cache::{Cache, WhenBusy};

pub fn rebuild_index(workspace: &Workspace) -> Result<Outcome> {
    let report = Cache::rebuild_index(&workspace.cache, WhenBusy::Wait)?;
    let mut text = String::new();
    if let Some(aside) = &report.moved_to {
        text.push_str(&format!("moved the old index to `{}`\n", aside.display()));
    }
    text.push_str(&format!(
        "rebuilt the index: {} entries, latest results of {} stages\n",
        report.entries, report.stages
    ));
    for (path, reason) in &report.unreadable {
        text.push_str(&format!("skipped the unreadable record `{}`: {reason}\n", path.display()));
    }
    for key in &report.incomplete {
        text.push_str(&format!("skipped entry `{key}`: a cache object it refers to is missing\n"));
    }
    print_stdout(&text)?;
    Ok(Outcome::Success)
}
