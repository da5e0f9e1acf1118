//! DeepTraffic: MIT's deep reinforcement learning game, ported from its 2.0
//! engine. A policy drives one red car (and optionally up to 10 red clones)
//! through 19 or fewer white cars on a 7-lane, 700 px stretch of highway and
//! is scored in average mph.
//!
//! - [`rng`]: the seeded Park-Miller streams;
//! - [`grid`]: the 7 x 70 occupancy grid and the policy's view of it;
//! - [`car`]: motion, the safety system and the actions of one car;
//! - [`layout`]: where the cars start;
//! - [`world`]: the frame loop, decision timing and the multi-agent option;
//! - [`score`]: the evaluation protocol (500 runs x 2,000 frames);
//! - [`policy`]: reference drivers;
//! - [`brain`]: the DQN agent in tch.
//!
//! Faithful mode (the default) replays the engine's order of random draws
//! and its quirks, so fixed policies reproduce its published scores exactly:
//! doing nothing scores 51.57 mph, always decelerating 44.46. Clean mode
//! removes the quirks (shared action variable, silent clone 10, layout slip,
//! coupling between runs) for experiments.
//!
//! Choices where the engine is silent or undefined:
//! - a frame lasts 1/60 s wherever time is shown; no rule uses it;
//! - a car with zero gas behind a leader stands still (the engine computes NaN);
//! - the view accepts any size; more than 3 lanes each side or more than 52
//!   rows ahead only adds cells that read 0 (off the road) for the ego;
//! - the net reads free cells as 1.0 and cars as speed / 100 (mph / 2000), as
//!   the engine feeds them; [`grid::View::observe_raw`] gives the undivided grid
//!   (free 100, cars mph / 20);
//! - the protocol is the shipped in-browser one, 500 runs x 2,000 frames with
//!   seeds 1 to 500, which the competition's documentation says matches the
//!   server's.

pub mod brain;
pub mod car;
pub mod grid;
pub mod layout;
pub mod policy;
pub mod rng;
pub mod score;
pub mod world;

#[cfg(test)]
mod tests;

pub use car::Action;
pub use grid::View;
pub use score::{score, NoRecorder, Recorder};
pub use world::{Config, Driver, World};
