//! The Park-Miller "minimal standard" generator that the DeepTraffic 2.0
//! engine (`gameopt.js`) seeds for its layout and behaviour streams.
//!
//! The state is an integer in [1, 2^31 - 2]; each step multiplies it by 16807
//! modulo 2^31 - 1, and a uniform draw is `(state - 1) / (2^31 - 2)`, in
//! [0, 1). The arithmetic is exact in integers, and the division is the same
//! double-precision division JavaScript does, so draws match bit for bit.

const MODULUS: u64 = 2_147_483_647;

/// A seeded Park-Miller stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkMiller {
    state: u64,
}

impl ParkMiller {
    /// Seeds the stream as the engine does: `seed mod (2^31 - 1)`, and
    /// `2^31 - 2` is added when that is not positive (so seed 0 is valid).
    pub fn new(seed: i64) -> ParkMiller {
        let mut state = seed % MODULUS as i64;
        if state <= 0 {
            state += MODULUS as i64 - 1;
        }
        ParkMiller { state: state as u64 }
    }

    /// Advances the stream and returns a uniform draw in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.state = 16807 * self.state % MODULUS;
        (self.state - 1) as f64 / (MODULUS - 1) as f64
    }

    /// Returns a uniform integer in `0..n`, drawn as `floor(n * uniform)`.
    pub fn below(&mut self, n: usize) -> usize {
        ((n as f64 * self.uniform()).floor() as usize).min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_draws_of_seed_one_follow_the_recurrence() {
        let mut rng = ParkMiller::new(1);
        assert_eq!(rng.uniform(), 16806.0 / 2_147_483_646.0);
        assert_eq!(rng.uniform(), (16807.0 * 16807.0 - 1.0) / 2_147_483_646.0);
    }

    #[test]
    fn seed_zero_and_negative_seeds_are_valid() {
        assert_eq!(ParkMiller::new(0), ParkMiller::new(2_147_483_646));
        let mut rng = ParkMiller::new(-5);
        assert!((0.0..1.0).contains(&rng.uniform()));
    }
}
