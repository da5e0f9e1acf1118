//! Reference policies, scored by the same protocol as a trained agent.

use super::car::Action;
use super::grid::View;
use super::rng::ParkMiller;
use super::world::Driver;

/// Always returns the same action.
pub struct Fixed(pub Action);

impl Driver for Fixed {
    fn decide(&mut self, _: usize, _: &[f32], _: Option<f64>) -> usize {
        self.0 as usize
    }
}

/// Picks a uniformly random action from a seeded stream.
pub struct Random(pub ParkMiller);

impl Driver for Random {
    fn decide(&mut self, _: usize, _: &[f32], _: Option<f64>) -> usize {
        self.0.below(Action::ALL.len())
    }
}

/// A hand-written driver: it moves to a neighbouring lane whose clear run of
/// free cells ahead is at least `margin` rows longer than its own lane's,
/// preferring the longer run (the left one on a tie), and otherwise
/// accelerates. It needs a view with at least one lane each side.
pub struct RuleBased {
    pub view: View,
    pub margin: usize,
}

impl RuleBased {
    /// Free cells in `lane` (a view column) counted from the car's front row
    /// forward, until the first occupied or off-road cell.
    fn clear_run(&self, observation: &[f32], lane: usize) -> usize {
        let width = self.view.width();
        (0..self.view.patches_ahead)
            .rev()
            .take_while(|&row| observation[row * width + lane] >= 1.0)
            .count()
    }
}

impl Driver for RuleBased {
    fn decide(&mut self, _: usize, observation: &[f32], _: Option<f64>) -> usize {
        let centre = self.view.lanes_side;
        if centre == 0 || observation.len() < self.view.len() {
            return Action::Accelerate as usize;
        }
        let own = self.clear_run(observation, centre);
        let left = self.clear_run(observation, centre - 1);
        let right = self.clear_run(observation, centre + 1);
        let best_side = if right > left { (right, Action::Right) } else { (left, Action::Left) };
        if best_side.0 >= own + self.margin {
            best_side.1 as usize
        } else {
            Action::Accelerate as usize
        }
    }
}
