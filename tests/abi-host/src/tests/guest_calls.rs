//! Guest calls checked from inside the guest (docs/abi.md section 5): the guest compares
//! every result with the document and reports the first difference.

use crate::runner::{Ctx, TestResult, bail};
use el1_rt::test_guest_driver::Event;
use hvc_abi::Exit;
use test_guest::{Command, EXCEPTION_CHECK, Report};

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

/// A guest's read of GCR_EL1 (MTE) is an undefined instruction in the guest, also on a CPU
/// with MTE2 where the host has MTE: the guest's MTE state is not switched, so HCR_EL2.ATA
/// stays clear while it runs. (Without MTE the register does not exist: undefined too.)
pub fn guest_cannot_reach_mte_registers(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::MteHidden, 1)?;
    // Vector 4: synchronous, current EL with SP_ELx; ESR_EL1.EC 0: unknown reason (UNDEF).
    match guest.next_event(0, 0)? {
        Event::Report(Report::Failed { check, value })
            if check == EXCEPTION_CHECK + 4 && value >> 26 == 0 => {}
        other => bail!("GCR_EL1 read: expected an undefined-instruction report, got {other}"),
    }
    guest.expect_exit(0, 0, Exit::SystemOff, "SYSTEM_OFF after the report")?;
    Ok(())
}
