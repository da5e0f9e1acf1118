//! The `seg_build` stage kind: describes an encoder-decoder segmentation
//! network (see the `seg::model` module) and writes seeded initial weights.
//!
//! Upstream: one scene data stage (`seg_generate` or `seg_import`), whose
//! image size the network must divide. Parameters and defaults:
//! - `widths`: the encoder's channels per level, a list of ints or a
//!   comma-separated string; without it, `width` (8) doubled at each of
//!   `levels` (4) levels;
//! - `convs` (2): 3x3 convolutions per block;
//! - `dilations` (none): dilation rates of residual 3x3 convolutions at the
//!   coarsest level, a list or a comma-separated string such as `"2,4"`
//!   (`"none"` or `""` for none);
//! - `upsampling` (`transpose`, or `bilinear`), `skips` (true);
//! - `seed` (0): seed of the initial weights.
//!
//! Output: `seg_model.json` (a `SegSpec`) and `init.safetensors`.

use anyhow::{bail, Result};
use tch::nn::VarStore;
use xp::spec::Value;
use xp::stages::StageJob;

use crate::model::save_weights;
use crate::seg::model::{SegNet, SegSpec};
use crate::seg::{data_upstream, write_json, SceneMeta, CLASS_COUNT};

pub fn run(job: &StageJob) -> Result<()> {
    let meta = SceneMeta::read(data_upstream(job)?)?;
    let widths = match job.param("widths") {
        Some(_) => int_list(job, "widths")?,
        None => {
            let (width, levels) = (job.int("width", 8)?, job.int("levels", 4)?);
            if !(1..=8).contains(&levels) {
                bail!(
                    "`levels` of stage `{}` must be 1 to 8, not {levels}",
                    job.stage
                );
            }
            (0..levels).map(|level| width << level).collect()
        }
    };
    let spec = SegSpec {
        classes: CLASS_COUNT,
        widths,
        convs: job.int("convs", 2)?,
        dilations: int_list(job, "dilations")?,
        upsampling: job.string("upsampling", "transpose")?,
        skips: job.boolean("skips", true)?,
        seed: job.int("seed", 0)?,
    };
    spec.check()
        .map_err(|err| err.context(format!("stage `{}` cannot build its network", job.stage)))?;
    spec.check_size(meta.width, meta.height)?;

    tch::manual_seed(spec.seed);
    let vs = VarStore::new(tch::Device::Cpu);
    SegNet::new(&vs.root(), &spec)?;
    let count: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    eprintln!(
        "built an encoder-decoder of {} levels and {count} parameters",
        spec.widths.len()
    );
    write_json(&job.output.join("seg_model.json"), &spec)?;
    save_weights(&vs, &job.output.join("init.safetensors"))
}

/// Returns a list of ints given as a TOML list, a comma-separated string or
/// one int. An absent parameter, an empty string or `none` gives an empty
/// list.
fn int_list(job: &StageJob, name: &str) -> Result<Vec<i64>> {
    let invalid = |shown: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "parameter `{name}` of stage `{}` must be a list of ints, not `{shown}`",
            job.stage
        )
    };
    match job.param(name) {
        None => Ok(Vec::new()),
        Some(Value::Int(i)) => Ok(vec![*i]),
        Some(Value::Str(text)) if text.trim() == "none" => Ok(Vec::new()),
        Some(Value::Str(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| part.parse::<i64>().map_err(|_| invalid(&text)))
            .collect(),
        Some(Value::List(items)) => items
            .iter()
            .map(|item| match item {
                Value::Int(i) => Ok(*i),
                other => Err(invalid(other)),
            })
            .collect(),
        Some(other) => Err(invalid(other)),
    }
}
