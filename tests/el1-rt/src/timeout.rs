//! Bounded waits, measured with the virtual counter so they do not depend on how fast
//! QEMU happens to run.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, Readable};

/// A point in time after which a wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(u64);

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        let ticks_per_ms = (CNTFRQ_EL0.get() / 1000).max(1);
        Self(
            CNTVCT_EL0
                .get()
                .saturating_add(ms.saturating_mul(ticks_per_ms)),
        )
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        CNTVCT_EL0.get() >= self.0
    }
}

/// Polls `done` until it returns true or `ms` milliseconds have passed; returns whether it
/// finished in time.
pub fn wait_until(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Deadline::after_ms(ms);
    loop {
        if done() {
            return true;
        }
        if deadline.passed() {
            return done();
        }
        core::hint::spin_loop();
    }
}
