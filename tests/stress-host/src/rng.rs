//! A small deterministic pseudo-random generator (xorshift64*): every CPU of the stress
//! draws its operations from its own seed, so a run can be repeated exactly.

pub struct XorShift(u64);

impl XorShift {
    /// A generator for CPU `cpu`; never seeded with 0 (xorshift would stay at 0).
    pub fn for_cpu(cpu: usize) -> Self {
        let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(cpu as u64 + 1) ^ 0x5EED_5EED;
        Self(if seed == 0 { 1 } else { seed })
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..bound` (`bound` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, bound: u64) -> u64 {
        (self.next() >> 16) % bound.max(1)
    }
}
