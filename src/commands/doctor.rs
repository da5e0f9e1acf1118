//! `xp doctor`: what a user checks first when something is off.

use std::process::Command;

use anyhow::Result;

use super::{human_bytes, print_stdout, Outcome, Workspace};
use crate::cache::folder_size;

pub fn doctor(workspace: &Workspace) -> Result<Outcome> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cache_state = if workspace.cache.exists() {
        human_bytes(folder_size(&workspace.cache))
    } else {
        "not created yet".to_string()
    };
    let mut text = format!("xp: {}\n", env!("CARGO_PKG_VERSION"));
    text.push_str(&torch_info());
    text.push_str(&format!(
        "cpus: {threads}\nworkspace: {}\ncache: {} ({cache_state})\n",
        workspace.root.display(),
        workspace.cache.display(),
    ));
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

/// Asks `xp-torch`, installed next to `xp`, about libtorch; libtorch is loaded
/// only in that process.
fn torch_info() -> String {
    let sibling = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("xp-torch")));
    let Some(path) = sibling.filter(|p| p.exists()) else {
        return "libtorch: unknown (`xp-torch` not found next to `xp`)\n".to_string();
    };
    match Command::new(&path).arg("info").output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).into_owned(),
        Ok(output) => format!(
            "libtorch: failed to load ({}): {}\n",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(err) => format!("libtorch: failed to start `{}`: {err}\n", path.display()),
    }
}
