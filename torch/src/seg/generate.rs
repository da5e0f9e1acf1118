//! A procedural generator of synthetic driving scenes with exact per-pixel
//! labels (Cityscapes train ids).
//!
//! Each scene is rendered through a pinhole camera 1.2-1.8 m above a flat
//! ground, with a depth buffer, so nearer things occlude farther ones:
//! - a road of 2-6 lanes whose centre line is offset by `a + b z + c z^2`
//!   metres at depth `z`, so it curves towards the horizon. It has dashed
//!   lane lines, solid edge lines and sometimes a yellow centre line, all
//!   labelled road as in Cityscapes;
//! - a sidewalk with a kerb on each side, then either a row of buildings with
//!   windows (behind more pavement) or grass with a hedge or tree line;
//! - poles and trees along the sidewalks, cars in the lanes and parked at the
//!   kerb (rear face and the visible side face), people on the sidewalks and
//!   sometimes crossing;
//! - sky with a time-of-day palette and clouds, haze with distance, global
//!   brightness and tint, a soft shadow band, per-pixel noise, and sometimes
//!   the ego car's bonnet at the bottom, labelled 255 (ignored) as in
//!   Cityscapes.
//!
//! Scene `i` of seed `s` depends only on `(s, i)`, through its own
//! SplitMix64 stream, so the same parameters give the same bytes.

use super::{id, Split, IGNORE};

/// A SplitMix64 random stream.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a float uniform in [low, high).
    pub fn uniform(&mut self, low: f32, high: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        low + (high - low) * unit
    }

    pub fn chance(&mut self, probability: f32) -> bool {
        self.uniform(0.0, 1.0) < probability
    }

    /// Returns an integer uniform in [low, high].
    pub fn int(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next_u64() % (high - low + 1) as u64) as i64
    }

    /// Returns a standard normal value (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform(1e-7, 1.0);
        let u2 = self.uniform(0.0, 1.0);
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// Returns `colour` with each channel moved by up to `spread`.
    fn vary(&mut self, colour: [f32; 3], spread: f32) -> [f32; 3] {
        colour.map(|c| (c + self.uniform(-spread, spread)).clamp(0.0, 1.0))
    }
}

/// Generates `count` scenes of `width` x `height` pixels, starting at scene
/// index `first`.
pub fn generate(width: usize, height: usize, count: usize, seed: u64, first: u64) -> Split {
    let mut split = Split::default();
    for index in first..first + count as u64 {
        let (rgb, labels) = scene(width, height, seed, index);
        split.images.extend(rgb);
        split.labels.extend(labels);
    }
    split
}

/// Renders scene `index` of `seed`: RGB bytes and train ids, row-major.
pub fn scene(width: usize, height: usize, seed: u64, index: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let world = World::new(width, height, &mut rng);
    let mut canvas = Canvas::new(width, height);
    world.paint_sky(&mut canvas, &mut rng);
    world.paint_ground(&mut canvas);
    for side in [-1.0, 1.0] {
        world.paint_roadside(&mut canvas, side, &mut rng);
    }
    world.paint_traffic(&mut canvas, &mut rng);
    world.paint_bonnet(&mut canvas, &mut rng);
    world.finish(&canvas, &mut rng)
}

/// The colour, label and depth of every pixel; drawing keeps the nearest.
struct Canvas {
    width: usize,
    height: usize,
    colour: Vec<[f32; 3]>,
    label: Vec<u8>,
    depth: Vec<f32>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        let size = width * height;
        Canvas {
            width,
            height,
            colour: vec![[0.0; 3]; size],
            label: vec![IGNORE; size],
            depth: vec![f32::INFINITY; size],
        }
    }

    fn put(&mut self, x: usize, y: usize, depth: f32, colour: [f32; 3], label: u8) {
        let at = y * self.width + x;
        if depth <= self.depth[at] {
            self.depth[at] = depth;
            self.colour[at] = colour;
            self.label[at] = label;
        }
    }
}

/// Smooth value noise in [0, 1] on a unit grid, from an integer hash.
fn noise(x: f32, y: f32, salt: u32) -> f32 {
    let hash = |i: i32, j: i32| {
        let mut h = (i as u32).wrapping_mul(0x8DA6_B343)
            ^ (j as u32).wrapping_mul(0xD816_3841)
            ^ salt.wrapping_mul(0xCB1A_B31F);
        h ^= h >> 13;
        h = h.wrapping_mul(0x5BD1_E995);
        h ^= h >> 15;
        (h & 0xFFFF) as f32 / 65535.0
    };
    let (fx, fy) = (x.floor(), y.floor());
    let (tx, ty) = (x - fx, y - fy);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let (i, j) = (fx as i32, fy as i32);
    let top = hash(i, j) + (hash(i + 1, j) - hash(i, j)) * sx;
    let bottom = hash(i, j + 1) + (hash(i + 1, j + 1) - hash(i, j + 1)) * sx;
    top + (bottom - top) * sy
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn shade(colour: [f32; 3], factor: f32) -> [f32; 3] {
    colour.map(|c| c * factor)
}

/// A pinhole camera looking along the road: depth `z` forward, `x` to the
/// right and height above the ground, all in metres.
struct Camera {
    width: f32,
    focal: f32,
    horizon: f32,
    height: f32,
}

impl Camera {
    /// Returns the horizontal screen coordinate of a point.
    fn screen_x(&self, x: f32, z: f32) -> f32 {
        self.width / 2.0 + self.focal * x / z
    }

    /// Returns the vertical screen coordinate of a point `up` metres high.
    fn screen_y(&self, up: f32, z: f32) -> f32 {
        self.horizon + self.focal * (self.height - up) / z
    }

    /// Returns the world x of pixel column `column` at depth `z`.
    fn world_x(&self, column: f32, z: f32) -> f32 {
        (column - self.width / 2.0) * z / self.focal
    }

    /// Returns the height above the ground of pixel row `row` at depth `z`.
    fn world_up(&self, row: f32, z: f32) -> f32 {
        self.height - (row - self.horizon) * z / self.focal
    }
}

/// What lies beyond a sidewalk.
#[derive(Clone, Copy, PartialEq)]
enum Border {
    /// More pavement, then a row of buildings.
    Buildings,
    /// Grass, then a hedge or a line of trees.
    Green,
}

/// One building along a side of the road.
struct Block {
    start: f32,
    end: f32,
    height: f32,
    colour: [f32; 3],
    window: [f32; 3],
    floor: f32,
    bay: f32,
}

struct Palette {
    sky_top: [f32; 3],
    sky_horizon: [f32; 3],
    cloud: [f32; 3],
    cloudiness: f32,
    road: [f32; 3],
    marking: [f32; 3],
    sidewalk: [[f32; 3]; 2],
    grass: [f32; 3],
    leaves: [f32; 3],
    brightness: f32,
    tint: [f32; 3],
    haze: f32,
    noise: f32,
}

struct World {
    camera: Camera,
    width: usize,
    height: usize,
    /// Road centre offset: `a + b z + c z^2` metres at depth `z`.
    curve: [f32; 3],
    lane_width: f32,
    lanes: [usize; 2],
    sidewalk: [f32; 2],
    border: [Border; 2],
    /// Extra pavement or grass between the sidewalk and the buildings or hedge.
    setback: [f32; 2],
    centre_line_yellow: bool,
    dash: (f32, f32),
    palette: Palette,
    /// Shadow band across the road: lateral start and end offsets, darkness.
    shadow: (f32, f32, f32),
    salt: u32,
}

impl World {
    fn new(width: usize, height: usize, rng: &mut Rng) -> World {
        let camera = Camera {
            width: width as f32,
            focal: width as f32 * rng.uniform(0.75, 1.05),
            horizon: height as f32 * rng.uniform(0.36, 0.5),
            height: rng.uniform(1.2, 1.8),
        };
        let lanes = [rng.int(1, 3) as usize, rng.int(1, 3) as usize];
        let lane_width = rng.uniform(3.0, 3.7);
        let sidewalk = [rng.uniform(1.8, 4.5), rng.uniform(1.8, 4.5)];
        let pick_border = |rng: &mut Rng| {
            if rng.chance(0.65) {
                Border::Buildings
            } else {
                Border::Green
            }
        };
        let border = [pick_border(rng), pick_border(rng)];
        // Grass verges are wider than the pavement in front of buildings.
        let setback_of = |border: Border, rng: &mut Rng| match border {
            Border::Buildings => rng.uniform(0.0, 3.0),
            Border::Green => rng.uniform(2.0, 9.0),
        };
        let setback = [setback_of(border[0], rng), setback_of(border[1], rng)];
        // The camera drives in one of the right-hand lanes.
        let own_lane = rng.int(0, lanes[1] as i64 - 1) as f32;
        let a = -(own_lane + 0.5) * lane_width + rng.uniform(-0.6, 0.6);
        let curve = [a, rng.uniform(-0.08, 0.08), rng.uniform(-0.004, 0.004)];
        let palette = Palette::new(rng);
        let shadow_start = rng.uniform(-15.0, 10.0);
        let shadow = (
            shadow_start,
            shadow_start + rng.uniform(2.0, 12.0),
            if rng.chance(0.5) {
                rng.uniform(0.5, 0.8)
            } else {
                1.0
            },
        );
        World {
            camera,
            width,
            height,
            curve,
            lane_width,
            lanes,
            sidewalk,
            border,
            setback,
            centre_line_yellow: rng.chance(0.3),
            dash: (rng.uniform(2.0, 4.0), rng.uniform(4.0, 9.0)),
            palette,
            shadow,
            salt: rng.next_u64() as u32,
        }
    }

    fn road_centre(&self, z: f32) -> f32 {
        self.curve[0] + self.curve[1] * z + self.curve[2] * z * z
    }

    /// Returns the lateral offset from the road centre to the kerb on `side`
    /// (-1 left, 1 right).
    fn kerb(&self, side: f32) -> f32 {
        let lanes = self.lanes[usize::from(side > 0.0)] as f32;
        side * lanes * self.lane_width
    }

    fn side_index(side: f32) -> usize {
        usize::from(side > 0.0)
    }

    /// Returns the lateral offset from the road centre to the building or
    /// hedge line on `side`.
    fn frontage(&self, side: f32) -> f32 {
        let i = Self::side_index(side);
        self.kerb(side) + side * (self.sidewalk[i] + self.setback[i])
    }

    fn paint_sky(&self, canvas: &mut Canvas, rng: &mut Rng) {
        let p = &self.palette;
        let scale = rng.uniform(4.0, 10.0) / self.width as f32 * 8.0;
        for y in 0..canvas.height {
            let t = ((y as f32 + 0.5) / self.camera.horizon.max(1.0)).clamp(0.0, 1.0);
            let base = mix(p.sky_top, p.sky_horizon, t.powf(1.5));
            for x in 0..canvas.width {
                let cloud = noise(x as f32 * scale, y as f32 * scale * 2.5, self.salt ^ 7) * 0.7
                    + noise(
                        x as f32 * scale * 3.0,
                        y as f32 * scale * 6.0,
                        self.salt ^ 8,
                    ) * 0.3;
                let amount = ((cloud - 1.0 + p.cloudiness) * 2.5).clamp(0.0, 1.0);
                canvas.put(x, y, f32::INFINITY, mix(base, p.cloud, amount), id::SKY);
            }
        }
    }

    /// Paints road, markings, kerbs, sidewalks and the ground beyond them.
    fn paint_ground(&self, canvas: &mut Canvas) {
        let camera = &self.camera;
        let first = camera.horizon.floor().max(0.0) as usize;
        for y in first..canvas.height {
            let below = y as f32 + 0.5 - camera.horizon;
            if below <= 0.05 {
                continue;
            }
            let z = camera.focal * camera.height / below;
            // Half a pixel's size on the ground, to keep thin markings visible.
            let pixel = z / camera.focal;
            for x in 0..canvas.width {
                let offset = camera.world_x(x as f32 + 0.5, z) - self.road_centre(z);
                let (colour, label) = self.ground_at(offset, z, pixel);
                canvas.put(x, y, z, colour, label);
            }
        }
    }

    fn ground_at(&self, offset: f32, z: f32, pixel: f32) -> ([f32; 3], u8) {
        let p = &self.palette;
        let side = if offset < 0.0 { -1.0 } else { 1.0 };
        let i = Self::side_index(side);
        let kerb = self.kerb(side).abs();
        let lateral = offset.abs();
        let grain = noise(offset * 1.5, z * 0.6, self.salt) * 0.5
            + noise(offset * 6.0, z * 3.0, self.salt ^ 1) * 0.5;
        let in_shadow = offset > self.shadow.0 && offset < self.shadow.1;
        let light = if in_shadow { self.shadow.2 } else { 1.0 };
        if lateral < kerb {
            let mut colour = shade(p.road, 0.85 + 0.3 * grain);
            if self.is_marking(offset, z, pixel) {
                colour = if self.centre_line_yellow && offset.abs() < 0.5 {
                    [0.85, 0.7, 0.15]
                } else {
                    p.marking
                };
            }
            return (shade(colour, light), id::ROAD);
        }
        let beyond = lateral - kerb;
        if beyond < 0.2 {
            return (
                shade(mix(p.sidewalk[i], [0.8, 0.8, 0.78], 0.5), light),
                id::SIDEWALK,
            );
        }
        if beyond < self.sidewalk[i] {
            let tiles = ((beyond * 2.0).fract() < 0.06 || (z * 2.0).fract() < 0.06) as u8 as f32;
            let colour = shade(p.sidewalk[i], (0.9 + 0.2 * grain) * (1.0 - 0.15 * tiles));
            return (shade(colour, light), id::SIDEWALK);
        }
        match self.border[i] {
            Border::Buildings => (shade(p.sidewalk[i], 0.8 + 0.2 * grain), id::SIDEWALK),
            Border::Green => (shade(p.grass, 0.7 + 0.5 * grain), id::TERRAIN),
        }
    }

    /// True where a lane line covers the ground point.
    fn is_marking(&self, offset: f32, z: f32, pixel: f32) -> bool {
        let half = (0.08f32).max(pixel * 0.35);
        let dashed =
            (z / (self.dash.0 + self.dash.1)).fract() < self.dash.0 / (self.dash.0 + self.dash.1);
        let left = self.kerb(-1.0);
        let right = self.kerb(1.0);
        // Edge lines, solid, just inside each kerb.
        if (offset - (left + 0.3)).abs() < half || (offset - (right - 0.3)).abs() < half {
            return true;
        }
        if offset.abs() < half {
            return dashed || self.centre_line_yellow;
        }
        let lane = offset / self.lane_width;
        let nearest = lane.round();
        nearest != 0.0
            && offset > left + 1.0
            && offset < right - 1.0
            && (lane - nearest).abs() * self.lane_width < half
            && dashed
    }

    /// Paints buildings or greenery, trees, poles and people along `side`.
    fn paint_roadside(&self, canvas: &mut Canvas, side: f32, rng: &mut Rng) {
        let i = Self::side_index(side);
        match self.border[i] {
            Border::Buildings => self.paint_buildings(canvas, side, rng),
            Border::Green => self.paint_hedge(canvas, side, rng),
        }
        let kerb = self.kerb(side);
        let mut z = rng.uniform(3.0, 15.0);
        let spacing = rng.uniform(12.0, 30.0);
        while z < 90.0 {
            let x = self.road_centre(z) + kerb + side * rng.uniform(0.4, 0.8);
            self.paint_pole(canvas, x, z, rng);
            z += spacing * rng.uniform(0.8, 1.2);
        }
        let tree_chance = if self.border[i] == Border::Green {
            0.8
        } else {
            0.35
        };
        if rng.chance(tree_chance) {
            let mut z = rng.uniform(5.0, 20.0);
            let spacing = rng.uniform(8.0, 20.0);
            while z < 150.0 {
                let inset = if self.border[i] == Border::Green {
                    self.sidewalk[i] + rng.uniform(0.5, 2.0)
                } else {
                    self.sidewalk[i] * 0.6
                };
                let x = self.road_centre(z) + kerb + side * inset;
                self.paint_tree(canvas, x, z, rng);
                z += spacing * rng.uniform(0.7, 1.4);
            }
        }
        for _ in 0..rng.int(0, 5) {
            let z = rng.uniform(4.0, 32.0);
            let x = self.road_centre(z) + kerb + side * rng.uniform(0.5, self.sidewalk[i] - 0.3);
            self.paint_person(canvas, x, z, rng);
        }
    }

    fn paint_buildings(&self, canvas: &mut Canvas, side: f32, rng: &mut Rng) {
        let mut blocks = Vec::new();
        let mut start = rng.uniform(-5.0, 3.0);
        while start < 250.0 {
            let length = rng.uniform(8.0, 35.0);
            let base = [
                [0.75, 0.7, 0.6],
                [0.55, 0.35, 0.28],
                [0.6, 0.6, 0.62],
                [0.85, 0.85, 0.8],
                [0.4, 0.4, 0.45],
            ];
            let pick = rng.int(0, 4) as usize;
            let colour = rng.vary(base[pick], 0.08);
            blocks.push(Block {
                start,
                end: start + length,
                height: rng.uniform(6.0, 32.0),
                colour,
                window: rng.vary([0.2, 0.25, 0.32], 0.06),
                floor: rng.uniform(2.8, 3.6),
                bay: rng.uniform(2.0, 3.5),
            });
            // Sometimes a gap: a side street or a courtyard.
            start += length
                + if rng.chance(0.15) {
                    rng.uniform(6.0, 15.0)
                } else {
                    0.0
                };
        }
        let line = self.frontage(side);
        self.paint_facade(
            canvas,
            line,
            |z| {
                blocks
                    .iter()
                    .find(|b| z >= b.start && z < b.end)
                    .map(|b| b.height)
            },
            |z, up| {
                let block = blocks.iter().find(|b| z >= b.start && z < b.end)?;
                let along = (z - block.start) / block.bay;
                let storey = up / block.floor;
                let in_window = along.fract() > 0.3
                    && along.fract() < 0.8
                    && storey.fract() > 0.3
                    && storey.fract() < 0.75
                    && storey > 1.0;
                let shop = storey < 1.0 && storey > 0.15 && along.fract() > 0.1;
                let colour = if in_window || shop {
                    block.window
                } else {
                    block.colour
                };
                let grime = 0.9 + 0.2 * noise(z * 0.8, up * 0.8, self.salt ^ 3);
                Some((shade(colour, grime), id::BUILDING))
            },
        );
    }

    fn paint_hedge(&self, canvas: &mut Canvas, side: f32, rng: &mut Rng) {
        let low = rng.uniform(1.5, 6.0);
        let high = low + rng.uniform(1.0, 14.0);
        let leaves = self.palette.leaves;
        let salt = self.salt ^ 5;
        let height = move |z: f32| low + (high - low) * noise(z * 0.15, 0.5, salt);
        let line = self.frontage(side);
        self.paint_facade(
            canvas,
            line,
            |z| Some(height(z)),
            |z, up| {
                let texture = noise(z * 1.7, up * 1.7, salt ^ 9) * 0.6
                    + noise(z * 5.0, up * 5.0, salt ^ 10) * 0.4;
                Some((shade(leaves, 0.55 + 0.7 * texture), id::VEGETATION))
            },
        );
    }

    /// Paints a vertical surface that follows the road at lateral `line` from
    /// its centre: `height(z)` gives its top, `shader(z, up)` its pixels.
    fn paint_facade(
        &self,
        canvas: &mut Canvas,
        line: f32,
        height: impl Fn(f32) -> Option<f32>,
        shader: impl Fn(f32, f32) -> Option<([f32; 3], u8)>,
    ) {
        let camera = &self.camera;
        let [a, b, c] = self.curve;
        for x in 0..canvas.width {
            let u = (x as f32 + 0.5 - camera.width / 2.0) / camera.focal;
            // The column's ray meets the surface where c z^2 + (b - u) z + a + line = 0.
            let Some(z) = nearest_root(c, b - u, a + line) else {
                continue;
            };
            if !(0.5..300.0).contains(&z) {
                continue;
            }
            let Some(top) = height(z) else { continue };
            let y_top = camera.screen_y(top, z).max(0.0);
            let y_bottom = camera.screen_y(0.0, z).min(canvas.height as f32);
            let (first, last) = (y_top.round() as usize, y_bottom.round() as usize);
            for y in first..last {
                let up = camera.world_up(y as f32 + 0.5, z);
                if let Some((colour, label)) = shader(z, up) {
                    canvas.put(x, y, z, colour, label);
                }
            }
        }
    }

    /// Paints a flat upright shape facing the camera at depth `z`, centred
    /// on lateral `x`, `width` metres wide and `height` metres high. The
    /// `shader` receives each pixel's offset from the centre and its height.
    fn paint_billboard(
        &self,
        canvas: &mut Canvas,
        (x, z): (f32, f32),
        (width, height): (f32, f32),
        shader: impl Fn(f32, f32) -> Option<([f32; 3], u8)>,
    ) {
        let camera = &self.camera;
        if z < 0.5 {
            return;
        }
        let left = camera.screen_x(x - width / 2.0, z).floor().max(0.0) as usize;
        let right =
            (camera.screen_x(x + width / 2.0, z).ceil().max(0.0) as usize).min(canvas.width);
        let top = camera.screen_y(height, z).floor().max(0.0) as usize;
        let bottom = (camera.screen_y(0.0, z).ceil().max(0.0) as usize).min(canvas.height);
        for y in top..bottom {
            let up = camera.world_up(y as f32 + 0.5, z);
            if up < 0.0 || up > height {
                continue;
            }
            for column in left..right {
                let across = camera.world_x(column as f32 + 0.5, z) - x;
                if across.abs() > width / 2.0 {
                    continue;
                }
                if let Some((colour, label)) = shader(across, up) {
                    canvas.put(column, y, z, colour, label);
                }
            }
        }
    }

    fn paint_pole(&self, canvas: &mut Canvas, x: f32, z: f32, rng: &mut Rng) {
        let height = rng.uniform(5.0, 9.0);
        let width = rng.uniform(0.22, 0.4);
        let colour = rng.vary([0.35, 0.36, 0.38], 0.12);
        self.paint_billboard(canvas, (x, z), (width, height), |across, _| {
            Some((shade(colour, 1.0 + across / width * 0.4), id::POLE))
        });
    }

    fn paint_tree(&self, canvas: &mut Canvas, x: f32, z: f32, rng: &mut Rng) {
        let trunk = rng.uniform(1.5, 3.5);
        let radius = rng.uniform(1.2, 3.0);
        let bark = rng.vary([0.3, 0.22, 0.15], 0.05);
        let leaves = rng.vary(self.palette.leaves, 0.08);
        let salt = rng.next_u64() as u32;
        let centre = trunk + radius * 0.8;
        self.paint_billboard(
            canvas,
            (x, z),
            (radius * 2.4, centre + radius * 1.2),
            |across, up| {
                let (dx, dy) = (across / (radius * 1.1), (up - centre) / radius);
                let ragged = 0.75 + 0.35 * noise(across * 2.0, up * 2.0, salt);
                if dx * dx + dy * dy < ragged * ragged {
                    let texture = noise(across * 6.0, up * 6.0, salt ^ 1);
                    return Some((
                        shade(leaves, 0.6 + 0.6 * texture - 0.2 * dy),
                        id::VEGETATION,
                    ));
                }
                (across.abs() < 0.15 && up < centre).then_some((bark, id::VEGETATION))
            },
        );
    }

    fn paint_person(&self, canvas: &mut Canvas, x: f32, z: f32, rng: &mut Rng) {
        let height = rng.uniform(1.55, 1.95);
        let skin = rng.vary([0.75, 0.58, 0.45], 0.2);
        let top = [
            rng.uniform(0.1, 0.9),
            rng.uniform(0.1, 0.9),
            rng.uniform(0.1, 0.9),
        ];
        let trousers = rng.vary([0.2, 0.22, 0.3], 0.15);
        let stride = rng.uniform(0.0, 0.18);
        let h = height / 1.75;
        self.paint_billboard(canvas, (x, z), (0.6, height), |across, up| {
            let head =
                (up - 1.62 * h).powi(2) / (0.12 * h).powi(2) + across.powi(2) / 0.1f32.powi(2);
            if head < 1.0 {
                return Some((skin, id::PERSON));
            }
            if up > 0.85 * h && up < 1.5 * h && across.abs() < 0.22 {
                return Some((top, id::PERSON));
            }
            if up > 0.9 * h && up < 1.45 * h && across.abs() < 0.28 && across.abs() > 0.2 {
                return Some((shade(top, 0.8), id::PERSON));
            }
            let spread = stride * (1.0 - up / (0.85 * h));
            let leg = (across.abs() - 0.09 - spread).abs() < 0.075;
            (up <= 0.85 * h && leg).then_some((trousers, id::PERSON))
        });
    }

    /// Paints cars in the lanes and parked at the kerbs, and sometimes
    /// people crossing.
    fn paint_traffic(&self, canvas: &mut Canvas, rng: &mut Rng) {
        for _ in 0..rng.int(1, 7) {
            let side = if rng.chance(0.5) { -1.0 } else { 1.0 };
            let lanes = self.lanes[Self::side_index(side)];
            let lane = rng.int(0, lanes as i64 - 1) as f32;
            let z = rng.uniform(5.0, 70.0);
            let x = self.road_centre(z)
                + side * (lane + 0.5) * self.lane_width
                + rng.uniform(-0.4, 0.4);
            self.paint_car(canvas, x, z, rng);
        }
        for side in [-1.0, 1.0] {
            if rng.chance(0.4) {
                let mut z = rng.uniform(4.0, 20.0);
                for _ in 0..rng.int(1, 5) {
                    let x = self.road_centre(z) + self.kerb(side) - side * 1.2;
                    self.paint_car(canvas, x, z, rng);
                    z += rng.uniform(5.5, 12.0);
                }
            }
        }
        if rng.chance(0.2) {
            let z = rng.uniform(6.0, 25.0);
            for _ in 0..rng.int(1, 3) {
                let x = self.road_centre(z) + rng.uniform(self.kerb(-1.0), self.kerb(1.0));
                self.paint_person(canvas, x, z + rng.uniform(-1.0, 1.0), rng);
            }
        }
    }

    /// Paints a car whose rear is at depth `z`, centred on lateral `x`: its
    /// rear face and the side face turned towards the camera.
    fn paint_car(&self, canvas: &mut Canvas, x: f32, z: f32, rng: &mut Rng) {
        let width = rng.uniform(1.65, 1.95);
        let height = rng.uniform(1.35, 1.85);
        let length = rng.uniform(3.8, 4.9);
        let paints = [
            [0.8, 0.1, 0.1],
            [0.1, 0.2, 0.6],
            [0.9, 0.9, 0.9],
            [0.1, 0.1, 0.1],
            [0.5, 0.5, 0.55],
            [0.2, 0.45, 0.25],
        ];
        let pick = rng.int(0, 5) as usize;
        let body = rng.vary(paints[pick], 0.1);
        let glass = rng.vary([0.12, 0.15, 0.2], 0.04);
        let tyre = [0.05, 0.05, 0.05];
        let waist = height * rng.uniform(0.5, 0.6);
        // The side face turned towards the camera, at a constant lateral position.
        let near_side = if x > 0.0 {
            x - width / 2.0
        } else {
            x + width / 2.0
        };
        let camera = &self.camera;
        for column in 0..canvas.width {
            let u = (column as f32 + 0.5 - camera.width / 2.0) / camera.focal;
            if u.abs() < 1e-4 || (near_side / u) < z || (near_side / u) > z + length {
                continue;
            }
            let depth = near_side / u;
            let along = depth - z;
            let top = camera.screen_y(height, depth).floor().max(0.0) as usize;
            let bottom = (camera.screen_y(0.0, depth).ceil().max(0.0) as usize).min(canvas.height);
            for y in top..bottom {
                let up = camera.world_up(y as f32 + 0.5, depth);
                if !(0.0..=height).contains(&up) {
                    continue;
                }
                // The roof narrows towards the front and the back.
                let cabin = up > waist && (along < length * 0.2 || along > length * 0.8);
                if cabin {
                    continue;
                }
                let wheel = [length * 0.2, length * 0.8]
                    .iter()
                    .any(|&w| (along - w).powi(2) + (up - 0.33).powi(2) < 0.33f32.powi(2));
                let colour = if wheel {
                    tyre
                } else if up > waist + 0.08 && up < height - 0.08 {
                    glass
                } else {
                    shade(body, 0.8)
                };
                canvas.put(column, y, depth, colour, id::CAR);
            }
        }
        self.paint_billboard(canvas, (x, z), (width, height), |across, up| {
            let roof_half = width / 2.0 - (up - waist).max(0.0) / (height - waist) * width * 0.12;
            if across.abs() > roof_half {
                return None;
            }
            let colour = if up < 0.35 && across.abs() > width / 2.0 - 0.35 {
                tyre
            } else if up > waist + 0.08 && up < height - 0.08 && across.abs() < roof_half - 0.1 {
                glass
            } else if up > waist - 0.3 && up < waist - 0.1 && across.abs() > width / 2.0 - 0.35 {
                [0.85, 0.1, 0.08]
            } else if up < 0.45 {
                shade(body, 0.6)
            } else {
                body
            };
            Some((colour, id::CAR))
        });
    }

    /// Sometimes paints the ego car's bonnet at the bottom, labelled ignored.
    fn paint_bonnet(&self, canvas: &mut Canvas, rng: &mut Rng) {
        if !rng.chance(0.3) {
            return;
        }
        let rows = (canvas.height as f32 * rng.uniform(0.05, 0.12)) as usize;
        let colour = rng.vary([0.15, 0.15, 0.18], 0.1);
        let bulge = rng.uniform(0.2, 0.6);
        for y in canvas.height.saturating_sub(rows)..canvas.height {
            for x in 0..canvas.width {
                let t = (x as f32 + 0.5) / canvas.width as f32 * 2.0 - 1.0;
                let edge = canvas.height as f32 - rows as f32 * (1.0 - bulge * t * t);
                if y as f32 + 0.5 >= edge {
                    canvas.put(x, y, 0.0, shade(colour, 1.0 - 0.3 * t.abs()), IGNORE);
                }
            }
        }
    }

    /// Applies haze, lighting and noise, and returns the RGB bytes and labels.
    fn finish(&self, canvas: &Canvas, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
        let p = &self.palette;
        let mut rgb = Vec::with_capacity(canvas.colour.len() * 3);
        for (colour, &depth) in canvas.colour.iter().zip(&canvas.depth) {
            let haze = if depth.is_finite() {
                1.0 - (-depth * p.haze).exp()
            } else {
                0.0
            };
            let colour = mix(*colour, p.sky_horizon, haze * 0.8);
            for (channel, value) in colour.iter().enumerate() {
                let lit = value * p.brightness * p.tint[channel] + rng.normal() * p.noise;
                rgb.push((lit.clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
        debug_assert_eq!(rgb.len(), self.width * self.height * 3);
        (rgb, canvas.label.clone())
    }
}

/// Returns the smallest positive root of `a z^2 + b z + c = 0`.
fn nearest_root(a: f32, b: f32, c: f32) -> Option<f32> {
    if a.abs() < 1e-9 {
        let z = -c / b;
        return (b.abs() > 1e-9 && z > 0.0).then_some(z);
    }
    let discriminant = b * b - 4.0 * a * c;
    if discriminant < 0.0 {
        return None;
    }
    let root = discriminant.sqrt();
    let mut roots = [(-b - root) / (2.0 * a), (-b + root) / (2.0 * a)];
    roots.sort_by(f32::total_cmp);
    roots.into_iter().find(|&z| z > 0.0)
}

impl Palette {
    /// Draws a time of day (clear, overcast or dusk) and the scene's colours.
    fn new(rng: &mut Rng) -> Palette {
        let (sky_top, sky_horizon, cloud, brightness) = match rng.int(0, 2) {
            0 => (
                [0.25, 0.45, 0.85],
                [0.7, 0.82, 0.95],
                [0.95, 0.95, 0.97],
                rng.uniform(0.9, 1.15),
            ),
            1 => (
                [0.55, 0.58, 0.62],
                [0.78, 0.8, 0.82],
                [0.85, 0.86, 0.88],
                rng.uniform(0.7, 1.0),
            ),
            _ => (
                [0.2, 0.25, 0.5],
                [0.95, 0.6, 0.35],
                [0.8, 0.55, 0.5],
                rng.uniform(0.55, 0.85),
            ),
        };
        let pavements = [
            [0.6, 0.58, 0.55],
            [0.62, 0.45, 0.42],
            [0.5, 0.52, 0.55],
            [0.7, 0.66, 0.58],
        ];
        let sidewalk = [
            pavements[rng.int(0, 3) as usize],
            pavements[rng.int(0, 3) as usize],
        ];
        let tint = [
            rng.uniform(0.9, 1.1),
            rng.uniform(0.92, 1.08),
            rng.uniform(0.9, 1.1),
        ];
        Palette {
            sky_top: rng.vary(sky_top, 0.05),
            sky_horizon: rng.vary(sky_horizon, 0.05),
            cloud,
            cloudiness: rng.uniform(0.0, 0.7),
            road: [rng.uniform(0.22, 0.45); 3].map(|g| g + rng.uniform(-0.02, 0.02)),
            marking: rng.vary([0.92, 0.92, 0.9], 0.05),
            sidewalk: [rng.vary(sidewalk[0], 0.05), rng.vary(sidewalk[1], 0.05)],
            grass: rng.vary([0.35, 0.55, 0.2], 0.08),
            leaves: rng.vary([0.2, 0.42, 0.15], 0.07),
            brightness,
            tint,
            haze: rng.uniform(0.002, 0.02),
            noise: rng.uniform(0.005, 0.04),
        }
    }
}
