//! The game loop: 20 cars on the visible road, stepped one frame at a time
//! in the engine's order, with the policy asked for an action every 30 frames.
//!
//! One frame, in order:
//! 1. clear the grid; move and then stamp each car in index order;
//! 2. set the next frame's scroll to `1.5 - (ego.y - 525)`, so the screen
//!    follows the ego;
//! 3. for each car in index order, run the follow rule; a white car then
//!    draws `u` and, when `u > 0.99 + 0.004 * safe` (0.2 % a frame when free,
//!    up to 1 % when stopped), draws again and requests a lane change, left
//!    when that draw is above 0.5;
//! 4. clone `i` (1 to 10) decides on frames where `frame % 30 == 3 * i` and
//!    executes the action at once;
//! 5. re-stamp the ego, add its speed to the reward sum;
//! 6. on frames where `frame % 30 == 0` the ego decides, receiving the reward
//!    `(sum - 60) / 20` for the frames since its last decision;
//! 7. the ego executes the action of this frame, if any.
//!
//! An action is executed once, on its decision frame; the 29 frames between
//! decisions execute nothing. Faithful mode keeps the engine's shared action
//! variable: the action of clone `i` on its decision frame is also executed
//! by every later clone and by the ego, and clone 10 (`3 * 10 = 30`) never
//! decides itself. Clean mode gives each car only its own actions and lets
//! clone 10 decide on the ego's frames.

use super::car::{Action, Car};
use super::grid::{Grid, View};
use super::layout;
use super::rng::ParkMiller;

/// Cars on the road, controlled ones included.
pub const CARS: usize = 20;
/// Frames between two decisions of a car.
pub const DECISION_PERIOD: u64 = 30;
/// The most controlled clones beside the ego.
pub const MAX_CLONES: usize = 10;

/// Chooses actions for the controlled cars.
pub trait Driver {
    /// Returns the action index for `agent` (0 the ego, 1 to 10 the clones)
    /// given its observation; the ego also receives the reward of the frames
    /// since its previous decision. Indices outside 0..5 execute nothing.
    fn decide(&mut self, agent: usize, observation: &[f32], reward: Option<f64>) -> usize;
}

/// How a world is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Controlled clones beside the ego, 0 to 10.
    pub other_agents: usize,
    pub view: View,
    /// Replay the engine's quirks (default) or run the clean variant.
    pub faithful: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config { other_agents: 0, view: View::BASIC, faithful: true }
    }
}

/// The state of one game.
#[derive(Debug, Clone)]
pub struct World {
    pub config: Config,
    pub cars: Vec<Car>,
    pub grid: Grid,
    pub frame: u64,
    scroll: f64,
    reward_sum: f64,
    /// The reward the ego received at its latest decision.
    pub last_reward: Option<f64>,
    behaviour: ParkMiller,
    observation: Vec<f32>,
}

impl World {
    /// Builds the world as the engine does when it loads: both streams
    /// seeded with 1 and 20 cars constructed (40 behaviour draws). Call
    /// [`World::reset`] before running.
    pub fn new(config: Config) -> World {
        let mut config = config;
        config.other_agents = config.other_agents.min(MAX_CLONES);
        let mut behaviour = ParkMiller::new(1);
        let cars = (0..CARS).map(|_| Car::construct(&mut behaviour)).collect();
        World {
            config,
            cars,
            grid: Grid::default(),
            frame: 0,
            scroll: 1.5,
            reward_sum: 0.0,
            last_reward: None,
            behaviour,
            observation: Vec::new(),
        }
    }

    /// Starts a run with `seed`. In faithful mode the 20 new cars draw their
    /// lanes and white-car gas from the behaviour stream *before* it is
    /// re-seeded, so a run depends on the run before it; clean mode draws them
    /// after re-seeding. Both streams are seeded with `seed` (the engine uses
    /// its first counter for both).
    pub fn reset(&mut self, seed: i64) {
        if !self.config.faithful {
            self.behaviour = ParkMiller::new(seed);
        }
        let clones = self.config.other_agents;
        self.cars = (0..CARS)
            .map(|index| {
                let mut car = Car::construct(&mut self.behaviour);
                car.controlled = index <= clones;
                car
            })
            .collect();
        let mut layout_stream = ParkMiller::new(seed);
        if self.config.faithful {
            self.behaviour = ParkMiller::new(seed);
        }
        layout::place(&mut self.cars, &mut layout_stream, self.config.faithful);
        self.grid.clear();
        self.frame = 0;
        self.scroll = 1.5;
        self.reward_sum = 0.0;
        self.last_reward = None;
    }

    /// Number of controlled cars, the ego included.
    pub fn controlled(&self) -> usize {
        self.config.other_agents + 1
    }

    /// The mean over the controlled cars of max(0, speed), px per frame, in
    /// the engine's summation order (each term divided before adding).
    pub fn controlled_speed(&self) -> f64 {
        let n = self.controlled() as f64;
        self.cars[..self.controlled()].iter().fold(0.0, |sum, car| sum + car.speed().max(0.0) / n)
    }

    /// Returns true when `agent` decides on the current frame.
    pub fn decides(&self, agent: usize) -> bool {
        let phase = self.frame % DECISION_PERIOD;
        let slot = 3 * agent as u64;
        if self.config.faithful {
            phase == slot
        } else {
            phase == slot % DECISION_PERIOD
        }
    }

    /// Runs one frame and returns the actions decided in it, `(agent, index)`.
    pub fn step(&mut self, driver: &mut dyn Driver) -> Vec<(usize, usize)> {
        let mut decided = Vec::new();
        self.move_and_stamp();
        self.scroll = 1.5 - (self.cars[0].y - 525.0);
        self.follow_and_wander();
        let mut shared: Option<Action> = None;
        for agent in 1..self.controlled() {
            let mut own = None;
            if self.decides(agent) {
                let index = self.ask(driver, agent, None);
                decided.push((agent, index));
                // An invalid index is replaced by the keyboard action: nothing.
                own = Some(Action::from_index(index).unwrap_or(Action::Nothing));
                shared = own;
            }
            let action = if self.config.faithful { shared } else { own };
            if let Some(action) = action {
                let grid = &self.grid;
                self.cars[agent].apply(action, grid);
            }
        }
        self.cars[0].stamp(&mut self.grid);
        self.reward_sum += self.cars[0].speed();
        let mut own = None;
        if self.frame % DECISION_PERIOD == 0 {
            let reward = (self.reward_sum - 60.0) / 20.0;
            self.last_reward = Some(reward);
            let index = self.ask(driver, 0, Some(reward));
            decided.push((0, index));
            own = Some(Action::from_index(index).unwrap_or(Action::Nothing));
            self.reward_sum = 0.0;
        }
        let action = if self.config.faithful { own.or(shared) } else { own };
        if let Some(action) = action {
            let grid = &self.grid;
            self.cars[0].apply(action, grid);
        }
        self.frame += 1;
        decided
    }

    fn move_and_stamp(&mut self) {
        self.grid.clear();
        for car in self.cars.iter_mut() {
            car.advance(self.scroll, &mut self.behaviour);
            car.stamp(&mut self.grid);
        }
    }

    fn follow_and_wander(&mut self) {
        for index in 0..CARS {
            let car = &mut self.cars[index];
            car.follow(&self.grid);
            if index > self.config.other_agents
                && self.behaviour.uniform() > 0.99 + 0.004 * car.safe
            {
                let direction = if 0.5 < self.behaviour.uniform() { -1 } else { 1 };
                car.try_lane_change(direction, &self.grid);
            }
        }
    }

    fn ask(&mut self, driver: &mut dyn Driver, agent: usize, reward: Option<f64>) -> usize {
        let car = &self.cars[agent];
        let mut observation = std::mem::take(&mut self.observation);
        self.config.view.observe(&self.grid, car.lane, car.y, &mut observation);
        let index = driver.decide(agent, &observation, reward);
        self.observation = observation;
        index
    }
}
