//! The Rust side of the EL1 exception vectors (asm/vectors.S).
//!
//! One kind of exception is expected: the synchronous external abort that EL2 injects when
//! a probe (probe.rs) touches memory the host may not access. [`expect_data_abort`] arms
//! the handler for the calling CPU; the handler records ESR_EL1/FAR_EL1, steps over the
//! faulting instruction and returns. Every other exception is a failure: its syndrome is
//! printed and QEMU stops.
//!
//! The arming is per CPU (TPIDR_EL1 holds the CPU's number, see asm/entry.S), so a CPU
//! that probes cannot swallow another CPU's unexpected abort.

use crate::board::MAX_CPUS;
use crate::exit::{self, fail_with};
use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable, TPIDR_EL1};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// ESR_ELx.EC for a data abort taken without a change of exception level.
pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
/// ESR_ELx.EC for an instruction abort taken without a change of exception level.
pub const EC_INSTRUCTION_ABORT_SAME_EL: u64 = 0x21;
/// ESR_ELx.ISS.DFSC for a synchronous external abort (not on a translation table walk).
pub const DFSC_SYNC_EXTERNAL_ABORT: u64 = 0x10;

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

/// The syndrome of a data abort the handler recorded.
#[derive(Clone, Copy, Debug)]
pub struct Abort {
    pub esr: u64,
    pub far: u64,
}

impl Abort {
    /// ESR_EL1.EC, the exception class.
    pub fn ec(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }

    /// ESR_EL1.ISS.DFSC, the data fault status code.
    pub fn dfsc(&self) -> u64 {
        self.esr & 0x3f
    }

    /// Whether this is what EL2 injects for a refused host access to `address`: a data
    /// abort at EL1, synchronous external abort, FAR_EL1 = the address.
    pub fn is_injected_abort_at(&self, address: usize) -> bool {
        self.ec() == EC_DATA_ABORT_SAME_EL
            && self.dfsc() == DFSC_SYNC_EXTERNAL_ABORT
            && self.far == address as u64
    }
}

impl core::fmt::Display for Abort {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(
            f,
            "data abort (ESR_EL1={:#x}, FAR_EL1={:#x})",
            self.esr, self.far
        )
    }
}

/// Per-CPU state of the probe hook.
struct ProbeSlot {
    armed: AtomicBool,
    /// Armed by [`expect_instruction_trap`]: any other synchronous exception at EL1.
    trap_armed: AtomicBool,
    recorded: AtomicBool,
    esr: AtomicU64,
    far: AtomicU64,
}

impl ProbeSlot {
    const fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            trap_armed: AtomicBool::new(false),
            recorded: AtomicBool::new(false),
            esr: AtomicU64::new(0),
            far: AtomicU64::new(0),
        }
    }
}

static SLOTS: [ProbeSlot; MAX_CPUS] = [const { ProbeSlot::new() }; MAX_CPUS];

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

/// The calling CPU's slot, from TPIDR_EL1 (set at entry). `None` if it is out of range.
fn own_slot() -> Option<&'static ProbeSlot> {
    usize::try_from(TPIDR_EL1.get())
        .ok()
        .and_then(|cpu| SLOTS.get(cpu))
}

/// Arms the handler for one data abort on this CPU's next instructions (see module doc),
/// or one instruction abort after a `blr` (the handler then returns to the `blr`'s caller).
pub fn expect_data_abort() {
    if let Some(slot) = own_slot() {
        slot.recorded.store(false, Ordering::Relaxed);
        slot.armed.store(true, Ordering::Release);
    }
}

/// Disarms the handler and returns the abort it recorded since [`expect_data_abort`].
pub fn take_data_abort() -> Option<Abort> {
    let slot = own_slot()?;
    slot.armed.store(false, Ordering::Release);
    // Load and store rather than swap: this may run with the MMU off, where exclusives
    // are unreliable; only this CPU writes its slot.
    let recorded = slot.recorded.load(Ordering::Acquire);
    slot.recorded.store(false, Ordering::Relaxed);
    recorded.then(|| Abort {
        esr: slot.esr.load(Ordering::Relaxed),
        far: slot.far.load(Ordering::Relaxed),
    })
}

/// Arms the handler for one synchronous exception other than an abort on this CPU's next
/// instructions: an undefined instruction (EC 0x00), or an SVE/SME/FP/pointer
/// authentication trap taken to EL1. The handler records ESR_EL1 and steps over the
/// instruction. For probes of whether an instruction or register works at EL1.
pub fn expect_instruction_trap() {
    if let Some(slot) = own_slot() {
        slot.recorded.store(false, Ordering::Relaxed);
        slot.trap_armed.store(true, Ordering::Release);
    }
}

/// Disarms [`expect_instruction_trap`] and returns the ESR_EL1 of the exception it caught.
pub fn take_instruction_trap() -> Option<u64> {
    let slot = own_slot()?;
    slot.trap_armed.store(false, Ordering::Release);
    let recorded = slot.recorded.load(Ordering::Acquire);
    slot.recorded.store(false, Ordering::Relaxed);
    recorded.then(|| slot.esr.load(Ordering::Relaxed))
}

#[unsafe(no_mangle)]
extern "C" fn el1_rt_handle_exception(kind: u64, frame: &mut ExceptionFrame) {
    if exit::exiting() {
        // Something failed already and is stopping QEMU (e.g. `hlt` is undefined
        // without -semihosting): do not report again.
        exit::park();
    }
    let esr = ESR_EL1.get();
    let far = FAR_EL1.get();
    let ec = (esr >> 26) & 0x3f;
    if kind == SYNC_CURRENT_EL_SPX
        && (ec == EC_DATA_ABORT_SAME_EL || ec == EC_INSTRUCTION_ABORT_SAME_EL)
        && let Some(slot) = own_slot()
        && slot.armed.load(Ordering::Acquire)
    {
        slot.armed.store(false, Ordering::Release);
        slot.esr.store(esr, Ordering::Relaxed);
        slot.far.store(far, Ordering::Relaxed);
        slot.recorded.store(true, Ordering::Release);
        if ec == EC_INSTRUCTION_ABORT_SAME_EL {
            // A probe branched with `blr` to code that cannot run: return to its caller.
            frame.elr = frame.x[30];
        } else {
            // Step over the faulting access (A64 instructions are 4 bytes).
            frame.elr += 4;
        }
        return;
    }
    if kind == SYNC_CURRENT_EL_SPX
        && ec != EC_DATA_ABORT_SAME_EL
        && ec != EC_INSTRUCTION_ABORT_SAME_EL
        && let Some(slot) = own_slot()
        && slot.trap_armed.load(Ordering::Acquire)
    {
        slot.trap_armed.store(false, Ordering::Release);
        slot.esr.store(esr, Ordering::Relaxed);
        slot.recorded.store(true, Ordering::Release);
        frame.elr += 4;
        return;
    }
    let name = usize::try_from(kind)
        .ok()
        .and_then(|kind| VECTOR_NAMES.get(kind))
        .unwrap_or(&"unknown vector");
    fail_with(format_args!(
        "unexpected exception {name}: ESR_EL1={esr:#x} (EC {ec:#x}) ELR_EL1={:#x} FAR_EL1={far:#x} SPSR_EL1={:#x}",
        frame.elr, frame.spsr
    ));
}
