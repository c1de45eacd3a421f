//! Unsharing on one CPU while another CPU reads the page.
//!
//! - The host shares a page with EL2 and ends that, over and over, while CPU 2 reads it:
//!   the host never loses access (docs/abi.md 7.1: HOST and HOST_SHARED_HYP both give host
//!   access), so every read returns the page's data.
//! - The guest unshares a page it shared while CPU 2 reads it: once VCPU_RUN has returned
//!   the MEM_UNSHARED exit, the host's mapping is gone on every CPU (5.3: "TLB invalidated
//!   on every CPU before the guest's HVC returns"), so every read CPU 2 starts after it
//!   learns of the exit must abort; before, reads return the guest's message.

use super::host_calls::{share_hyp, unshare_hyp};
use super::{expect_ok, retire};
use crate::msg::{Msg, TestResult, bail, ensure};
use crate::pages::{expect_host_page, pfn};
use crate::runner::Ctx;
use crate::smp;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use el1_rt::probe;
use el1_rt::say;
use el1_rt::test_guest_driver::{TestGuest, write_reply};
use el1_rt::timeout::{Deadline, wait_until};
use hvc_abi::Exit;
use test_guest::{Command, MESSAGE, SHARED_GFN, Step};

const READER: usize = 2;
/// Share/unshare rounds while the reader reads, at least.
const ROUNDS: u32 = 200;
/// Reads the reader must make during the rounds: the rounds go on (within TIMEOUT_MS)
/// until it has, so that a reader CPU the emulator schedules late still overlaps them.
const READS_DURING: u32 = 20;
/// Reads the reader must make after the guest's unshare.
const READS_AFTER: u32 = 200;
const TIMEOUT_MS: u64 = 20_000;
const PATTERN: u64 = 0x1ead_5afe_0bad_f00d;

static ADDRESS: AtomicUsize = AtomicUsize::new(0);
static EXPECTED: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by CPU 0 once VCPU_RUN has returned the guest's MEM_UNSHARED exit.
static UNSHARED: AtomicBool = AtomicBool::new(false);
/// Reads started before UNSHARED was seen: data as expected, aborted.
static BEFORE_OK: AtomicU32 = AtomicU32::new(0);
static BEFORE_ABORTED: AtomicU32 = AtomicU32::new(0);
/// Reads started after UNSHARED was seen: aborted, or (wrongly) returned data.
static AFTER_ABORTED: AtomicU32 = AtomicU32::new(0);
static AFTER_READ: AtomicU32 = AtomicU32::new(0);
/// Data other than expected, or a fault other than the injected abort.
static WRONG: AtomicU32 = AtomicU32::new(0);
static FIRST_WRONG: AtomicU64 = AtomicU64::new(0);

fn reset(address: usize, expected: u64) {
    ADDRESS.store(address, Ordering::Release);
    EXPECTED.store(expected, Ordering::Release);
    STOP.store(false, Ordering::Release);
    UNSHARED.store(false, Ordering::Release);
    for counter in [
        &BEFORE_OK,
        &BEFORE_ABORTED,
        &AFTER_ABORTED,
        &AFTER_READ,
        &WRONG,
    ] {
        counter.store(0, Ordering::Release);
    }
    FIRST_WRONG.store(0, Ordering::Release);
}

fn wrong(what: u64) {
    WRONG.fetch_add(1, Ordering::AcqRel);
    let _ = FIRST_WRONG.compare_exchange(0, what, Ordering::AcqRel, Ordering::Relaxed);
}

/// CPU 2: reads the page until told to stop, sorting each read by whether it started
/// after the unshare was known.
fn read_loop(_cpu: usize) {
    let address = ADDRESS.load(Ordering::Acquire);
    let expected = EXPECTED.load(Ordering::Acquire);
    while !STOP.load(Ordering::Acquire) {
        let after = UNSHARED.load(Ordering::Acquire);
        match probe::read_u64(address) {
            Ok(_) if after => {
                AFTER_READ.fetch_add(1, Ordering::AcqRel);
            }
            Ok(value) if value == expected => {
                BEFORE_OK.fetch_add(1, Ordering::AcqRel);
            }
            Ok(value) => wrong(value),
            Err(abort) if abort.is_injected_abort_at(address) => {
                let counter = if after {
                    &AFTER_ABORTED
                } else {
                    &BEFORE_ABORTED
                };
                counter.fetch_add(1, Ordering::AcqRel);
            }
            Err(abort) => wrong(abort.esr),
        }
    }
}

/// Runs `body` on CPU 0 while CPU 2 reads, then stops and powers off CPU 2.
fn with_reader(address: usize, expected: u64, body: impl FnOnce() -> TestResult) -> TestResult {
    reset(address, expected);
    smp::launch(READER, read_loop)?;
    let result = if wait_until(TIMEOUT_MS, || BEFORE_OK.load(Ordering::Acquire) > 0) {
        body()
    } else {
        Err(Msg::new(format_args!("cpu {READER} never read the page")))
    };
    STOP.store(true, Ordering::Release);
    smp::wait_finished(READER, TIMEOUT_MS)?;
    smp::wait_off(READER)?;
    result?;
    let wrong = WRONG.load(Ordering::Acquire);
    ensure!(
        wrong == 0,
        "{wrong} reads of cpu {READER} returned wrong data or the wrong fault (first {:#x})",
        FIRST_WRONG.load(Ordering::Acquire)
    );
    Ok(())
}

pub fn share_hyp_and_unshare_while_another_cpu_reads(ctx: &mut Ctx) -> TestResult {
    let address = ctx.page()?;
    let page = pfn(address);
    if let Err(abort) = probe::write_u64(address, PATTERN) {
        bail!("fresh page refused a write (ESR_EL1={:#x})", abort.esr);
    }
    with_reader(address, PATTERN, || {
        let reads_before = BEFORE_OK.load(Ordering::Acquire);
        let reads = || BEFORE_OK.load(Ordering::Acquire) - reads_before;
        let deadline = Deadline::after_ms(TIMEOUT_MS);
        let mut round = 0;
        while (round < ROUNDS || reads() < READS_DURING) && !deadline.passed() {
            expect_ok!(share_hyp(page), "HOST_SHARE_HYP round {round}");
            expect_ok!(unshare_hyp(page), "HOST_UNSHARE_HYP round {round}");
            round += 1;
        }
        let reads = reads();
        ensure!(
            reads >= READS_DURING,
            "cpu {READER} made only {reads} reads during {round} rounds ({TIMEOUT_MS} ms)"
        );
        say!(
            "share/unshare with EL2: {round} rounds while cpu {READER} read the page {reads} times"
        );
        Ok(())
    })?;
    let aborted = BEFORE_ABORTED.load(Ordering::Acquire);
    ensure!(
        aborted == 0,
        "{aborted} host reads of a page the host never gave up aborted"
    );
    expect_host_page(page)
}

pub fn guest_unshare_while_another_cpu_reads(ctx: &mut Ctx) -> TestResult {
    let mut guest = TestGuest::build(&mut ctx.pages, ctx.guest_image, Command::SecretAndShare, 1)?;
    ctx.track(guest.vm().handle())?;
    let shared = test_guest::ipa(SHARED_GFN);
    guest.expect_exit(0, 0, Exit::MemShared { ipa: shared, nr: 1 }, "MEM_SHARED")?;
    guest.expect_step(0, 0, Step::Shared, "the Shared report")?;
    let page = guest.vm().host_address(SHARED_GFN)?;
    let mut first_word = [0u8; 8];
    first_word.copy_from_slice(&MESSAGE.as_bytes()[..8]);
    let message = u64::from_le_bytes(first_word);
    with_reader(page, message, || {
        write_reply(page);
        guest.expect_exit(
            0,
            0,
            Exit::MemUnshared { ipa: shared, nr: 1 },
            "MEM_UNSHARED",
        )?;
        UNSHARED.store(true, Ordering::Release);
        if !wait_until(TIMEOUT_MS, || {
            AFTER_ABORTED.load(Ordering::Acquire) + AFTER_READ.load(Ordering::Acquire)
                >= READS_AFTER
        }) {
            bail!("cpu {READER} made fewer than {READS_AFTER} reads after the unshare");
        }
        Ok(())
    })?;
    let stale = AFTER_READ.load(Ordering::Acquire);
    ensure!(
        stale == 0,
        "{stale} host reads started after MEM_UNSHARED returned data: a stale mapping"
    );
    say!(
        "guest unshare: cpu {READER} read the message {} times, then {} reads aborted ({} aborted in between)",
        BEFORE_OK.load(Ordering::Acquire),
        AFTER_ABORTED.load(Ordering::Acquire),
        BEFORE_ABORTED.load(Ordering::Acquire)
    );
    // The guest goes on: it checks its secret page and finishes.
    guest.expect_step(0, 0, Step::Unshared, "the Unshared report")?;
    guest.expect_done(0, 0)?;
    retire(guest.vm_mut())
}
