//! Results of the stress that docs/abi.md does not allow (or that break the host's own
//! bookkeeping): each is counted, the first ones are printed with the CPU that saw them,
//! and any at all fails the stress test.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use el1_rt::say;

/// Violations printed in full; later ones are only counted.
const MAX_PRINTED: u32 = 20;

static COUNT: AtomicU32 = AtomicU32::new(0);

pub fn report(cpu: usize, what: fmt::Arguments) {
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    if n < MAX_PRINTED {
        say!("violation (cpu {cpu}): {what}");
    }
}

pub fn count() -> u32 {
    COUNT.load(Ordering::Relaxed)
}
