//! Milliseconds from the virtual counter, for the timing the stress reports.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, Readable};

pub fn now_ms() -> u64 {
    let ticks_per_ms = (CNTFRQ_EL0.get() / 1000).max(1);
    CNTVCT_EL0.get() / ticks_per_ms
}
