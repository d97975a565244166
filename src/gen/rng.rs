//! The generator's only source of randomness: SplitMix64, written out here so
//! that a given seed produces the same identities on every platform and with
//! every version of every dependency. Only integer arithmetic is used, so no
//! floating-point rounding can creep into the output either.
//!
//! Each person draws from a stream of their own, derived from the seed and
//! their index: adding a field to one person's record then changes that
//! person's draws only, not everyone after them.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, full period.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function; also a good 64-bit hash for deriving seeds.
pub fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The stream for item `index` of the run seeded with `seed`. Mixing
    /// twice keeps neighbouring indices (and neighbouring seeds) unrelated.
    pub fn stream(seed: u64, index: u64) -> SplitMix64 {
        SplitMix64::new(mix(seed ^ mix(index.wrapping_add(GOLDEN_GAMMA))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40
    /// for every `n` used here). `n == 0` yields 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a slice of length `n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`; `lo` when the range is empty.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Like [`pick`](Self::pick) but favouring the front of the slice (the
    /// smaller of two draws): lists are ordered most common first, so a few
    /// names are frequent and the tail is rare, as in real populations.
    pub fn pick_skewed<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let a = self.index(items.len());
        let b = self.index(items.len());
        &items[a.min(b)]
    }

    /// Index chosen with the given integer weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }
}
