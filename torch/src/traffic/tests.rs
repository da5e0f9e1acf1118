//! Tests of the safety rules, the occupancy grid, determinism and the
//! engine's published fixed-policy scores.

use super::car::{Action, Car};
use super::grid::{Grid, View, FREE};
use super::policy::Fixed;
use super::score::{score, NoRecorder};
use super::world::{Config, Driver, World};

/// A white car centred in `lane` with its front at `row`.
fn car_at(lane: usize, row: usize, gas: f64) -> Car {
    Car { x: Car::lane_x(lane), y: 10.0 * row as f64, lane, gas, safe: 2.0, controlled: false }
}

fn follow_cap(gap_rows: usize, leader_speed: f64) -> f64 {
    let mut grid = Grid::default();
    let mut car = car_at(3, 40, 1.5);
    let mut leader = car_at(3, 40 - gap_rows - 4, 1.0);
    leader.safe = leader_speed;
    leader.stamp(&mut grid);
    car.follow(&grid);
    car.speed()
}

#[test]
fn follow_rule_caps_speed_by_the_gap_to_the_leader() {
    // The leader's body covers 4 rows, so a gap of 0 rows means touching.
    assert_eq!(follow_cap(0, 1.0), 0.0);
    assert_eq!(follow_cap(1, 1.0), 0.5 * 1.5);
    assert_eq!(follow_cap(1, 0.2), 0.2);
    assert_eq!(follow_cap(2, 1.8), 1.5);
    assert_eq!(follow_cap(3, 1.0), 1.0);
    assert_eq!(follow_cap(4, 0.5), 3.0, "4 empty rows ahead leave the car free");
}

#[test]
fn follow_rule_treats_cells_off_the_grid_as_free() {
    let mut car = car_at(3, 1, 1.0);
    car.follow(&Grid::default());
    assert_eq!(car.safe, 2.0);
}

#[test]
fn lane_gate_checks_the_target_lane_beside_and_ahead() {
    let grid = Grid::default();
    let mut free = car_at(3, 40, 2.0);
    assert!(free.try_lane_change(-1, &grid));
    assert_eq!(free.lane, 2);

    let mut blocked = Grid::default();
    car_at(4, 34, 1.0).stamp(&mut blocked); // rows 34-37, within 6 rows ahead
    let mut car = car_at(3, 40, 2.0);
    assert!(!car.try_lane_change(1, &blocked));
    assert_eq!(car.lane, 3);
    // At gas 1 the window reaches only 3 rows ahead (rows 37 to 43).
    let mut slow = car_at(3, 40, 1.0);
    let mut far = Grid::default();
    car_at(4, 30, 1.0).stamp(&mut far);
    assert!(slow.try_lane_change(1, &far));
    // A car right behind in the target lane is not checked.
    let mut behind = Grid::default();
    car_at(4, 44, 1.0).stamp(&mut behind);
    assert!(car_at(3, 40, 1.0).try_lane_change(1, &behind));
}

#[test]
fn lane_gate_rejects_the_road_edge_and_cars_moving_sideways() {
    let grid = Grid::default();
    assert!(!car_at(0, 40, 1.0).try_lane_change(-1, &grid));
    assert!(!car_at(6, 40, 1.0).try_lane_change(1, &grid));
    let mut moving = car_at(3, 40, 1.0);
    moving.x += 2.0;
    assert!(!moving.try_lane_change(-1, &grid));
    // A window that pokes above the grid reads blocked cells.
    assert!(!car_at(3, 2, 1.0).try_lane_change(-1, &grid));
}

#[test]
fn occupancy_grid_matches_a_hand_built_situation() {
    let mut grid = Grid::default();
    let mut ego = car_at(1, 52, 2.0);
    ego.stamp(&mut grid);
    let mut ahead = car_at(1, 45, 1.2);
    ahead.safe = 1.0;
    ahead.stamp(&mut grid);
    let mut left = car_at(0, 49, 1.0);
    left.safe = 2.0;
    left.stamp(&mut grid);
    let view = View { lanes_side: 2, patches_ahead: 8, patches_behind: 2 };
    let raw = view.observe_raw(&grid, ego.lane, ego.y);
    let width = view.width();
    let cell = |row_ahead: usize, lane_offset: i64| raw[(8 - row_ahead) * width + (2 + lane_offset) as usize];
    assert_eq!(cell(1, -2), 0.0, "off the road to the left");
    assert_eq!(cell(8, 0), FREE);
    for row in 4..=7 {
        assert_eq!(cell(row, 0), 1.2, "the slower car ahead at row {row}");
    }
    assert_eq!(cell(3, 0), FREE);
    for row in 1..=3 {
        assert_eq!(cell(row, -1), 2.0, "the car on the left at row {row}");
    }
    assert_eq!(raw[8 * width + 2], 4.0, "the ego's own body beside it");
    let mut scaled = Vec::new();
    view.observe(&grid, ego.lane, ego.y, &mut scaled);
    assert_eq!(scaled[8 * width + 2], 0.04);
    assert_eq!(scaled[0], 0.0);
    assert_eq!(scaled[2], 1.0);
}

#[test]
fn a_sideways_car_covers_two_columns() {
    let mut grid = Grid::default();
    let mut car = car_at(2, 20, 1.0);
    car.x += 12.0;
    car.stamp(&mut grid);
    assert_eq!(grid.get(2.0, 20.0, 0.0), 2.0);
    assert_eq!(grid.get(3.0, 23.0, 0.0), 2.0);
    assert_eq!(grid.get(3.0, 24.0, 0.0), FREE);
}

#[test]
fn same_seed_and_policy_give_the_same_run() {
    let run = |faithful| {
        let mut world = World::new(Config { faithful, ..Config::default() });
        world.reset(7);
        let mut driver = Fixed(Action::Left);
        let mut frames = Vec::new();
        for _ in 0..600 {
            world.step(&mut driver);
            frames.push(format!("{:?}", world.cars));
        }
        frames
    };
    assert_eq!(run(true), run(true));
    assert_eq!(run(false), run(false));
    assert_ne!(run(true), run(false));
}

/// Clone 1 always decelerates; the ego and clone 2 always do nothing.
struct CloneOneBrakes;

impl Driver for CloneOneBrakes {
    fn decide(&mut self, agent: usize, _: &[f32], _: Option<f64>) -> usize {
        if agent == 1 { Action::Decelerate as usize } else { Action::Nothing as usize }
    }
}

#[test]
fn faithful_mode_shares_a_clones_action_with_the_cars_after_it() {
    for (faithful, expected_ego_gas) in [(true, 2.0 - 4.0 * 0.02), (false, 2.0)] {
        let mut world = World::new(Config { other_agents: 2, faithful, ..Config::default() });
        world.reset(3);
        for _ in 0..120 {
            world.step(&mut CloneOneBrakes);
        }
        assert!((world.cars[0].gas - expected_ego_gas).abs() < 1e-9, "faithful {faithful}");
        assert!((world.cars[1].gas - (1.7 - 4.0 * 0.02)).abs() < 1e-9);
    }
}

#[test]
fn fixed_policies_reproduce_the_first_protocol_runs() {
    // The first 20 runs of the protocol; the full 500 are checked below.
    let median = |action| score(Config::default(), 20, 2000, &mut Fixed(action), &mut NoRecorder).median;
    assert_eq!(median(Action::Nothing), 52.63);
    assert_eq!(median(Action::Accelerate), 52.63);
    assert_eq!(median(Action::Decelerate), 44.08);
}

/// The engine's published scores over 500 x 2,000 frames; about 45 s in a
/// debug build, so run it with `cargo test -- --ignored`.
#[test]
#[ignore]
fn fixed_policies_reproduce_the_published_scores() {
    let nothing = score(Config::default(), 500, 2000, &mut Fixed(Action::Nothing), &mut NoRecorder);
    assert_eq!(nothing.median, 51.57);
    assert_eq!((nothing.mean * 100.0).round() / 100.0, 51.67);
    let slow = score(Config::default(), 500, 2000, &mut Fixed(Action::Decelerate), &mut NoRecorder);
    assert_eq!(slow.median, 44.46);
    assert_eq!((slow.mean * 100.0).round() / 100.0, 44.61);
}
