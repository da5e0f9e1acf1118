//! One car and the per-frame rules that move it: motion, stamping, the
//! safety system (follow rule and lane-change gate) and the five actions.
//!
//! Coordinates are the engine's screen pixels: `x` across the road from the
//! left edge, `y` along it from the top (far ahead), cars driving toward
//! smaller `y`; `(x, y)` is the left end of the front bumper. Speed is
//! `safe * gas` px per frame, and mph is 20 times that. Every expression keeps
//! the engine's order of floating-point operations, because the published
//! scores depend on the last bit.

use super::grid::{Grid, FREE};
use super::rng::ParkMiller;

/// Sideways speed while changing lanes, px per frame (a lane in 30 frames).
const LATERAL_STEP: f64 = 20.0 / 30.0;

/// An action a policy picks every 30 frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Nothing = 0,
    Accelerate = 1,
    Decelerate = 2,
    Left = 3,
    Right = 4,
}

impl Action {
    pub const ALL: [Action; 5] =
        [Action::Nothing, Action::Accelerate, Action::Decelerate, Action::Left, Action::Right];

    /// Returns the action with index `index`, or `None` outside 0..5.
    pub fn from_index(index: usize) -> Option<Action> {
        Action::ALL.get(index).copied()
    }
}

/// One car: the ego, a controlled clone or a white car driven by the game.
#[derive(Debug, Clone, PartialEq)]
pub struct Car {
    pub x: f64,
    pub y: f64,
    /// The lane the car drives in or is moving to; it changes as soon as a
    /// lane change is accepted.
    pub lane: usize,
    /// The throttle, 0 to 2; free speed is `2 * gas` px per frame.
    pub gas: f64,
    /// The safety multiplier that the follow rule writes every frame, 0 to 2.
    pub safe: f64,
    /// Whether a policy drives the car (the ego or a clone).
    pub controlled: bool,
}

impl Car {
    /// Builds a car as the engine's constructor does: it draws a lane and a
    /// white-car gas from `behaviour` (two draws), whatever the car becomes.
    pub fn construct(behaviour: &mut ParkMiller) -> Car {
        let mut car =
            Car { x: 0.0, y: 0.0, lane: 0, gas: 1.0, safe: 1.0, controlled: false };
        car.respawn(behaviour);
        car
    }

    /// Speed in px per frame.
    pub fn speed(&self) -> f64 {
        self.safe * self.gas
    }

    /// The x of a car centred in `lane`.
    pub fn lane_x(lane: usize) -> f64 {
        20.0 * lane as f64 + 4.0
    }

    /// Puts the car in a random lane; a white car also gets a new cruise gas,
    /// `1 + 0.7 * (0.5 * u)` (40 to 54 mph free), a controlled car keeps its own.
    pub fn respawn(&mut self, behaviour: &mut ParkMiller) {
        let lane = (140.0 * behaviour.uniform() / 20.0).floor() as usize;
        self.x = Car::lane_x(lane);
        if !self.controlled {
            self.gas = 1.0 + 0.7 * (0.5 * behaviour.uniform());
        }
        self.lane = lane;
    }

    /// Moves the car one frame: `speed - scroll` px up the screen and 2/3 px
    /// toward its lane's centre. A car that leaves the visible road re-enters
    /// at the other end: past the top (y < -68) it goes to y = 734, past the
    /// bottom (y > 768) to y = -34, and respawns.
    pub fn advance(&mut self, scroll: f64, behaviour: &mut ParkMiller) {
        self.y -= self.speed() - scroll;
        let offset = Car::lane_x(self.lane) - self.x;
        self.x = if offset.abs() < LATERAL_STEP {
            Car::lane_x(self.lane)
        } else if offset > 0.0 {
            self.x + LATERAL_STEP
        } else {
            self.x - LATERAL_STEP
        };
        if self.y + 68.0 < 0.0 {
            self.y = 734.0;
            self.respawn(behaviour);
        }
        if self.y - 68.0 > 700.0 {
            self.y = -34.0;
            self.respawn(behaviour);
        }
    }

    /// Writes the car's speed under 14 sample points of its 15 x 34 px body:
    /// 4 rows of its column, and of the next column while it moves sideways.
    pub fn stamp(&self, grid: &mut Grid) {
        for dx in [0.0, 10.0] {
            for dy in [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0] {
                grid.set((self.x + dx) / 20.0, (self.y + dy) / 10.0, self.speed());
            }
        }
    }

    /// The follow rule: scans the 4 rows ahead of the front row in the column
    /// under the car's centre (off the grid counts as free) and caps `safe` so
    /// the car is no faster than the first car found, and at most
    /// `0.5 * (k - 1) * gas` when that car is k rows ahead (a full stop when
    /// touching).
    ///
    /// The engine divides the leader's speed by `gas`; with `gas` 0 that is
    /// NaN or infinite in JavaScript. Here a car with no gas behind a leader
    /// gets `safe` 0 and stands still, a choice, as the engine's result is NaN.
    pub fn follow(&mut self, grid: &Grid) {
        let column = (self.x + 7.5) / 20.0;
        let mut safe: f64 = 2.0;
        for k in 1..5 {
            let ahead = grid.get(column, (self.y - 10.0 * k as f64) / 10.0, FREE);
            if ahead < FREE {
                safe = safe.min(0.5 * (k - 1) as f64);
                let ratio = ahead / self.gas;
                safe = if ratio.is_nan() { 0.0 } else { safe.min(ratio) };
            }
        }
        self.safe = safe;
    }

    /// The lane-change gate: a move of one lane in `direction` (-1 left, +1
    /// right) is accepted only when the car is centred in its lane (within
    /// 0.5 px) and the target-lane cells from about `3 * gas` rows ahead of its
    /// front down to its body are all free (off-road cells read as blocked).
    /// On acceptance the lane changes at once; a refused request is dropped.
    pub fn try_lane_change(&mut self, direction: i64, grid: &Grid) -> bool {
        let column = (self.x + 7.5) / 20.0 + direction as f64;
        let row = self.y / 10.0;
        let mut clear = (self.x - Car::lane_x(self.lane)).abs() < 0.5;
        let mut offset = 3.0 * -self.gas;
        while offset < 4.0 {
            clear = clear && grid.get(column, row + offset, 0.0) >= FREE;
            offset += 1.0;
        }
        let target = self.lane as i64 + direction;
        // An accepted move never leaves the road, as off-road cells are blocked.
        if clear && (0..7).contains(&target) {
            self.lane = target as usize;
            return true;
        }
        false
    }

    /// Executes `action` once: accelerate and decelerate change `gas` by 0.02
    /// (within 0 and 2), left and right request a lane change.
    pub fn apply(&mut self, action: Action, grid: &Grid) {
        match action {
            Action::Nothing => {}
            Action::Accelerate => {
                if self.gas < 2.0 {
                    self.gas += 0.02;
                }
            }
            Action::Decelerate => {
                if self.gas > 0.0 {
                    self.gas -= 0.02;
                }
            }
            Action::Left => {
                self.try_lane_change(-1, grid);
            }
            Action::Right => {
                self.try_lane_change(1, grid);
            }
        }
    }
}
