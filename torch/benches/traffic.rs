//! Simulated DeepTraffic frames per second on one core, for a fixed policy
//! and the rule-based driver, single agent and with 10 clones.
//!
//!   cargo bench -p xp-torch --bench traffic
//!
//! The simulator has no dependencies, so the bench includes its files
//! directly; it prints one line per case and asserts nothing.

#[allow(dead_code)]
#[path = "../src/traffic/car.rs"]
mod car;
#[allow(dead_code)]
#[path = "../src/traffic/grid.rs"]
mod grid;
#[allow(dead_code)]
#[path = "../src/traffic/layout.rs"]
mod layout;
#[allow(dead_code)]
#[path = "../src/traffic/policy.rs"]
mod policy;
#[allow(dead_code)]
#[path = "../src/traffic/rng.rs"]
mod rng;
#[allow(dead_code)]
#[path = "../src/traffic/world.rs"]
mod world;

use std::time::Instant;

use car::Action;
use grid::View;
use policy::{Fixed, RuleBased};
use world::{Config, Driver, World};

/// Runs `runs` protocol runs of 2,000 frames and returns frames per second.
fn frames_per_second(config: Config, runs: i64, driver: &mut dyn Driver) -> f64 {
    let mut world = World::new(config);
    let started = Instant::now();
    for seed in 1..=runs {
        world.reset(seed);
        for _ in 0..2000 {
            world.step(driver);
        }
    }
    (runs * 2000) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runs = 200;
    let single = Config::default();
    let clones = Config { other_agents: 10, ..Config::default() };
    let rule = || RuleBased { view: View::BASIC, margin: 3 };
    let cases: [(&str, Config, Box<dyn Driver>); 3] = [
        ("do nothing, 1 car", single, Box::new(Fixed(Action::Nothing))),
        ("rule-based, 1 car", single, Box::new(rule())),
        ("rule-based, 11 cars", clones, Box::new(rule())),
    ];
    for (name, config, mut driver) in cases {
        let fps = frames_per_second(config, runs, driver.as_mut());
        println!("{name:<22} {fps:>12.0} frames/s ({:.0}x real time at 60 frames/s)", fps / 60.0);
    }
}
