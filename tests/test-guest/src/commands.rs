//! What the guest does for each command (the list is in lib.rs). Each command is a series
//! of numbered checks; the first that fails is reported with the value the guest saw.

use crate::hvc::{call, guest_call};
use crate::memory;
use crate::mmio::{self, load_u64, report};
use hvc_abi::function_id::{GUEST_FEATURES_BITMAP, Version, is_our_uid};
use hvc_abi::{Error, FunctionId, GuestCall, IpaState};
use test_guest::{
    MESSAGE, MTE_REACHABLE_CHECK, RELINQUISHED_READ_VALUE, REPLY, REPLY_OFFSET, REPORT_IPA, Report,
    SECRET_GFN, SHARED_GFN, SPARE_GFN, SPIN_ITERATIONS, Step, UNBACKED_IPA, ipa, secret_word,
};

/// A failed check: its number, what the guest saw and its name (printed to the host).
pub struct Failure {
    pub check: u16,
    pub value: u32,
    pub what: &'static str,
}

pub type Checked = Result<(), Failure>;

pub fn ensure(ok: bool, check: u16, value: u64, what: &'static str) -> Checked {
    if ok {
        Ok(())
    } else {
        Err(Failure {
            check,
            value: value as u32,
            what,
        })
    }
}

/// Added to a check's number when x0 was right but x1..x3 were not all zero.
const RESULT_REGISTERS_CHECK: u16 = 0x100;

/// x0..x3 = 0: a successful call with no results.
fn ensure_ok(regs: [u64; 4], check: u16, what: &'static str) -> Checked {
    ensure(regs[0] == 0, check, regs[0], what)?;
    ensure_results_zero(regs, check)
}

/// x0 = `error` (sign-extended) and x1..x3 = 0 (docs/abi.md 1.2).
fn ensure_error(regs: [u64; 4], error: Error, check: u16, what: &'static str) -> Checked {
    ensure(regs[0] == error.as_x0(), check, regs[0], what)?;
    ensure_results_zero(regs, check)
}

/// x1..x3 = 0; the failure carries the first nonzero one.
fn ensure_results_zero(regs: [u64; 4], check: u16) -> Checked {
    let nonzero = regs[1..].iter().copied().find(|&r| r != 0).unwrap_or(0);
    ensure(
        nonzero == 0,
        check + RESULT_REGISTERS_CHECK,
        nonzero,
        "a call left x1..x3 nonzero (check - 0x100 names the call)",
    )
}

const PAGE_WORDS: usize = 512;

/// Command::Discovery.
pub fn discovery() -> Checked {
    let uid = guest_call(GuestCall::CallUid);
    ensure(
        is_our_uid(uid),
        1,
        uid[0],
        "VENDOR_HYP_CALL_UID is not the payload's UID",
    )?;
    let features = guest_call(GuestCall::Features);
    ensure(features[0] == 0, 2, features[0], "FEATURES failed")?;
    ensure(
        features[1] == Version::CURRENT.to_x1(),
        3,
        features[1],
        "FEATURES version is not 2.0",
    )?;
    ensure(
        features[2] == GUEST_FEATURES_BITMAP && features[3] == 0,
        4,
        features[2],
        "FEATURES guest bitmap is not 0xF_0000_0001",
    )?;
    let meminfo = guest_call(GuestCall::HypMeminfo);
    ensure(
        meminfo == [0, 4096, 0, 0],
        5,
        meminfo[0] | meminfo[1],
        "HYP_MEMINFO did not return 4096",
    )?;
    // The guest's own view of its address space (IPA_STATE): its private page, a frame the
    // host never backed, and the report channel it registered as MMIO.
    ensure_ipa_state(
        ipa(SECRET_GFN),
        IpaState::Owned,
        6,
        "IPA_STATE of the secret page is not OWNED",
    )?;
    ensure_ipa_state(
        UNBACKED_IPA,
        IpaState::Unmapped,
        7,
        "IPA_STATE of an unbacked frame is not UNMAPPED",
    )?;
    ensure_ipa_state(
        REPORT_IPA & !0xfff,
        IpaState::Mmio,
        8,
        "IPA_STATE of the report channel is not MMIO",
    )?;
    ensure_error(
        guest_call(GuestCall::IpaState { ipa: 1 << 32 }),
        Error::Range,
        9,
        "IPA_STATE beyond ipa_bits is not RANGE",
    )
}

/// IPA_STATE of `ipa` returns x0 = 0 and x1 = `state`.
fn ensure_ipa_state(ipa: u64, state: IpaState, check: u16, what: &'static str) -> Checked {
    let regs = guest_call(GuestCall::IpaState { ipa });
    ensure(
        regs == [0, state as u64, 0, 0],
        check,
        regs[0] | regs[1],
        what,
    )
}

/// Command::SecretAndShare.
pub fn secret_and_share() -> Checked {
    let secret = ipa(SECRET_GFN);
    let shared = ipa(SHARED_GFN);
    for index in 0..PAGE_WORDS {
        memory::write_u64(secret + 8 * index as u64, secret_word(index));
    }
    memory::write_c_string(shared, MESSAGE.as_bytes());
    // The host's reply must be its own doing, not left over.
    memory::write_u64(shared + REPLY_OFFSET as u64, 0);

    let regs = guest_call(GuestCall::MemShare { ipa: shared, nr: 1 });
    ensure_ok(regs, 1, "MEM_SHARE of the message page failed")?;
    ensure_ipa_state(
        shared,
        IpaState::Shared,
        6,
        "IPA_STATE of the shared page is not SHARED",
    )?;
    report(Report::Reached(Step::Shared));

    ensure(
        memory::holds_c_string(shared + REPLY_OFFSET as u64, REPLY.as_bytes()),
        2,
        memory::read_u64(shared + REPLY_OFFSET as u64),
        "the host's reply is not in the shared page",
    )?;
    ensure(
        memory::holds_c_string(shared, MESSAGE.as_bytes()),
        3,
        memory::read_u64(shared),
        "the message in the shared page changed",
    )?;
    let regs = guest_call(GuestCall::MemUnshare { ipa: shared, nr: 1 });
    ensure_ok(regs, 4, "MEM_UNSHARE of the message page failed")?;
    report(Report::Reached(Step::Unshared));

    for index in 0..PAGE_WORDS {
        let word = memory::read_u64(secret + 8 * index as u64);
        ensure(
            word == secret_word(index),
            5,
            word,
            "the secret page changed",
        )?;
    }
    Ok(())
}

/// Command::Relinquish.
pub fn relinquish() -> Checked {
    let spare = ipa(SPARE_GFN);
    for index in 0..PAGE_WORDS {
        memory::write_u64(spare + 8 * index as u64, !secret_word(index));
    }
    let regs = guest_call(GuestCall::MemRelinquish { ipa: spare, nr: 1 });
    ensure_ok(regs, 1, "MEM_RELINQUISH of the spare page failed")?;
    report(Report::Reached(Step::Relinquished));
    // The IPA has no page now: only as registered MMIO does a load there reach the host.
    let regs = guest_call(GuestCall::MmioGuardMap { ipa: spare });
    ensure(
        regs[0] == 0 || regs[0] == Error::NotSupported.as_x0(),
        3,
        regs[0],
        "MMIO_GUARD_MAP of the relinquished page failed",
    )?;
    let value = load_u64(spare);
    ensure(
        value == RELINQUISHED_READ_VALUE,
        2,
        value,
        "a load from the relinquished page did not exit as MMIO",
    )
}

/// Command::StoreUnbacked.
pub fn store_unbacked() -> Checked {
    // Until the host donates a page here, this store is a MEM_FAULT exit, re-executed.
    mmio::store_unbacked(UNBACKED_IPA, secret_word(0));
    let word = memory::read_u64(UNBACKED_IPA);
    ensure(
        word == secret_word(0),
        1,
        word,
        "the store to the page the host donated at the unbacked IPA did not land",
    )?;
    // A page donated after launch is fresh (docs/abi.md 4.5): all zero but the word above.
    for index in 1..PAGE_WORDS {
        let word = memory::read_u64(UNBACKED_IPA + 8 * index as u64);
        ensure(
            word == 0,
            2,
            word,
            "the page donated after launch holds what the host put there",
        )?;
    }
    Ok(())
}

/// Command::Spin: never returns.
/// GCR_EL1 must be out of the guest's reach (see `Command::MteHidden`): this returns only
/// if the read did not raise an exception.
pub fn mte_hidden() -> Checked {
    let value: u64;
    // SAFETY: reading GCR_EL1 (S3_0_C1_C0_6) changes nothing; where it is not accessible
    // it raises an undefined-instruction exception, which is what the host expects.
    unsafe {
        core::arch::asm!("mrs {}, s3_0_c1_c0_6", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    ensure(
        false,
        MTE_REACHABLE_CHECK,
        value,
        "GCR_EL1 read: MTE reached the guest",
    )
}

pub fn spin() -> ! {
    loop {
        busy_wait(SPIN_ITERATIONS);
        report(Report::Reached(Step::Tick));
    }
}

fn busy_wait(iterations: u64) {
    // SAFETY: a register-only countdown loop; it touches no memory.
    unsafe {
        core::arch::asm!(
            "1: subs {n}, {n}, #1",
            "b.hi 1b",
            n = inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
}

/// Command::CallErrors: no call below may succeed, so none exits to the host.
pub fn call_errors() -> Checked {
    let secret = ipa(SECRET_GFN);
    let share = |ipa, nr| guest_call(GuestCall::MemShare { ipa, nr });
    ensure_error(
        share(secret, 0),
        Error::InvalidParameter,
        1,
        "MEM_SHARE nr = 0 is not INVALID_PARAMETER",
    )?;
    ensure_error(
        share(secret + 8, 1),
        Error::InvalidParameter,
        2,
        "MEM_SHARE of an unaligned ipa is not INVALID_PARAMETER",
    )?;
    ensure_error(
        share(secret, 513),
        Error::Range,
        3,
        "MEM_SHARE nr = 513 is not RANGE",
    )?;
    let mut mbz = GuestCall::MemShare { ipa: secret, nr: 1 }.encode();
    mbz[3] = 1;
    ensure_error(
        call(mbz),
        Error::InvalidParameter,
        4,
        "MEM_SHARE with x3 set is not INVALID_PARAMETER",
    )?;
    ensure_error(
        share(1 << 32, 1),
        Error::Range,
        5,
        "MEM_SHARE beyond ipa_bits is not RANGE",
    )?;
    ensure_error(
        share(UNBACKED_IPA, 1),
        Error::NotFound,
        6,
        "MEM_SHARE of an unmapped ipa is not NOT_FOUND",
    )?;
    ensure_error(
        guest_call(GuestCall::MemUnshare { ipa: secret, nr: 1 }),
        Error::Denied,
        7,
        "MEM_UNSHARE of a private page is not DENIED",
    )?;
    let mut meminfo = GuestCall::HypMeminfo.encode();
    meminfo[1] = 1;
    ensure_error(
        call(meminfo),
        Error::InvalidParameter,
        8,
        "HYP_MEMINFO with x1 set is not INVALID_PARAMETER",
    )?;
    ensure_error(
        guest_call(GuestCall::MmioGuardMap { ipa: secret }),
        Error::Denied,
        10,
        "MMIO_GUARD_MAP of a page the guest owns is not DENIED",
    )?;
    ensure_error(
        guest_call(GuestCall::MmioGuardUnmap { ipa: UNBACKED_IPA }),
        Error::NotFound,
        11,
        "MMIO_GUARD_UNMAP of an unregistered page is not NOT_FOUND",
    )?;
    ensure_error(
        guest_call(GuestCall::MmioGuardMap { ipa: 1 << 32 }),
        Error::Range,
        12,
        "MMIO_GUARD_MAP beyond ipa_bits is not RANGE",
    )?;
    let mut host_call = [0; 8];
    host_call[0] = FunctionId::VM_CREATE.to_x0();
    host_call[1] = 1;
    host_call[2] = 32;
    ensure_error(
        call(host_call),
        Error::NotSupported,
        9,
        "a host call from the guest is not NOT_SUPPORTED",
    )
}

/// Tells the host about a failed check: its name on the print channel, then the report.
pub fn report_failure(failure: &Failure) {
    mmio::print_line(failure.what);
    report(Report::Failed {
        check: failure.check,
        value: failure.value,
    });
}
