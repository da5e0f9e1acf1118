//! The `traffic_train` stage kind: trains a DQN to drive in DeepTraffic.
//!
//! No upstream. Parameters, with the competition's knobs under their own
//! names and the defaults of its `network_basic.js`:
//! - view: `lanes_side` (1), `patches_ahead` (10), `patches_behind` (0);
//! - net: `temporal_window` (0), `hidden_layers` (`"10"`: comma-separated
//!   widths, or a list of ints);
//! - SGD: `learning_rate` (0.001), `momentum` (0), `batch_size` (64),
//!   `l2_decay` (0.01);
//! - Q-learning: `gamma` (0.5), `experience_size` (3000),
//!   `start_learn_threshold` (500), `learning_steps_total` (10000),
//!   `learning_steps_burnin` (1000), `epsilon_min` (0), `epsilon_test_time` (0);
//! - game: `train_iterations` (30000 ego decisions, 30 frames each),
//!   `other_agents` (0), `faithful` (true);
//! - `seed` (1): seeds the weights, exploration and training runs;
//! - learning curve: every `eval_every` decisions (2500), the mean reward
//!   since the previous point and the greedy agent's median mph over the
//!   first `eval_runs` runs (10) of the scoring protocol.
//!
//! Training follows the in-browser protocol: `30 * train_iterations` frames
//! cut into `floor(frames / 100000) + 1` runs of equal length with random
//! seeds, clones acting at random, one learning step per ego decision.
//!
//! Output: `weights.safetensors`, `brain.json` (the configuration and game
//! settings), `history.json` (the learning curve) and `volatile/timing.json`
//! (seconds and frames per second). With the same seed everything but the
//! timing is identical byte for byte.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xp::spec::Value;
use xp::stages::StageJob;

use crate::model::save_weights;
use crate::traffic::brain::{Brain, BrainConfig};
use crate::traffic::rng::ParkMiller;
use crate::traffic::{score, Config, NoRecorder, World};

/// Game settings saved beside the brain, so scoring replays them.
#[derive(Serialize, Deserialize)]
pub struct Trained {
    pub brain: BrainConfig,
    pub other_agents: usize,
    pub faithful: bool,
}

#[derive(Serialize)]
struct Point {
    decisions: u64,
    frames: u64,
    epsilon: f64,
    mean_reward: f64,
    mean_loss: Option<f64>,
    eval_mph: f64,
}

#[derive(Serialize)]
struct Timing {
    seconds: f64,
    frames_per_second: f64,
}

pub fn run(job: &StageJob) -> Result<()> {
    tch::set_num_threads(1);
    let config = brain_config(job)?;
    let trained = Trained {
        brain: config.clone(),
        other_agents: usize_param(job, "other_agents", 0)?,
        faithful: job.boolean("faithful", true)?,
    };
    if trained.other_agents > 10 {
        bail!("`other_agents` of stage `{}` must be 0 to 10", job.stage);
    }
    let iterations = job.int("train_iterations", 30000)?.max(1) as u64;
    let eval_every = job.int("eval_every", 2500)?.max(1) as u64;
    let eval_runs = usize_param(job, "eval_runs", 10)?;
    let seed = job.int("seed", 1)?;
    let mut brain = Brain::new(config, seed)
        .with_context(|| format!("stage `{}` has an invalid network", job.stage))?;

    let started = Instant::now();
    let history = train(&mut brain, &trained, iterations, eval_every, eval_runs, seed);
    let seconds = started.elapsed().as_secs_f64();

    save_weights(&brain.vs, &job.output.join("weights.safetensors"))?;
    write_json(&job.output.join("brain.json"), &trained)?;
    write_json(&job.output.join("history.json"), &history)?;
    std::fs::create_dir_all(job.output.join("volatile"))?;
    let frames = 30 * iterations;
    let timing = Timing { seconds, frames_per_second: frames as f64 / seconds.max(1e-9) };
    eprintln!("trained {iterations} decisions in {seconds:.1} s");
    write_json(&job.output.join("volatile/timing.json"), &timing)
}

fn train(
    brain: &mut Brain,
    trained: &Trained,
    iterations: u64,
    eval_every: u64,
    eval_runs: usize,
    seed: i64,
) -> Vec<Point> {
    let game = Config { other_agents: trained.other_agents, view: brain.config.view(), faithful: trained.faithful };
    let total = 30 * iterations;
    let runs = total / 100_000 + 1;
    let frames_per_run = total.div_ceil(runs);
    let mut seeds = ParkMiller::new(seed.wrapping_add(7919));
    let mut world = World::new(game);
    let mut points = Vec::new();
    let (mut reward_sum, mut rewards) = (0.0, 0u64);
    let (mut frames, mut decisions) = (0u64, 0u64);
    let (mut last_steps, mut last_loss) = (0u64, 0.0);
    while frames < total {
        world.reset((seeds.uniform() * 1e7).floor() as i64);
        brain.start_run();
        brain.learning = true;
        brain.random_clones = true;
        for _ in 0..frames_per_run.min(total - frames) {
            let before = world.frame;
            let decided = world.step(brain);
            frames += 1;
            if before % 30 == 0 && decided.iter().any(|&(agent, _)| agent == 0) {
                decisions += 1;
                // The reward of frame 0 covers one frame; it is left out.
                if before > 0 {
                    reward_sum += (world_reward(&world)).unwrap_or(0.0);
                    rewards += 1;
                }
                if decisions % eval_every == 0 || frames == total {
                    let steps = brain.steps - last_steps;
                    let loss = (steps > 0).then(|| (brain.loss_sum - last_loss) / steps as f64);
                    let eval_mph = evaluate(brain, game, eval_runs);
                    points.push(Point {
                        decisions,
                        frames,
                        epsilon: brain.epsilon(),
                        mean_reward: reward_sum / rewards.max(1) as f64,
                        mean_loss: loss,
                        eval_mph,
                    });
                    eprintln!("decision {decisions}: eval {eval_mph:.2} mph");
                    (reward_sum, rewards, last_steps, last_loss) = (0.0, 0, brain.steps, brain.loss_sum);
                }
            }
        }
    }
    brain.learning = false;
    brain.random_clones = false;
    points
}

/// The reward the ego just received, read back from the world.
fn world_reward(world: &World) -> Option<f64> {
    world.last_reward
}

/// The greedy agent's median mph over the first `runs` protocol runs.
fn evaluate(brain: &mut Brain, game: Config, runs: usize) -> f64 {
    if runs == 0 {
        return f64::NAN;
    }
    let (learning, random_clones) = (brain.learning, brain.random_clones);
    brain.learning = false;
    brain.random_clones = false;
    brain.start_run();
    let result = score(game, runs, 2000, brain, &mut NoRecorder).median;
    brain.learning = learning;
    brain.random_clones = random_clones;
    brain.start_run();
    result
}

fn brain_config(job: &StageJob) -> Result<BrainConfig> {
    let d = BrainConfig::default();
    Ok(BrainConfig {
        lanes_side: usize_param(job, "lanes_side", d.lanes_side)?,
        patches_ahead: usize_param(job, "patches_ahead", d.patches_ahead)?,
        patches_behind: usize_param(job, "patches_behind", d.patches_behind)?,
        temporal_window: usize_param(job, "temporal_window", d.temporal_window)?,
        hidden_layers: hidden_layers(job)?,
        learning_rate: job.float("learning_rate", d.learning_rate)?,
        momentum: job.float("momentum", d.momentum)?,
        batch_size: usize_param(job, "batch_size", d.batch_size)?.max(1),
        l2_decay: job.float("l2_decay", d.l2_decay)?,
        gamma: job.float("gamma", d.gamma)?,
        experience_size: usize_param(job, "experience_size", d.experience_size)?.max(1),
        start_learn_threshold: usize_param(job, "start_learn_threshold", d.start_learn_threshold)?,
        learning_steps_total: usize_param(job, "learning_steps_total", 10000)? as u64,
        learning_steps_burnin: usize_param(job, "learning_steps_burnin", 1000)? as u64,
        epsilon_min: job.float("epsilon_min", d.epsilon_min)?,
        epsilon_test_time: job.float("epsilon_test_time", d.epsilon_test_time)?,
    })
}

/// Reads a non-negative integer parameter.
pub fn usize_param(job: &StageJob, name: &str, default: usize) -> Result<usize> {
    let value = job.int(name, default as i64)?;
    if value < 0 {
        bail!("parameter `{name}` of stage `{}` must not be negative", job.stage);
    }
    Ok(value as usize)
}

fn hidden_layers(job: &StageJob) -> Result<Vec<i64>> {
    let invalid = || format!("parameter `hidden_layers` of stage `{}` must list positive widths, such as \"216,432\"", job.stage);
    let widths: Vec<i64> = match job.param("hidden_layers") {
        None => vec![10],
        Some(Value::Int(width)) => vec![*width],
        Some(Value::Str(text)) if text.trim().is_empty() => Vec::new(),
        Some(Value::Str(text)) => text
            .split(',')
            .map(|w| w.trim().parse::<i64>())
            .collect::<Result<_, _>>()
            .with_context(invalid)?,
        Some(Value::List(items)) => items
            .iter()
            .map(|item| match item {
                Value::Int(width) => Ok(*width),
                _ => bail!(invalid()),
            })
            .collect::<Result<_>>()?,
        Some(_) => bail!(invalid()),
    };
    if widths.iter().any(|&w| w < 1) {
        bail!(invalid());
    }
    Ok(widths)
}

fn write_json<T: Serialize>(path: &std::path::Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("failed to encode JSON")?;
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}
