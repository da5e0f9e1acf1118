//! The `traffic_score` stage kind: scores a DeepTraffic driver with the
//! competition's protocol.
//!
//! The driver is a trained DQN from one `traffic_train` stage upstream, or,
//! with the `policy` parameter, a reference policy: `nothing`, `accelerate`,
//! `decelerate`, `random` (uniform actions from a seeded stream) or `rule`
//! (move to a side lane whose clear run ahead is `rule_margin` (3) rows
//! longer, else accelerate; it sees 1 lane each side and 10 rows ahead).
//! Parameters: `runs` (500), `frames` (2000), `faithful` (true, or the
//! trained agent's setting), `other_agents` (0, or the trained agent's), `seed`
//! (1, for the random policy) and `record_run` (1), the run whose frames are
//! kept for the space-time picture.
//!
//! Output: `metrics.json` (`median_mph`, the main metric, higher is better;
//! mean, min and max mph; the count of each action the ego chose),
//! `runs.json` (each run's mph, in run order) and `trace.json` (the recorded
//! run: for each frame and car, its x and y in px, car 0 being the ego).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xp::stages::StageJob;

use crate::model::load_weights;
use crate::traffic::brain::Brain;
use crate::traffic::policy::{Fixed, Random, RuleBased};
use crate::traffic::rng::ParkMiller;
use crate::traffic::{score, Action, Config, Driver, Recorder, View, World};

use super::traffic_train::{usize_param, Trained};

#[derive(Serialize)]
struct Metrics {
    policy: String,
    main_metric: &'static str,
    higher_is_better: bool,
    median_mph: f64,
    mean_mph: f64,
    min_mph: f64,
    max_mph: f64,
    runs: usize,
    frames: usize,
    other_agents: usize,
    faithful: bool,
    /// Ego decisions per action: nothing, accelerate, decelerate, left, right.
    action_counts: [u64; 5],
}

/// The recorded run's cars, one entry per frame.
#[derive(Serialize, Deserialize, Default)]
pub struct Trace {
    pub controlled: usize,
    /// `frames[f][car] = [x, y]`, rounded to 0.1 px.
    pub frames: Vec<Vec<[f32; 2]>>,
}

struct Collector {
    record_run: usize,
    trace: Trace,
    action_counts: [u64; 5],
}

impl Recorder for Collector {
    fn frame(&mut self, run: usize, world: &World, decided: &[(usize, usize)]) {
        for &(agent, action) in decided {
            if agent == 0 && action < 5 {
                self.action_counts[action] += 1;
            }
        }
        if run == self.record_run {
            let round = |v: f64| ((v * 10.0).round() / 10.0) as f32;
            self.trace.frames.push(world.cars.iter().map(|c| [round(c.x), round(c.y)]).collect());
        }
    }
}

pub fn run(job: &StageJob) -> Result<()> {
    tch::set_num_threads(1);
    let runs = usize_param(job, "runs", 500)?.max(1);
    let frames = usize_param(job, "frames", 2000)?.max(1);
    let (name, mut driver, mut game) = driver(job)?;
    if let Some(other) = job.param("other_agents").map(|_| usize_param(job, "other_agents", 0)) {
        game.other_agents = other?.min(10);
    }
    game.faithful = job.boolean("faithful", game.faithful)?;
    let mut collector = Collector {
        record_run: usize_param(job, "record_run", 1)?,
        trace: Trace { controlled: game.other_agents + 1, frames: Vec::new() },
        action_counts: [0; 5],
    };
    let result = score(game, runs, frames, driver.as_mut(), &mut collector);
    eprintln!("{name}: median {:.2} mph, mean {:.2} over {runs} runs", result.median, result.mean);
    let metrics = Metrics {
        policy: name,
        main_metric: "median_mph",
        higher_is_better: true,
        median_mph: result.median,
        mean_mph: (result.mean * 100.0).round() / 100.0,
        min_mph: result.min,
        max_mph: result.max,
        runs,
        frames,
        other_agents: game.other_agents,
        faithful: game.faithful,
        action_counts: collector.action_counts,
    };
    write_json(&job.output.join("metrics.json"), &metrics)?;
    write_json(&job.output.join("runs.json"), &result.runs)?;
    write_json(&job.output.join("trace.json"), &collector.trace)
}

/// Builds the driver named by `policy`, or loads the upstream trained brain.
fn driver(job: &StageJob) -> Result<(String, Box<dyn Driver>, Config)> {
    let basic = Config::default();
    let policy = job.string("policy", "")?;
    let fixed = |action| -> Box<dyn Driver> { Box::new(Fixed(action)) };
    let driver: Box<dyn Driver> = match policy.as_str() {
        "" => return trained(job),
        "nothing" => fixed(Action::Nothing),
        "accelerate" => fixed(Action::Accelerate),
        "decelerate" => fixed(Action::Decelerate),
        "random" => Box::new(Random(ParkMiller::new(job.int("seed", 1)?))),
        "rule" => {
            let margin = usize_param(job, "rule_margin", 3)?;
            Box::new(RuleBased { view: View::BASIC, margin })
        }
        other => bail!(
            "parameter `policy` of stage `{}` must be nothing, accelerate, decelerate, random or rule, not `{other}`",
            job.stage
        ),
    };
    Ok((policy, driver, basic))
}

fn trained(job: &StageJob) -> Result<(String, Box<dyn Driver>, Config)> {
    let folder = job.upstream_of_kind("traffic_train")?;
    let text = std::fs::read_to_string(folder.join("brain.json"))
        .with_context(|| format!("failed to read `{}`", folder.join("brain.json").display()))?;
    let trained: Trained = serde_json::from_str(&text).context("`brain.json` is invalid")?;
    let mut brain = Brain::new(trained.brain.clone(), 0)?;
    load_weights(&mut brain.vs, &folder.join("weights.safetensors"))?;
    let game = Config { other_agents: trained.other_agents, view: trained.brain.view(), faithful: trained.faithful };
    Ok(("dqn".to_string(), Box::new(brain), game))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).context("failed to encode JSON")?;
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}
