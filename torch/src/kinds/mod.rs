//! One module per built-in stage kind. Each reads its upstream stages' output
//! folders and its parameters from the job, and writes into `job.output`.

mod download;
mod build;
mod evaluate;
mod gan_evaluate;
mod gan_plot;
mod gan_train;
mod normalise;
mod plot;
mod seg_build;
mod seg_evaluate;
mod seg_generate;
mod seg_import;
mod seg_plot;
mod seg_train;
mod traffic_plot;
mod traffic_score;
mod traffic_train;
mod train;

use anyhow::{bail, Result};
use xp::stages::StageJob;

/// Runs the stage described by `job`.
pub fn run(job: &StageJob) -> Result<()> {
    match job.kind.as_str() {
        "download" => download::run(job),
        "normalise" => normalise::run(job),
        "build" => build::run(job),
        "train" => train::run(job),
        "evaluate" => evaluate::run(job),
        "plot" => plot::run(job),
        "gan_train" => gan_train::run(job),
        "gan_evaluate" => gan_evaluate::run(job),
        "gan_plot" => gan_plot::run(job),
        "seg_generate" => seg_generate::run(job),
        "seg_import" => seg_import::run(job),
        "seg_build" => seg_build::run(job),
        "seg_train" => seg_train::run(job),
        "seg_evaluate" => seg_evaluate::run(job),
        "seg_plot" => seg_plot::run(job),
        "traffic_train" => traffic_train::run(job),
        "traffic_score" => traffic_score::run(job),
        "traffic_plot" => traffic_plot::run(job),
        kind => bail!("stage kind `{kind}` is not built in to this xp-torch"),
    }
}

#[cfg(test)]
mod tests;
