//! MEM_RELINQUISH (docs/abi.md 5.3): a private page goes back to the host, zeroed.

use crate::checks::{expect_error, expect_zeroed};
use crate::runner::{Ctx, TestResult};
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::test_guest_driver::Event;
use hvc_abi::{AccessSize, Error, Exit, HostCall, MmioAccess};
use test_guest::{Command, RELINQUISHED_READ_VALUE, SPARE_GFN, Step, ipa};

/// The guest fills a page and relinquishes it: exit MEM_RELINQUISHED names it, the host
/// can read it and it is all zero, it is the host's again (VM_RECLAIM: DENIED), and the
/// guest's next load from it is an MMIO read exit.
pub fn guest_relinquish_returns_page_zeroed(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::Relinquish, 1)?;
    let spare_ipa = ipa(SPARE_GFN);
    guest.expect_exit(
        0,
        0,
        Exit::MemRelinquished {
            ipa: spare_ipa,
            nr: 1,
        },
        "exit MEM_RELINQUISHED of the spare page",
    )?;
    let spare = guest.vm_mut().page_returned(SPARE_GFN)?;
    expect_zeroed(spare, PAGE_SIZE, "the relinquished page")?;
    expect_error(
        HostCall::VmReclaim {
            pfn: (spare / PAGE_SIZE) as u64,
            nr: 1,
        },
        Error::Denied,
        "VM_RECLAIM of a relinquished (host) page",
    )?;
    guest.expect_step(0, 0, Step::Relinquished, "the guest's Relinquished report")?;
    // The load's register is the compiler's choice; the rest of the exit is fixed.
    match guest.next_event(0, 0)? {
        Event::Exit(Exit::Mmio {
            ipa,
            size: AccessSize::B8,
            access: MmioAccess::Read,
            ..
        }) if ipa == spare_ipa => {}
        other => {
            return Err(guest
                .unexpected("an MMIO read exit for the relinquished page", other)
                .into());
        }
    }
    guest.expect_done(0, RELINQUISHED_READ_VALUE)?;
    Ok(())
}
