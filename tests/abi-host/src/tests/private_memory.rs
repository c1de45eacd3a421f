//! Memory the host gave away is out of its reach (docs/abi.md 7.4).

use crate::checks::{expect_read_aborts, expect_write_aborts};
use crate::runner::{Ctx, TestResult, bail};
use crate::tests::sharing::{run_to_shared, unshare};
use el1_rt::guest_vm::PageUse;
use el1_rt::test_guest_driver;
use test_guest::{Command, IMAGE_GFN, SECRET_GFN, SHARED_GFN, Step};

/// While the guest runs (and shares another page), host reads and writes of its private
/// secret page, of its image and of the VM's pool pages all abort; the guest then finds
/// its secret intact.
pub fn host_access_to_private_page_aborts(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    run_to_shared(&mut guest)?;
    let secret = guest.vm().host_address(SECRET_GFN)?;
    expect_read_aborts(secret, "host read of the guest's secret page")?;
    expect_write_aborts(secret, "host write to the guest's secret page")?;
    let image = guest.vm().host_address(IMAGE_GFN)?;
    expect_read_aborts(image, "host read of the guest's image")?;
    let Some(pool) = guest
        .vm()
        .ranges()
        .find(|range| range.used_as == PageUse::Pool)
    else {
        bail!("the VM has no pool pages");
    };
    expect_read_aborts(pool.address(), "host read of a VM pool page")?;

    // Let the guest finish: it checks the secret after the host's refused write.
    test_guest_driver::write_reply(guest.vm().host_address(SHARED_GFN)?);
    unshare(&mut guest)?;
    guest.expect_step(0, 0, Step::Unshared, "the guest's Unshared report")?;
    guest.expect_done(0, 0)?;
    Ok(())
}
