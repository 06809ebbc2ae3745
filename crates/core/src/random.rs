//! Randomness as an injectable value.

use parking_lot::Mutex;

/// A source of random bytes.
pub trait RandomSource: Send + Sync + 'static {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A random `u64`.
    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// The operating system's cryptographically secure generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator failing is unrecoverable and does not happen on
        // supported platforms.
        getrandom::fill(buf).expect("operating system random generator failed");
    }
}

/// A deterministic generator (SplitMix64) for tests. Not for secrets.
#[derive(Debug)]
pub struct SeededRandom {
    state: Mutex<u64>,
}

impl SeededRandom {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Mutex::new(seed),
        }
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut state = self.state.lock();
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_seed_dependent() {
        let mut a = [0u8; 13];
        let mut b = [0u8; 13];
        let mut c = [0u8; 13];
        SeededRandom::new(7).fill(&mut a);
        SeededRandom::new(7).fill(&mut b);
        SeededRandom::new(8).fill(&mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
