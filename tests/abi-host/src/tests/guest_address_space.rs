//! A guest can trust its own address space (docs/abi.md 4.6, 7): no page the host can
//! see appears at an IPA the guest did not share itself.

use crate::runner::{Ctx, TestResult, bail};
use crate::tests::sharing::run_to_shared;
use el1_rt::free_pages::PAGE_SIZE;
use el1_rt::guest_vm::GuestVm;
use el1_rt::test_guest_driver::{Event, TestGuest};
use el1_rt::{cache, host_calls, hvc, probe};
use hvc_abi::limits::MAX_POOL_PAGES_PER_CALL;
use hvc_abi::{Error, Exit, MmioAccess};
use test_guest::{
    Command, ENTRY_IPA, IMAGE_GFN, IPA_BITS, REPORT_IPA, SECRET_GFN, SHARED_GFN, SPARE_GFN,
    UNBACKED_IPA, secret_word,
};

/// HOST_SHARE_GUEST of ABI 1.0 (0xC6000006), by number: 2.0 retired it.
const HOST_SHARE_GUEST_1_0: u64 = 0xC600_0006;

/// Attack 3 of issue 9: the host backs the IPA where the guest keeps its secret with a
/// page it lends (1.0's HOST_SHARE_GUEST) instead of donating one, lets the guest write
/// its secret, and reads it from its own page. The lend must be refused
/// (NOT_SUPPORTED), so the guest's secret never lands in a page the host can read.
pub fn host_cannot_lend_a_page_into_a_protected_vm(ctx: &mut Ctx) -> TestResult {
    let mut vm = GuestVm::create(1, IPA_BITS)?;
    ctx.track(vm.handle())?;
    vm.topup(&mut ctx.pages, MAX_POOL_PAGES_PER_CALL)?;
    vm.load_image(&mut ctx.pages, ctx.guest_image, IMAGE_GFN)?;
    for gfn in [SHARED_GFN, SPARE_GFN] {
        vm.donate_zeroed(&mut ctx.pages, gfn, 1)?;
    }
    let lent = ctx.page()?;
    // SAFETY: a fresh host page nothing else uses, identity-mapped Normal memory.
    unsafe { core::ptr::write_bytes(lent as *mut u8, 0, PAGE_SIZE) };
    cache::clean_invalidate_to_poc(lent, PAGE_SIZE);
    let ret = hvc::call([
        HOST_SHARE_GUEST_1_0,
        vm.handle().raw(),
        (lent / PAGE_SIZE) as u64,
        SECRET_GFN,
        1,
        0,
        0,
        0,
    ]);
    if ret.x0 == 0 {
        vm.vcpu_create(0, ENTRY_IPA, Command::SecretAndShare.to_x0())?;
        let mut guest = TestGuest::from_vm(vm);
        run_to_shared(&mut guest)?;
        // The guest wrote with its MMU off (to memory): drop any stale line first.
        cache::clean_invalidate_to_poc(lent, PAGE_SIZE);
        let word = probe::read_u64(lent);
        if let Ok(word) = word
            && word == secret_word(0)
        {
            bail!(
                "the host read the guest's secret word {word:#x} from the page it lent at the secret's IPA"
            );
        }
        bail!("HOST_SHARE_GUEST into a protected VM was accepted (the host then read {word:x?})");
    }
    if ret.x0 != Error::NotSupported.as_x0() {
        bail!(
            "HOST_SHARE_GUEST returned x0={:#x}, not NOT_SUPPORTED",
            ret.x0
        );
    }
    Ok(())
}

/// The other half of attack 3: a guest store to an IPA with no page. Unless the guest
/// registered the page as MMIO (MMIO_GUARD_MAP), the host gets a MEM_FAULT exit that
/// carries no data, and the store runs again, into the guest's own memory, once the host
/// donates a page there.
pub fn unbacked_store_gives_the_host_no_data(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::StoreUnbacked, 1)?;
    match guest.next_event(0, 0)? {
        Event::Exit(Exit::MemFault { ipa }) if ipa == UNBACKED_IPA => {}
        Event::Exit(Exit::Mmio {
            access: MmioAccess::Write { data },
            ..
        }) if data == secret_word(0) => {
            bail!("the guest's store to an unbacked IPA reached the host with its data {data:#x}")
        }
        other => bail!("the store to an unbacked IPA gave {other}, not MEM_FAULT"),
    }
    // The guest registered its report channel as MMIO: no memory may appear there.
    let page = ctx.page()?;
    match host_calls::vm_donate(
        guest.vm().handle(),
        (page / PAGE_SIZE) as u64,
        REPORT_IPA >> 12,
        1,
    ) {
        Err(e) if e.abi_error() == Some(Error::Denied) => {}
        other => bail!("VM_DONATE at the guest's MMIO-registered page gave {other:?}, not DENIED"),
    }
    guest
        .vm_mut()
        .donate_zeroed(&mut ctx.pages, UNBACKED_IPA >> 12, 1)?;
    guest.expect_done(0, 0)?;
    Ok(())
}

/// Memory the host donates after launch is fresh (docs/abi.md 4.5): the host fills a page
/// with its own bytes and donates it where the running guest faulted; the guest finds it
/// zeroed (but for the word its re-executed store wrote).
pub fn memory_donated_after_launch_is_fresh(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::StoreUnbacked, 1)?;
    match guest.next_event(0, 0)? {
        Event::Exit(Exit::MemFault { ipa }) if ipa == UNBACKED_IPA => {}
        other => bail!("the store to an unbacked IPA gave {other}, not MEM_FAULT"),
    }
    let planted = [0xA5u8; PAGE_SIZE];
    guest
        .vm_mut()
        .load_page(&mut ctx.pages, &planted, UNBACKED_IPA >> 12)?;
    guest.expect_done(0, 0)?;
    Ok(())
}
