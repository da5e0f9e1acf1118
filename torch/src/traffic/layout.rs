//! The initial placement of the cars at the start of a run.
//!
//! The ego starts at y = 525, lane 3, gas 2. The other 19 cars are placed in
//! index order on cells drawn uniformly from a list of candidate cells
//! (numbered `7 * row + lane`). Each placed car removes 16 cells of its lane,
//! from 4 rows ahead of its cell to 11 behind; the ego removes lane 3, rows 52
//! to 67. A car is placed at `x = 20 * lane + 4`, `y = floor(row / 70 * 700)`,
//! which is `10 * row` except on a few rows where float rounding gives one
//! pixel less; a clone gets gas 1.7.
//!
//! The engine removes each excluded cell with `splice(indexOf(cell), 1)`. A
//! cell that is not in the list (above or below the grid, or removed before)
//! makes `indexOf` return -1, and the splice then removes the *last*
//! candidate instead. Faithful mode keeps that slip; clean mode removes only
//! cells that are present.

use super::car::Car;
use super::grid::{LANES, ROWS};
use super::rng::ParkMiller;

/// Places `cars[0]` (the ego) and the others from the `layout` stream.
pub fn place(cars: &mut [Car], layout: &mut ParkMiller, faithful: bool) {
    let mut candidates: Vec<i64> = (0..(LANES * ROWS) as i64).collect();
    cars[0].y = 525.0;
    cars[0].x = 64.0;
    cars[0].lane = 3;
    // The engine computes the ego's exclusion around floor(525 / 10 + 4) = 56.
    exclude(&mut candidates, 3, 56, faithful);
    for car in cars.iter_mut().skip(1) {
        if candidates.is_empty() {
            break;
        }
        let cell = candidates[layout.below(candidates.len())];
        let (row, lane) = (cell / 7, cell % 7);
        exclude(&mut candidates, lane, row, faithful);
        car.x = (20.0 * lane as f64 + 4.0).floor();
        car.y = (row as f64 / 70.0 * 700.0).floor();
        car.lane = lane as usize;
        if car.controlled {
            car.gas = 1.7;
        }
    }
    cars[0].gas = 2.0;
}

/// Removes the cells of `lane` from `row - 4` to `row + 11`.
fn exclude(candidates: &mut Vec<i64>, lane: i64, row: i64, faithful: bool) {
    for target in row - 4..row + 12 {
        // Rows above the grid are empty slots in the engine's list; rows
        // below it number cells past the end of the road.
        let cell = (target >= 0).then_some(7 * target + lane % 7);
        match cell.and_then(|c| candidates.iter().position(|&x| x == c)) {
            Some(index) => {
                candidates.remove(index);
            }
            None if faithful => {
                candidates.pop();
            }
            None => {}
        }
    }
}
