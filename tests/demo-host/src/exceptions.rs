//! The Rust side of the EL1 exception vectors (vectors.S).
//!
//! One exception is expected: the synchronous external abort that EL2 injects when the
//! carve-out probe reads its memory. [`expect_data_abort`] arms the handler for it; the
//! handler records ESR_EL1/FAR_EL1, steps over the faulting load and returns. Every other
//! exception is a failure: its syndrome is printed and QEMU stops.

use crate::exit::{self, fail};
use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// ESR_ELx.EC for a data abort taken without a change of exception level.
pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;

/// Saved by vectors.S; the layout must match its offsets.
#[repr(C)]
pub struct ExceptionFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

// vectors.S: FRAME_SIZE = 272, x30 at 240, ELR at 248, SPSR at 256.
const _: () = {
    assert!(core::mem::size_of::<ExceptionFrame>() == 272);
    assert!(core::mem::offset_of!(ExceptionFrame, elr) == 248);
    assert!(core::mem::offset_of!(ExceptionFrame, spsr) == 256);
};

/// The syndrome of an exception the handler recorded.
#[derive(Clone, Copy, Debug)]
pub struct Abort {
    pub esr: u64,
    pub far: u64,
}

static EXPECTING_ABORT: AtomicBool = AtomicBool::new(false);
static RECORDED: AtomicBool = AtomicBool::new(false);
static RECORDED_ESR: AtomicU64 = AtomicU64::new(0);
static RECORDED_FAR: AtomicU64 = AtomicU64::new(0);

const VECTOR_NAMES: [&str; 16] = [
    "synchronous (current EL, SP0)",
    "IRQ (current EL, SP0)",
    "FIQ (current EL, SP0)",
    "SError (current EL, SP0)",
    "synchronous (current EL, SPx)",
    "IRQ (current EL, SPx)",
    "FIQ (current EL, SPx)",
    "SError (current EL, SPx)",
    "synchronous (lower EL, AArch64)",
    "IRQ (lower EL, AArch64)",
    "FIQ (lower EL, AArch64)",
    "SError (lower EL, AArch64)",
    "synchronous (lower EL, AArch32)",
    "IRQ (lower EL, AArch32)",
    "FIQ (lower EL, AArch32)",
    "SError (lower EL, AArch32)",
];

/// Vector index of "synchronous, current EL with SPx", where EL1h code faults.
const SYNC_CURRENT_EL_SPX: u64 = 4;

/// Arms the handler for one data abort on this CPU's next instructions (see module doc).
pub fn expect_data_abort() {
    RECORDED.store(false, Ordering::Relaxed);
    EXPECTING_ABORT.store(true, Ordering::Release);
}

/// Disarms the handler and returns the abort it recorded since [`expect_data_abort`].
pub fn take_data_abort() -> Option<Abort> {
    EXPECTING_ABORT.store(false, Ordering::Release);
    RECORDED.swap(false, Ordering::AcqRel).then(|| Abort {
        esr: RECORDED_ESR.load(Ordering::Relaxed),
        far: RECORDED_FAR.load(Ordering::Relaxed),
    })
}

#[unsafe(no_mangle)]
extern "C" fn handle_exception(kind: u64, frame: &mut ExceptionFrame) {
    if exit::exiting() {
        // Something failed already and is stopping QEMU (e.g. `hlt` is undefined
        // without -semihosting): do not report again.
        exit::park();
    }
    let esr = ESR_EL1.get();
    let far = FAR_EL1.get();
    let ec = (esr >> 26) & 0x3f;
    // Load and store rather than swap: this may run with the MMU off, where exclusives
    // are unreliable; only the CPU that armed the handler can take this path.
    if kind == SYNC_CURRENT_EL_SPX
        && ec == EC_DATA_ABORT_SAME_EL
        && EXPECTING_ABORT.load(Ordering::Acquire)
    {
        EXPECTING_ABORT.store(false, Ordering::Release);
        RECORDED_ESR.store(esr, Ordering::Relaxed);
        RECORDED_FAR.store(far, Ordering::Relaxed);
        RECORDED.store(true, Ordering::Release);
        // Step over the faulting load (A64 instructions are 4 bytes).
        frame.elr += 4;
        return;
    }
    let name = usize::try_from(kind)
        .ok()
        .and_then(|kind| VECTOR_NAMES.get(kind))
        .unwrap_or(&"unknown vector");
    fail!(
        "unexpected exception {name}: ESR_EL1={esr:#x} (EC {ec:#x}) ELR_EL1={:#x} FAR_EL1={far:#x} SPSR_EL1={:#x}",
        frame.elr,
        frame.spsr
    );
}
