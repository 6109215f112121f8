//! The simulation's random numbers: SplitMix64, written out here so that a seed replays the
//! same run for as long as this file does not change — a library RNG may change its stream in
//! a minor release, which would silently turn every recorded seed into a different run.

/// A small, fast, seedable generator (Steele, Lea & Flood's SplitMix64). Not for secrets.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// An independent stream for one part of the run (an actor, the fault plan), so that adding
    /// draws in one part does not shift the numbers every other part sees.
    pub fn fork(seed: u64, stream: u64) -> Self {
        let mut mixer = SimRng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        SimRng(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        // Lemire's multiply-shift: unbiased enough for a simulation, and branch-free.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        assert!(low <= high, "between({low}, {high})");
        let span = (high - low) as u64 + 1;
        low + self.below(span) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Hex text of 16 random bytes: claim tokens and the like.
    pub fn token(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_fixed_by_the_seed() {
        // The first outputs of SplitMix64 seeded with 0, from the reference implementation.
        let mut rng = SimRng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let (mut a, mut b) = (SimRng::fork(7, 1), SimRng::fork(7, 1));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(SimRng::fork(7, 1).next_u64(), SimRng::fork(7, 2).next_u64());
    }

    #[test]
    fn ranges_stay_inside_their_bounds() {
        let mut rng = SimRng::new(42);
        for _ in 0..10_000 {
            assert!((-3..=6).contains(&rng.between(-3, 6)));
            assert!(rng.below(5) < 5);
        }
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
    }
}
