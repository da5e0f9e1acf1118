//! One module per built-in stage kind. Each reads its upstream stages' output
//! folders and its parameters from the job, and writes into `job.output`.

mod download;

use anyhow::{bail, Result};
use xp::stages::StageJob;

/// Runs the stage described by `job`.
pub fn run(job: &StageJob) -> Result<()> {
    match job.kind.as_str() {
        "download" => download::run(job),
        kind => bail!("stage kind `{kind}` is not built in to this xp-torch"),
    }
}
