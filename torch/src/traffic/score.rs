//! The scoring protocol of the competition's evaluator: `runs` runs of
//! `frames` frames, run `k` (1-based) seeded with `k`, learning off.
//!
//! Each frame adds the mean over the controlled cars of max(0, speed); a
//! run's score is its mean mph truncated to the hundredth,
//! `floor(2000 * sum / frames) / 100`; the published score is the upper
//! median of the run scores (element `runs / 2` once sorted). The engine sorts
//! the scores as strings, which equals a numeric sort while every score lies
//! in 10.00 to 99.99; this port sorts numerically.
//!
//! In faithful mode the runs must go in sequence, because each run's white
//! cars draw their initial gas from where the previous run left the
//! behaviour stream; a shorter protocol therefore scores a prefix of the
//! full one's runs.

use serde::Serialize;

use super::world::{Config, Driver, World};

/// The run scores and their summary, in mph.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Score {
    pub median: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// One score per run, in run order.
    pub runs: Vec<f64>,
}

impl Score {
    /// Summarises run scores given in run order.
    pub fn from_runs(runs: Vec<f64>) -> Score {
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let mean = runs.iter().sum::<f64>() / runs.len().max(1) as f64;
        let min = sorted.first().copied().unwrap_or(0.0);
        let max = sorted.last().copied().unwrap_or(0.0);
        Score { median, mean, min, max, runs }
    }
}

/// Observes every frame of a scored run, for pictures and statistics.
pub trait Recorder {
    /// Called after each frame of run `run` with the world and the actions
    /// decided in that frame.
    fn frame(&mut self, run: usize, world: &World, decided: &[(usize, usize)]);
}

/// A recorder that keeps nothing.
pub struct NoRecorder;

impl Recorder for NoRecorder {
    fn frame(&mut self, _: usize, _: &World, _: &[(usize, usize)]) {}
}

/// Scores `driver` with `runs` runs of `frames` frames.
pub fn score(
    config: Config,
    runs: usize,
    frames: usize,
    driver: &mut dyn Driver,
    recorder: &mut dyn Recorder,
) -> Score {
    let mut world = World::new(config);
    let mut scores = Vec::with_capacity(runs);
    for run in 1..=runs {
        world.reset(run as i64);
        scores.push(run_once(&mut world, run, frames, driver, recorder));
    }
    Score::from_runs(scores)
}

/// Runs `frames` frames of an already reset world and returns its score.
fn run_once(
    world: &mut World,
    run: usize,
    frames: usize,
    driver: &mut dyn Driver,
    recorder: &mut dyn Recorder,
) -> f64 {
    let mut sum = 0.0;
    for _ in 0..frames {
        let decided = world.step(driver);
        sum += world.controlled_speed();
        recorder.frame(run, world, &decided);
    }
    (sum / frames as f64 * 2000.0).floor() / 100.0
}
