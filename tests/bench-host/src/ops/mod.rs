//! The operations the bench measures, each with its set-up and tear-down. Each prints one
//! `bench: result` line per measured operation (report.rs); names are the `op=` keys
//! xtask knows (xtask/src/bench/ops.rs).

pub mod calls;
pub mod guest;
pub mod host_abort;
pub mod hyp_share;
pub mod sanity;
pub mod vm_memory;

use crate::config::Counts;
use crate::pages::Pages;

/// Every operation, cheapest first.
pub fn run_all(counts: &Counts, pages: &mut Pages) {
    sanity::test_guest_runs(pages);
    calls::run(counts);
    hyp_share::run(counts, pages);
    vm_memory::run(counts, pages);
    guest::run(counts, pages);
}
