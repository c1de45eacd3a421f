//! Pages that belong to a VM: donated or topped up. No other VM can get them, the
//! host can neither give them again nor take them back while the VM lives, and a range
//! that includes one is refused as a whole (docs/abi.md 1.7, 7.1, 7.2).

use super::host_calls::{share_hyp, unshare_hyp};
use super::{GFN, expect_err, expect_ok, retire};
use crate::msg::{TestResult, bail, ensure};
use crate::pages::{address, expect_host_page, expect_read_aborts, pfn};
use crate::runner::Ctx;
use el1_rt::guest_vm::{GuestVm, PageUse};
use el1_rt::host_calls::{vm_donate, vm_reclaim, vm_topup};
use el1_rt::probe;

/// Written into pages before they are given away, to see that reclaim zeroes them.
const PATTERN: u64 = 0x5715_e55e_d0d0_cafe;

fn pool_page(vm: &GuestVm) -> Result<u64, crate::msg::Msg> {
    match vm.ranges().find(|range| range.used_as == PageUse::Pool) {
        Some(range) => Ok(range.pfn),
        None => bail!("{:?} has no pool page", vm.handle()),
    }
}

fn fill(at: usize) -> TestResult {
    if let Err(abort) = probe::write_u64(at, PATTERN) {
        bail!(
            "fresh page {at:#x} refused a write (ESR_EL1={:#x})",
            abort.esr
        );
    }
    Ok(())
}

/// A page donated to VM A: no second donation (to A or B), no top-up, no share
/// with EL2, no reclaim; its IPA takes no other page; a range that includes it is refused
/// whole. After A is destroyed it comes back, zeroed.
pub fn donated_page_refused(ctx: &mut Ctx) -> TestResult {
    let mut a = ctx.vm_with_pool()?;
    let mut b = ctx.vm_with_pool()?;
    let (ha, hb) = (a.handle(), b.handle());
    // Three pages: the middle one is donated, the outer ones stay the host's.
    let base = ctx.pages_n(3)?;
    let (before, donated, after) = (pfn(base), pfn(base) + 1, pfn(base) + 2);
    fill(address(donated))?;
    expect_ok!(vm_donate(ha, donated, GFN, 1), "VM_DONATE to A");

    expect_err!(
        vm_donate(ha, donated, GFN + 1, 1),
        Denied,
        "second VM_DONATE to A"
    );
    expect_err!(
        vm_donate(hb, donated, GFN, 1),
        Denied,
        "VM_DONATE of A's page to B"
    );
    expect_err!(
        vm_topup(ha, donated, 1),
        Denied,
        "VM_TOPUP of A's page to A"
    );
    expect_err!(
        vm_topup(hb, donated, 1),
        Denied,
        "VM_TOPUP of A's page to B"
    );
    expect_err!(
        share_hyp(donated),
        Denied,
        "HOST_SHARE_HYP of a donated page"
    );
    expect_err!(
        unshare_hyp(donated),
        Denied,
        "HOST_UNSHARE_HYP of a donated page"
    );
    expect_err!(
        vm_reclaim(donated, 1),
        Denied,
        "VM_RECLAIM of a live VM's page"
    );
    expect_read_aborts(address(donated), "a donated page")?;

    // A's IPA is taken: no other page goes there.
    expect_err!(
        vm_donate(ha, after, GFN, 1),
        Denied,
        "VM_DONATE to a mapped IPA"
    );
    // Ranges with the donated page second or first: refused whole, nothing changes.
    expect_err!(
        vm_donate(hb, before, GFN, 2),
        Denied,
        "VM_DONATE of [host, donated] to B"
    );
    expect_err!(
        vm_topup(hb, donated, 2),
        Denied,
        "VM_TOPUP of [donated, host] to B"
    );
    expect_host_page(before)?;
    expect_host_page(after)?;

    retire(&mut b)?;
    retire(&mut a)?;
    expect_ok!(
        vm_reclaim(donated, 1),
        "VM_RECLAIM of the page once A is destroyed"
    );
    match probe::first_nonzero(address(donated), 4096) {
        Ok(None) => {}
        Ok(Some(offset)) => bail!("reclaimed page not zeroed at offset {offset:#x}"),
        Err(abort) => bail!("reclaimed page still aborts (ESR_EL1={:#x})", abort.esr),
    }
    expect_host_page(donated)
}

/// A page of another VM (A's pool page): B cannot get it, and neither can A a second time.
pub fn page_of_another_vm_refused(ctx: &mut Ctx) -> TestResult {
    let mut a = ctx.vm_with_pool()?;
    let mut b = ctx.vm_with_pool()?;
    let (ha, hb) = (a.handle(), b.handle());

    let pool = pool_page(&a)?;
    expect_err!(
        vm_donate(hb, pool, GFN, 1),
        Denied,
        "VM_DONATE of A's pool page to B"
    );
    expect_err!(
        vm_topup(hb, pool, 1),
        Denied,
        "VM_TOPUP of A's pool page to B"
    );
    expect_err!(
        vm_topup(ha, pool, 1),
        Denied,
        "VM_TOPUP of A's pool page to A again"
    );
    expect_err!(share_hyp(pool), Denied, "HOST_SHARE_HYP of a pool page");
    expect_err!(
        vm_reclaim(pool, 1),
        Denied,
        "VM_RECLAIM of a live VM's pool page"
    );
    expect_read_aborts(address(pool), "a VM's pool page")?;

    let donated = pfn(ctx.page()?);
    expect_ok!(vm_donate(ha, donated, GFN + 1, 1), "VM_DONATE to A");
    expect_err!(
        vm_donate(hb, donated, GFN, 1),
        Denied,
        "VM_DONATE of A's page to B"
    );
    retire(&mut b)?;
    retire(&mut a)?;
    expect_ok!(vm_reclaim(donated, 1), "VM_RECLAIM of A's donated page");
    expect_host_page(donated)
}

/// VM_RECLAIM of a live VM's pages (donated, pool) is DENIED; a range with one page
/// of a destroyed VM and one of a live VM is refused whole; once a VM is destroyed its
/// pages come back zeroed and the other VM's stay put.
pub fn reclaim_from_live_vm_refused(ctx: &mut Ctx) -> TestResult {
    let mut a = ctx.vm_with_pool()?;
    let mut c = ctx.vm_with_pool()?;
    let (ha, hc) = (a.handle(), c.handle());
    let base = ctx.pages_n(2)?;
    let (of_c, of_a) = (pfn(base), pfn(base) + 1);
    fill(address(of_c))?;
    fill(address(of_a))?;
    expect_ok!(vm_donate(hc, of_c, GFN, 1), "VM_DONATE to C");
    expect_ok!(vm_donate(ha, of_a, GFN, 1), "VM_DONATE to A");

    expect_err!(
        vm_reclaim(pool_page(&a)?, 1),
        Denied,
        "VM_RECLAIM of live A's pool page"
    );
    expect_err!(vm_reclaim(of_a, 1), Denied, "VM_RECLAIM of live A's page");
    expect_err!(vm_reclaim(of_c, 1), Denied, "VM_RECLAIM of live C's page");
    expect_err!(
        vm_reclaim(of_c, 2),
        Denied,
        "VM_RECLAIM of live C's and A's pages"
    );

    expect_ok!(c.destroy(), "VM_DESTROY of C");
    expect_err!(
        vm_reclaim(of_c, 2),
        Denied,
        "VM_RECLAIM of [C's (destroyed), A's (live)]"
    );
    expect_err!(
        vm_reclaim(of_a, 1),
        Denied,
        "VM_RECLAIM of live A's page after C's end"
    );
    expect_ok!(vm_reclaim(of_c, 1), "VM_RECLAIM of destroyed C's page");
    ensure!(
        probe::first_nonzero(address(of_c), 4096).ok() == Some(None),
        "destroyed C's page did not come back zeroed and readable"
    );
    expect_host_page(of_c)?;
    let c_pool = c.reclaim_all()?;
    ensure!(
        c_pool.first_nonzero.is_none(),
        "C's pool pages did not come back zeroed"
    );

    // A is alive and well: its page still refuses the host.
    expect_read_aborts(address(of_a), "live A's page")?;
    retire(&mut a)?;
    expect_ok!(vm_reclaim(of_a, 1), "VM_RECLAIM of A's page after A's end");
    expect_host_page(of_a)
}
