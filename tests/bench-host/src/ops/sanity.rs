//! Before anything is measured: the project's test guest (tests/test-guest, embedded from
//! `TEST_GUEST_BIN`) runs its Discovery command to the end, so a bench of a payload that
//! cannot run a guest stops with that reason instead of a confusing number.

use crate::pages::Pages;
use el1_rt::test_guest_driver::TestGuest;
use el1_rt::{fail, say};
use test_guest::Command;

/// The raw test guest (objcopy -O binary of tests/test-guest), built by xtask first.
static TEST_GUEST: &[u8] = include_bytes!(env!("TEST_GUEST_BIN"));

pub fn test_guest_runs(pages: &mut Pages) {
    let mut guest = match TestGuest::build(pages.free_pages(), TEST_GUEST, Command::Discovery, 1) {
        Ok(guest) => guest,
        Err(e) => fail!("building the test guest: {e}"),
    };
    if let Err(e) = guest.expect_done(0, 0) {
        fail!("the test guest's Discovery command: {e}");
    }
    if let Err(e) = guest.vm().destroy() {
        fail!("VM_DESTROY of the test guest: {e}");
    }
    match guest.vm_mut().reclaim_all() {
        Ok(reclaimed) if reclaimed.first_nonzero.is_none() => {
            say!(
                "test guest ran Discovery; {} pages reclaimed",
                reclaimed.pages
            );
        }
        Ok(reclaimed) => fail!(
            "a reclaimed page of the test guest is not zero at {:#x}",
            reclaimed.first_nonzero.unwrap_or(0)
        ),
        Err(e) => fail!("reclaiming the test guest: {e}"),
    }
}
