//! `xp doctor`: what a user checks first when something is off.

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
    let text = format!(
        "xp          {}\n\
         libtorch    {} (linked at build time)\n\
         torch threads {}\n\
         cpus        {threads}\n\
         cuda        {}\n\
         workspace   {}\n\
         cache       {} ({cache_state})\n",
        env!("CARGO_PKG_VERSION"),
        env!("XP_LIBTORCH_VERSION"),
        tch::get_num_threads(),
        cuda_summary(),
        workspace.root.display(),
        workspace.cache.display(),
    );
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

fn cuda_summary() -> String {
    if tch::Cuda::is_available() {
        format!("available, {} device(s)", tch::Cuda::device_count())
    } else {
        "not available".to_string()
    }
}
