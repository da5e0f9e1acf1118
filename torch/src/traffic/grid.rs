//! The occupancy grid: 7 lanes x 70 rows of 20 x 10 px cells over the
//! 140 x 700 px visible road, and the policy's observation cut from it.
//!
//! Every frame the grid is cleared to [`FREE`] and each car writes its speed
//! (px per frame) into the cells under its body. Reads and writes take pixel
//! coordinates already divided by the cell size and floor them, as the engine
//! does; writes off the grid are ignored and reads off the grid return a
//! default that the caller chooses: free for the follow rule, blocked (0) for
//! the lane-change gate and the observation.

/// The value of an empty cell.
pub const FREE: f64 = 100.0;
/// Lanes across the road.
pub const LANES: usize = 7;
/// Cell rows along the visible road.
pub const ROWS: usize = 70;

/// Speeds stamped on the road, indexed `[lane][row]`.
#[derive(Debug, Clone)]
pub struct Grid {
    cells: [[f64; ROWS]; LANES],
}

impl Default for Grid {
    fn default() -> Grid {
        Grid { cells: [[FREE; ROWS]; LANES] }
    }
}

impl Grid {
    /// Sets every cell to [`FREE`].
    pub fn clear(&mut self) {
        self.cells = [[FREE; ROWS]; LANES];
    }

    /// Returns the cell at (floor(`lane`), floor(`row`)), or `default` off the grid.
    pub fn get(&self, lane: f64, row: f64, default: f64) -> f64 {
        match Self::index(lane, row) {
            Some((l, r)) => self.cells[l][r],
            None => default,
        }
    }

    /// Writes `value` at (floor(`lane`), floor(`row`)) when that is on the grid.
    pub fn set(&mut self, lane: f64, row: f64, value: f64) {
        if let Some((l, r)) = Self::index(lane, row) {
            self.cells[l][r] = value;
        }
    }

    fn index(lane: f64, row: f64) -> Option<(usize, usize)> {
        let (lane, row) = (lane.floor(), row.floor());
        // NaN fails both range checks, like JavaScript's comparisons.
        let on_grid = (0.0..LANES as f64).contains(&lane) && (0.0..ROWS as f64).contains(&row);
        on_grid.then(|| (lane as usize, row as usize))
    }
}

/// The slice of the grid a policy sees: `2 * lanes_side + 1` lanes centred on
/// the car's (target) lane, `patches_ahead` rows ahead of its front row and
/// `patches_behind` rows from its front row backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub lanes_side: usize,
    pub patches_ahead: usize,
    pub patches_behind: usize,
}

impl View {
    /// The competition's `network_basic.js` view: 1 lane each side, 10 rows ahead.
    pub const BASIC: View = View { lanes_side: 1, patches_ahead: 10, patches_behind: 0 };

    /// Lanes across the view.
    pub fn width(&self) -> usize {
        2 * self.lanes_side + 1
    }

    /// Number of values in one observation.
    pub fn len(&self) -> usize {
        self.width() * (self.patches_ahead + self.patches_behind)
    }

    /// Returns true when the view has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the observation of a car in `lane` whose front is at `y` px into
    /// `out`: row-major from the farthest row ahead, leftmost lane first, each
    /// cell divided by 100 (free 1.0, a car at 80 mph 0.04, off the road 0.0).
    pub fn observe(&self, grid: &Grid, lane: usize, y: f64, out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.observe_raw(grid, lane, y).iter().map(|&v| (v / 100.0) as f32));
    }

    /// Returns the cells of [`View::observe`] undivided: free cells read 100,
    /// cars their speed in px per frame (mph / 20), off the road 0.
    pub fn observe_raw(&self, grid: &Grid, lane: usize, y: f64) -> Vec<f64> {
        let width = self.width() as i64;
        // The engine floors y before dividing, unlike the follow rule.
        let front = y.floor() / 10.0;
        let mut cells = Vec::with_capacity(self.len());
        for h in -(self.patches_ahead as i64)..self.patches_behind as i64 {
            for g in 0..width {
                let column = lane as i64 + g - self.lanes_side as i64;
                cells.push(grid.get(column as f64, front + h as f64, 0.0));
            }
        }
        cells
    }
}
