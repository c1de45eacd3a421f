//! Guest calls checked from inside the guest (docs/abi.md section 5): the guest compares
//! every result with the document and reports the first difference.

use crate::runner::{Ctx, TestResult};
use test_guest::Command;

/// The guest's UID, FEATURES (2.0, 0x7F_0000_0001) and HYP_MEMINFO (4096) are right.
pub fn guest_discovery_reports_guest_bitmap_and_granule(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::Discovery, 1)?;
    guest.expect_done(0, 0)?;
    Ok(())
}

/// Bad guest calls get the error of the first applying row of their table, and no exit:
/// nr = 0, unaligned ipa, nr = 513, MBZ x3, beyond ipa_bits, unmapped ipa, unshare of a
/// private page, HYP_MEMINFO with x1 set, a host call from the guest.
pub fn guest_call_errors_follow_the_tables(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::CallErrors, 1)?;
    guest.expect_done(0, 0)?;
    Ok(())
}
