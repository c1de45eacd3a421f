//! The DMA cases. Each aims the edu engine at one kind of memory; what must happen is said
//! in the test's name.

use crate::edu::{Edu, TRANSFER};
use el1_rt::testing::{Failure, TestCtx, TestResult};
use el1_rt::{bail, ensure, host_calls, probe};
use hvc_abi::Exit;
use spin_cell::EduCell;
use test_guest::{Command, SECRET_GFN, SHARED_GFN, Step, ipa, secret_word};

const PAGE: usize = 4096;
/// Words one transfer moves.
const WORDS: usize = TRANSFER / 8;

/// The one edu device, found by `main` before the tests run.
mod spin_cell {
    use crate::edu::Edu;
    use core::cell::UnsafeCell;

    pub struct EduCell(UnsafeCell<Option<Edu>>);

    // SAFETY: the SMMU host runs on one CPU only; the cell is written once by `main` before
    // any test reads it.
    unsafe impl Sync for EduCell {}

    impl EduCell {
        pub const fn new() -> Self {
            Self(UnsafeCell::new(None))
        }

        pub fn set(&self, edu: Edu) {
            // SAFETY: see the `Sync` impl: single CPU, written before any read.
            unsafe { *self.0.get() = Some(edu) };
        }

        pub fn get(&self) -> Option<&Edu> {
            // SAFETY: as above.
            unsafe { (*self.0.get()).as_ref() }
        }
    }
}

static EDU: EduCell = EduCell::new();

pub fn set_edu(edu: Edu) {
    EDU.set(edu);
}

fn edu() -> Result<&'static Edu, Failure> {
    match EDU.get() {
        Some(edu) => Ok(edu),
        None => bail!("no edu device"),
    }
}

/// Fills the host page at `pa` with `word(i)` and cleans it to PoC.
fn fill(pa: usize, word: impl Fn(usize) -> u64) {
    for i in 0..PAGE / 8 {
        // SAFETY: `pa` is a free host page this test allocated; no Rust object lives there.
        unsafe { core::ptr::write_volatile((pa + 8 * i) as *mut u64, word(i)) };
    }
    el1_rt::cache::clean_invalidate_to_poc(pa, PAGE);
}

/// The word at index `i` of the host page at `pa`, read after a DMA may have written it.
fn word_at(pa: usize, i: usize) -> u64 {
    el1_rt::cache::clean_invalidate_to_poc(pa, PAGE);
    // SAFETY: as in `fill`.
    unsafe { core::ptr::read_volatile((pa + 8 * i) as *const u64) }
}

fn pattern(i: usize) -> u64 {
    0xd3a0_0000_0000_0000 | i as u64
}

/// Loads the device buffer with a page of zeros, through a host page (the engine works).
fn load_zeros(ctx: &mut TestCtx) -> TestResult {
    let zeros = ctx.page()?;
    fill(zeros, |_| 0);
    edu()?.read_ram(zeros, TRANSFER)?;
    Ok(())
}

/// Reads RAM at `pa` with the device and writes what it got to a fresh host page; returns
/// that page.
fn copy_out(ctx: &mut TestCtx, pa: usize) -> Result<usize, Failure> {
    let edu = edu()?;
    let out = ctx.page()?;
    fill(out, |_| 0x0bad_0bad_0bad_0bad);
    edu.read_ram(pa, TRANSFER)?;
    edu.write_ram(out, TRANSFER)?;
    Ok(out)
}

/// The positive control: RAM -> device -> RAM between two host pages.
pub fn a_device_can_dma_into_and_out_of_a_host_page(ctx: &mut TestCtx) -> TestResult {
    let src = ctx.page()?;
    fill(src, pattern);
    let out = copy_out(ctx, src)?;
    for i in [0, 1, 100, WORDS - 1] {
        let got = word_at(out, i);
        ensure!(
            got == pattern(i),
            "word {i} of the copy is {got:#x}, not {:#x}: the DMA engine does not reach host pages",
            pattern(i)
        );
    }
    Ok(())
}

/// The guest writes its secret and shares another page; meanwhile the device reads the
/// secret page (the copy must not hold the secret) and writes zeros over it (the guest then
/// finds its secret intact, or reports check 5). One transfer covers the first half of
/// the page.
pub fn a_device_can_neither_read_nor_write_a_guest_private_page(ctx: &mut TestCtx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    guest.expect_exit(
        0,
        0,
        Exit::MemShared {
            ipa: ipa(SHARED_GFN),
            nr: 1,
        },
        "exit MEM_SHARED of the message page",
    )?;
    guest.expect_step(0, 0, Step::Shared, "the guest's Shared report")?;
    let secret = guest.vm().host_address(SECRET_GFN)?;
    let copy = copy_out(ctx, secret)?;
    let leaked = (0..WORDS)
        .filter(|&i| word_at(copy, i) == secret_word(i))
        .count();
    ensure!(
        leaked == 0,
        "the device read {leaked} words of the guest's secret page {secret:#x}"
    );
    load_zeros(ctx)?;
    edu()?.write_ram(secret, TRANSFER)?;
    guest.reply_and_expect_unshared()?;
    // The guest compares every word of its secret now (check 5 on a mismatch).
    guest
        .expect_done(0, 0)
        .map_err(|e| Failure::new(format_args!("after the device wrote the secret page: {e}")))
}

/// Issue 9's attack: the record sits at the start of EL2's second carve-out (one u16 per
/// RAM page); the device zeroes the entry of a page the host gave a guest ("host owns it")
/// and the host touches the page. EL2 must still refuse it.
pub fn a_device_cannot_zero_a_page_entry_of_the_ownership_record(ctx: &mut TestCtx) -> TestResult {
    let Some(record) = ctx.platform.board.carve_outs.iter().nth(1).copied() else {
        bail!("the DTB shows no second EL2 carve-out (the ownership record)");
    };
    let Some(ram) = ctx.platform.board.memory.iter().next().copied() else {
        bail!("no RAM");
    };
    let mut vm = ctx.vm_with_pool()?;
    let page = vm.donate_zeroed(&mut ctx.pages, 0x100, 1)?.address();
    let entry = record.base + 2 * ((page - ram.base) / PAGE);
    load_zeros(ctx)?;
    edu()?.write_ram(entry, 2)?;
    match probe::read_u64(page) {
        Err(abort) if abort.is_injected_abort_at(page) => Ok(()),
        Err(abort) => bail!("host read of the guest's page {page:#x}: wrong fault {abort}"),
        Ok(value) => bail!(
            "the device zeroed the record entry at {entry:#x} and the host then read the guest's page {page:#x} (value {value:#x})"
        ),
    }
}

/// The host donates a page the device has just read (so the SMMU may hold its translation
/// in its TLB) to a VM that has not run (VM_DONATE keeps the contents then); right after
/// the call the device's read of it must come back without them.
pub fn a_page_the_host_donates_is_out_of_dma_reach_when_the_call_returns(
    ctx: &mut TestCtx,
) -> TestResult {
    let vm = ctx.vm_with_pool()?;
    let page = ctx.page()?;
    fill(page, pattern);
    let warm = copy_out(ctx, page)?;
    ensure!(
        word_at(warm, 7) == pattern(7),
        "the device could not read the host page before the donation"
    );
    host_calls::vm_donate(vm.handle(), (page / PAGE) as u64, 0x200, 1)?;
    let copy = copy_out(ctx, page)?;
    let leaked = (0..WORDS)
        .filter(|&i| word_at(copy, i) == pattern(i))
        .count();
    ensure!(
        leaked == 0,
        "after VM_DONATE returned the device still read {leaked} words of the donated page {page:#x}"
    );
    Ok(())
}

/// The DMA view is eager (devices cannot fault and retry): a page the host takes back with
/// VM_RECLAIM is a DMA target as soon as the call returns.
pub fn a_page_the_host_reclaims_is_dma_reachable_when_the_call_returns(
    ctx: &mut TestCtx,
) -> TestResult {
    let mut vm = ctx.vm_with_pool()?;
    let page = vm.donate_zeroed(&mut ctx.pages, 0x300, 1)?.address();
    vm.destroy()?;
    host_calls::vm_reclaim((page / PAGE) as u64, 1)?;
    let src = ctx.page()?;
    fill(src, pattern);
    edu()?.read_ram(src, TRANSFER)?;
    el1_rt::cache::clean_invalidate_to_poc(page, PAGE);
    edu()?.write_ram(page, TRANSFER)?;
    let landed = (0..WORDS)
        .filter(|&i| word_at(page, i) == pattern(i))
        .count();
    ensure!(
        landed == WORDS,
        "only {landed} of {WORDS} words the device wrote reached the reclaimed page {page:#x}"
    );
    Ok(())
}

/// The device writes zeros over the first 8 KiB of EL2's image (its entry code and
/// exception vectors, at +0x800); EL2 must still answer a host call afterwards.
pub fn a_device_cannot_overwrite_el2s_image(ctx: &mut TestCtx) -> TestResult {
    let Some(image) = ctx.platform.board.carve_outs.iter().next().copied() else {
        bail!("the DTB shows no EL2 carve-out");
    };
    load_zeros(ctx)?;
    for offset in (0..2 * PAGE).step_by(TRANSFER) {
        edu()?.write_ram(image.base + offset, TRANSFER)?;
    }
    match host_calls::features() {
        Ok(_) => Ok(()),
        Err(e) => bail!("EL2 no longer answers FEATURES after the DMA into its image: {e}"),
    }
}
