//! One vCPU of a protected VM: its state (kept in EL2 memory, never shown to the host), the
//! world switch around `__guest_enter` (asm/vectors.S), and the handling of every way a
//! guest leaves: its hypercalls (docs/abi.md section 5), its stage-2 faults (MMIO and
//! MEM_FAULT exits) and physical interrupts (IRQ exits).
//!
//! Nothing a guest does can stop EL2: an exception class EL2 does not serve is answered with
//! an undefined-instruction exception inside the guest.

use crate::el1_state::El1State;
use crate::tlb::{DeferredSanitizer, Tlb};
use crate::vm::{RunTarget, ipa_error};
use crate::{cpu, el2_regs, guest_serror, host_abort, record, speculative_at};
use aarch64_cpu::registers::{ELR_EL2, ESR_EL2, FAR_EL2, HPFAR_EL2, Readable, SPSR_EL2, Writeable};
use hvc_abi::limits::check_ipa_range;
use hvc_abi::{AccessSize, Error, Exit, GuestCall, GuestRoute, MmioAccess, Version};
use stage2::VmId;

/// General registers as `__guest_enter` and the guest vectors use them: x0-x30 at offsets
/// 0..248, then the EL2 stack pointer to return to at 248.
#[repr(C)]
pub struct GuestGprs {
    pub x: [u64; 31],
    el2_sp: u64,
}

/// What the next VCPU_RUN's `completion` finishes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// An MMIO read: the value goes into `register`, extended as the load said.
    MmioRead {
        ipa: u64,
        register: u8,
        size: AccessSize,
        sign_extend: bool,
        sixty_four: bool,
        /// Bytes to step over once the read completes (ESR_EL2.IL).
        len: u64,
    },
    /// A forwarded HVC: the value becomes the guest's x0.
    GuestHvc,
}

pub struct Vcpu {
    gprs: GuestGprs,
    pc: u64,
    pstate: u64,
    el1: El1State,
    pending: Pending,
    index: u32,
}

/// PSTATE a vCPU starts with: EL1h, D, A, I, F masked.
const PSTATE_EL1H_MASKED: u64 = 0x3c5;

impl Vcpu {
    pub const fn new() -> Self {
        Self {
            gprs: GuestGprs {
                x: [0; 31],
                el2_sp: 0,
            },
            pc: 0,
            pstate: 0,
            el1: El1State::zeroed(),
            pending: Pending::None,
            index: 0,
        }
    }

    /// The state VCPU_CREATE promises: EL1h, DAIF masked, MMU and caches off, x0 = `x0`,
    /// every other register zero.
    pub fn reset(&mut self, entry: u64, x0: u64, index: u32) {
        *self = Self::new();
        self.gprs.x[0] = x0;
        self.pc = entry;
        self.pstate = PSTATE_EL1H_MASKED;
        self.el1.sys.sctlr = el2_regs::SCTLR_EL1_BOOT;
        self.index = index;
    }

    /// Whether a non-zero `completion` is allowed (docs/abi.md 4.9 row 6).
    pub fn accepts_completion(&self) -> bool {
        self.pending != Pending::None
    }
}

unsafe extern "C" {
    fn __guest_enter(gprs: *mut GuestGprs) -> u64;
}

const EXIT_SYNC: u64 = 0;

/// Runs `v` on this CPU until it exits to the host.
pub fn run(v: &mut Vcpu, target: &RunTarget, completion: u64) -> Exit {
    let Some(vm) = target.record_vm else {
        // Never topped up: the VM has no stage-2 at all, so its first fetch faults.
        return Exit::MemFault { ipa: v.pc & !0xfff };
    };
    let Some(host_stage2) = record::host_regs() else {
        return Exit::MemFault { ipa: v.pc & !0xfff };
    };
    let Some((vttbr, vtcr)) = activate_stage2(vm, true) else {
        return Exit::MemFault { ipa: v.pc & !0xfff };
    };
    complete(v, vm, completion);

    // This CPU's state, found once here and passed down: `cpu::current` is a binary search
    // over the MPIDR map, too dear to repeat in every step below.
    let this_cpu = crate::per_cpu::of(cpu::current());
    // SAFETY: each CPU uses only its own slot (the host's EL1 state while this CPU runs a
    // guest), and only here.
    let host = unsafe { &mut *this_cpu.host_el1.get() };
    // Where the host's VCPU_RUN returns to: ELR_EL2/SPSR_EL2 now hold the host's HVC return
    // state, and every guest exit overwrites them.
    let (host_elr, host_spsr) = (ELR_EL2.get(), SPSR_EL2.get());
    // First: the host's full SVE state (and out of streaming mode), before any V register
    // is touched.
    crate::host_sve::save_host(this_cpu);
    host.save();
    let host_timer =
        crate::host_timer::arm_for_guest(this_cpu, host.sys.cntv_ctl, host.sys.cntv_cval);
    // On speculative-AT cores (pKVM's `__kvm_vcpu_run` order, see `speculative_at`): stage-1
    // walks stopped, the guest's EL1 registers, its stage 2 (`enter_guest` ends with `isb`),
    // then its SCTLR_EL1 and TCR_EL1.
    let blocked = speculative_at::block_stage1_walks_if_needed();
    load_el1(&v.el1, blocked);
    el2_regs::enter_guest(this_cpu, vttbr, vtcr, u64::from(v.index));
    if blocked.is_some() {
        speculative_at::unblock_stage1_walks(v.el1.sys.sctlr, v.el1.sys.tcr);
    }
    guest_serror::resume(&v.el1);
    ELR_EL2.set(v.pc);
    SPSR_EL2.set(v.pstate);

    let exit = loop {
        if !crate::system_reset::entering_guest(this_cpu) {
            crate::fatal::park_this_cpu();
        }
        // SAFETY: every EL2 register is set up for this guest; `gprs` stays valid and
        // exclusively ours (the vCPU is marked running) until `__guest_enter` returns.
        let kind = unsafe { __guest_enter(&mut v.gprs) };
        // A reset underway: the registers just saved are wiped and this CPU stops.
        crate::system_reset::left_guest(this_cpu, || *v = Vcpu::new());
        if kind & guest_serror::EXIT_WITH_SERROR != 0 {
            guest_serror::inject(&mut v.el1);
        }
        let outcome = match kind & !guest_serror::EXIT_WITH_SERROR {
            EXIT_SYNC => handle_sync(v, target, vm),
            guest_serror::EXIT_SERROR => {
                guest_serror::inject(&mut v.el1);
                None
            }
            _ => Some(Exit::Irq),
        };
        if let Some(exit) = outcome {
            break exit;
        }
    };

    v.pc = ELR_EL2.get();
    v.pstate = SPSR_EL2.get();
    v.el1.save();
    guest_serror::save(&mut v.el1);
    if let Some(armed) = host_timer {
        crate::host_timer::disarm(armed);
    }
    // The host's stage 2 and traps before its EL1 registers (pKVM's order in
    // `__kvm_vcpu_run`), so no walk combines the host's stage 1 with the guest's stage 2.
    let blocked = speculative_at::block_stage1_walks_if_needed();
    el2_regs::leave_guest(this_cpu, host_stage2);
    if let Some(b) = blocked {
        // The host's stage 2 is in VTTBR_EL2 before its EL1 registers change (pKVM's
        // `__load_host_stage2` `isb` on these cores).
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        load_el1(host, Some(b));
        speculative_at::unblock_stage1_walks(host.sys.sctlr, host.sys.tcr);
    } else {
        host.load();
    }
    crate::host_sve::restore_host(this_cpu);
    ELR_EL2.set(host_elr);
    SPSR_EL2.set(host_spsr);
    // A reset underway: the guest registers just saved are wiped and this CPU stops.
    crate::system_reset::saved_guest_state(this_cpu, || *v = Vcpu::new());
    activate_stage2(vm, false);
    exit
}

/// Loads `world`'s EL1 state; with stage-1 walks blocked (`speculative_at`), SCTLR_EL1 and
/// TCR_EL1 keep the blocking values (MMU on, EPD0/EPD1 set) until `unblock_stage1_walks`.
fn load_el1(world: &El1State, blocked: Option<speculative_at::Blocked>) {
    match blocked {
        None => world.load(),
        Some(_) => world.load_except_translation(),
    }
}

/// Marks the VM's stage-2 live (or not) and returns its VTTBR and the VTCR to use.
fn activate_stage2(vm: VmId, active: bool) -> Option<(u64, u64)> {
    let record = record::lock()?;
    let table = record.guest_stage2(vm)?;
    if active {
        table.mark_active();
    } else {
        table.mark_inactive();
    }
    Some((table.vttbr(), record.config().vtcr))
}

/// Applies the host's `completion` to the exit the vCPU last took.
fn complete(v: &mut Vcpu, vm: VmId, completion: u64) {
    match core::mem::replace(&mut v.pending, Pending::None) {
        Pending::None => {}
        Pending::GuestHvc => {
            v.gprs.x[0] = completion;
            v.gprs.x[1..4].fill(0);
        }
        Pending::MmioRead {
            ipa,
            register,
            size,
            sign_extend,
            sixty_four,
            len,
        } => {
            let mapped_now = record::lock()
                .and_then(|r| {
                    r.guest_stage2(vm)
                        .map(|t| t.translate(ipa as usize).is_some())
                })
                .unwrap_or(false);
            if mapped_now {
                return; // the load runs again, on real memory
            }
            let mut value = completion & size.mask();
            if sign_extend {
                let bits = 8 * size.bytes() as u32;
                value = (((value << (64 - bits)) as i64) >> (64 - bits)) as u64;
            }
            if !sixty_four {
                value &= 0xffff_ffff;
            }
            if register != 31 {
                v.gprs.x[usize::from(register)] = value;
            }
            v.pc += len;
        }
    }
}

const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_SYSREG: u64 = 0x18;
const EC_IABT_LOW: u64 = 0x20;
const EC_DABT_LOW: u64 = 0x24;

/// A synchronous exit. `Some(exit)` returns to the host; `None` resumes the guest.
fn handle_sync(v: &mut Vcpu, target: &RunTarget, vm: VmId) -> Option<Exit> {
    let esr = ESR_EL2.get();
    match esr >> 26 {
        EC_HVC64 => guest_hvc(v, target, vm),
        EC_SMC64 => {
            // No secure services for guests: SMCCC NOT_SUPPORTED, step over the SMC.
            v.gprs.x[0] = Error::NotSupported.as_x0();
            ELR_EL2.set(ELR_EL2.get() + 4);
            None
        }
        EC_SYSREG => {
            crate::guest_sysregs::handle(esr, &mut v.gprs.x, target.ipa_bits);
            None
        }
        EC_DABT_LOW | EC_IABT_LOW if platform::guest_traps::is_synchronous_external_abort(esr) => {
            guest_serror::inject(&mut v.el1);
            None
        }
        EC_DABT_LOW => Some(data_abort(v, target, esr)),
        EC_IABT_LOW => Some(Exit::MemFault {
            ipa: fault_ipa() & !0xfff,
        }),
        _ => {
            host_abort::inject_undefined(esr);
            None
        }
    }
}

fn fault_ipa() -> u64 {
    ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xfff)
}

/// A stage-2 data abort: with a valid instruction syndrome (one load or store of one
/// general register) on a page the guest registered as MMIO it is MMIO; anything else is a
/// MEM_FAULT the host can resolve, which carries no guest data (docs/abi.md 5.6, 6).
fn data_abort(v: &mut Vcpu, target: &RunTarget, esr: u64) -> Exit {
    let ipa = fault_ipa();
    const ISV: u64 = 1 << 24;
    // Translation faults only (DFSC 0b0001xx): an access, address-size or external fault is
    // not something a device model can complete.
    let translation_fault = esr & 0x3c == 0x04;
    if esr & ISV == 0
        || !translation_fault
        || !crate::vm::guest_mmio_registered(target.slot, ipa >> 12)
    {
        return Exit::MemFault { ipa: ipa & !0xfff };
    }
    let size = AccessSize::from_log2(((esr >> 22) & 3) as u8).unwrap_or(AccessSize::B8);
    let register = ((esr >> 16) & 0x1f) as u8;
    let write = esr & (1 << 6) != 0;
    let access = if write {
        let data = if register == 31 {
            0
        } else {
            v.gprs.x[usize::from(register)] & size.mask()
        };
        // A write is complete once the host has seen it.
        ELR_EL2.set(ELR_EL2.get() + host_abort::instruction_len(esr));
        MmioAccess::Write { data }
    } else {
        v.pending = Pending::MmioRead {
            ipa,
            register,
            size,
            sign_extend: esr & (1 << 21) != 0,
            sixty_four: esr & (1 << 15) != 0,
            len: host_abort::instruction_len(esr),
        };
        MmioAccess::Read
    };
    Exit::Mmio {
        ipa,
        size,
        register,
        access,
    }
}

fn guest_hvc(v: &mut Vcpu, target: &RunTarget, vm: VmId) -> Option<Exit> {
    // x0-x7 by value, word by word: a slice copy of these 64 bytes became an out-of-line
    // `memcpy` call of about 55 instructions on every guest HVC (EL2 has no FP/SIMD for
    // LLVM to inline it with).
    let [x0, x1, x2, x3, x4, x5, x6, x7, ..] = v.gprs.x;
    let regs = [x0, x1, x2, x3, x4, x5, x6, x7];
    let call = match hvc_abi::route_guest_hvc(&regs) {
        GuestRoute::Forward(exit) => {
            v.pending = Pending::GuestHvc;
            return Some(exit);
        }
        GuestRoute::Payload(Err(e)) => {
            v.gprs.x[0] = e.as_x0();
            v.gprs.x[1..4].fill(0);
            return None;
        }
        GuestRoute::Payload(Ok(call)) => call,
    };
    let mut result = [0u64; 4];
    let exit = match call {
        GuestCall::CallUid => {
            result = hvc_abi::VENDOR_HYP_UID_REGS.map(u64::from);
            None
        }
        GuestCall::Features => {
            result[1] = Version::CURRENT.to_x1();
            result[2] = hvc_abi::function_id::GUEST_FEATURES_BITMAP;
            None
        }
        GuestCall::HypMeminfo => {
            result[1] = hvc_abi::limits::PAGE_SIZE;
            None
        }
        GuestCall::MemShare { ipa, nr } => {
            match memory_call(target, vm, ipa, nr, |r, gfn, nr| {
                r.guest_share_host(vm, gfn, nr)
            }) {
                Ok(()) => Some(Exit::MemShared { ipa, nr }),
                Err(e) => {
                    result[0] = e.as_x0();
                    None
                }
            }
        }
        GuestCall::MemUnshare { ipa, nr } => {
            match memory_call(target, vm, ipa, nr, |r, gfn, nr| {
                r.guest_unshare_host(vm, gfn, nr, &mut Tlb)
            }) {
                Ok(()) => Some(Exit::MemUnshared { ipa, nr }),
                Err(e) => {
                    result[0] = e.as_x0();
                    None
                }
            }
        }
        GuestCall::MemRelinquish { ipa, nr } => {
            // The zeroing happens after the lock is released (`DeferredSanitizer`).
            let mut zeroing = DeferredSanitizer::new();
            let relinquish = |r: &mut record::Record, gfn, nr| {
                r.guest_relinquish(vm, gfn, nr, &mut Tlb, &mut zeroing)
            };
            let relinquished = memory_call(target, vm, ipa, nr, relinquish)
                .and_then(|()| zeroing.finish().map_err(ipa_error));
            match relinquished {
                Ok(()) => Some(Exit::MemRelinquished { ipa, nr }),
                Err(e) => {
                    result[0] = e.as_x0();
                    None
                }
            }
        }
        GuestCall::MmioGuardMap { ipa } | GuestCall::MmioGuardUnmap { ipa } => {
            let map = matches!(call, GuestCall::MmioGuardMap { .. });
            if let Err(e) = crate::vm::guest_mmio_guard(target.slot, vm, ipa, map) {
                result[0] = e.as_x0();
            }
            None
        }
        GuestCall::IpaState { ipa } => {
            match crate::vm::guest_ipa_state(target.slot, vm, ipa) {
                Ok(state) => result[1] = state as u64,
                Err(e) => result[0] = e.as_x0(),
            }
            None
        }
        GuestCall::Smccc(call) => {
            result = crate::guest_smccc::handle(call);
            None
        }
        GuestCall::Psci(call) => {
            let outcome = crate::guest_psci::handle(call, target.slot);
            result[0] = outcome.x0;
            outcome.exit
        }
        GuestCall::SystemOff => return Some(Exit::SystemOff),
        GuestCall::SystemReset => return Some(Exit::SystemReset),
    };
    v.gprs.x[..4].copy_from_slice(&result);
    exit
}

/// The checks the decoder cannot make (the VM's own IPA size), then the transition.
fn memory_call(
    target: &RunTarget,
    _vm: VmId,
    ipa: u64,
    nr: u32,
    transition: impl FnOnce(&mut record::Record, usize, usize) -> Result<(), stage2::OwnershipError>,
) -> Result<(), Error> {
    check_ipa_range(ipa, nr, target.ipa_bits)?;
    let mut record = record::lock().ok_or(Error::Denied)?;
    transition(&mut record, (ipa >> 12) as usize, nr as usize).map_err(ipa_error)
}
