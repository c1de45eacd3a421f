//! SMMUv3 queue pointers (Arm IHI 0070 3.5.1): PROD and CONS hold an index of `log2` bits and
//! a wrap bit above it. The queue is empty when both are equal, full when the indices are
//! equal and the wrap bits differ.

/// A PROD or CONS value (other bits, such as CONS.ERR or the overflow flag, masked off by
/// the functions here).
pub type QueueIndex = u32;

fn mask(log2: u32) -> u32 {
    (2 << log2) - 1
}

/// The pointer after `p`, wrapping the index into the wrap bit.
pub fn next(p: QueueIndex, log2: u32) -> QueueIndex {
    (p & !mask(log2)) | ((p + 1) & mask(log2))
}

/// Whether a queue with these pointers is empty.
pub fn is_empty(prod: QueueIndex, cons: QueueIndex, log2: u32) -> bool {
    (prod ^ cons) & mask(log2) == 0
}

/// Whether a queue with these pointers is full.
pub fn is_full(prod: QueueIndex, cons: QueueIndex, log2: u32) -> bool {
    (prod ^ cons) & mask(log2) == 1 << log2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_wrap_through_the_wrap_bit_and_full_differs_from_empty() {
        let log2 = 2; // 4 entries
        let mut prod = 0;
        let cons = 0;
        assert!(is_empty(prod, cons, log2));
        for _ in 0..4 {
            assert!(!is_full(prod, cons, log2));
            prod = next(prod, log2);
        }
        assert_eq!(prod, 0b100, "index 0, wrap bit set");
        assert!(is_full(prod, cons, log2) && !is_empty(prod, cons, log2));
        let cons = next(next(next(next(cons, log2), log2), log2), log2);
        assert!(is_empty(prod, cons, log2));
        // Eight steps come back to the start; bits above the wrap bit are left alone.
        let mut p = 1 << 31;
        for _ in 0..8 {
            p = next(p, log2);
        }
        assert_eq!(p, 1 << 31);
    }
}
