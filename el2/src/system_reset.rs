//! SYSTEM_OFF, SYSTEM_RESET and SYSTEM_RESET2 from the host: before the firmware sees the
//! call, no guest's data may be left where the next boot can read it. RAM keeps its
//! contents across a reset (QEMU never clears it; DRAM on real boards often survives a warm
//! reset), and whatever boots next (another payload, or a host kernel straight at EL2)
//! owns all of it.
//!
//! What EL2 does, in this order, on the CPU that made the call (CPU X):
//! 1. `GOING_DOWN` is set, and `fatal::stop_other_cpus`: from then on every CPU that
//!    enters EL2 from the host stops there (`traps::handle_lower_sync`, as after a fatal
//!    error), and every CPU whose guest exits to EL2 wipes that
//!    vCPU's saved state and stops (`left_guest`). A second reset call from another CPU
//!    stops that CPU; the first one goes on.
//! 2. X takes the memory lock and keeps it for good: no hypercall or guest entry that needs
//!    it (all memory calls, `activate_stage2` before any guest run) gets past it again.
//! 3. Every leaf of every guest stage-2 is removed, with broadcast TLB maintenance
//!    (`Ownership::scrub_for_reset`). A guest still running on another CPU faults at its
//!    next fetch or access and comes to EL2, so no guest writes memory after step 4.
//! 4. Every page guests own, shared with the host, used as their page tables, left pending
//!    reclaim, or still being zeroed for the host by another CPU (`Sanitizing`) is zeroed and cleaned to the point of coherency (a dirty line must
//!    not survive in a cache that the reset may write back, nor be lost to one it drops).
//! 5. X waits, for at most `STOP_WAIT_MS`, for every CPU that was inside a guest to
//!    have wiped its vCPU and stopped (the `IN_GUEST` handshake below), then zeroes every
//!    vCPU context EL2 keeps (guest registers, including FP/SIMD, saved at exits).
//! 6. Only then is the call passed to the firmware.
//!
//! The host gets no way to interleave: it cannot reach EL2 on another CPU (step 1), cannot
//! map a guest page (the record is locked and the pages are not the host's), and a guest
//! cannot refill a page (step 3). Host CPUs that never enter EL2 keep running host code
//! until the reset, with access only to what the host owned anyway.
//!
//! PSCI MEM_PROTECT (PSCI 1.1, optional): where the firmware offers it, `enable_mem_protect`
//! turns it on at boot, so the firmware also overwrites memory on resets EL2 never sees
//! (a watchdog). The host cannot turn it off: the relay answers MEM_PROTECT with
//! NOT_SUPPORTED. QEMU's PSCI does not offer it (PSCI_FEATURES says NOT_SUPPORTED), so on
//! QEMU the zeroing above is what protects guests; EL2 zeroes in either case.
//!
//! Left out: guest values that pass through EL2's own stacks during an exit, and a stopped
//! CPU's own registers (EL1 system and FP/SIMD registers of the guest it last ran), which
//! the reset itself resets.

use crate::cpu;
use crate::host_hvc::NOT_SUPPORTED;
use crate::per_cpu::{self, CpuState};
use crate::psci_relay::firmware;
use crate::tlb::{Sanitizer, Tlb};
use crate::{fatal, record, vm};
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};
use core::sync::atomic::{AtomicBool, Ordering};
use smccc::psci::{
    PSCI_FEATURES, PSCI_MEM_PROTECT, PSCI_SYSTEM_RESET, PSCI_SYSTEM_RESET2_32,
    PSCI_SYSTEM_RESET2_64,
};

static GOING_DOWN: AtomicBool = AtomicBool::new(false);
// `per_cpu::CpuState::in_guest`, per CPU: set (SeqCst) before the CPU enters a guest and
// cleared once the run is over and the guest's registers are saved (or its vCPU wiped).
// With `GOING_DOWN` this is Dekker's handshake: either the entering CPU sees `GOING_DOWN`
// and does not enter, or X sees the flag set and waits; a CPU that saw the flag clear at
// entry checks it again after every exit and after saving, before it clears its own flag.

/// How long X waits for guest CPUs to stop: 100 ms of the system counter. A CPU inside a
/// guest exits at once (its stage-2 is empty) and stops within a few thousand
/// instructions; one that does not is blocked on the memory lock X holds (a guest exit
/// that needs the record) and writes nothing more. The wait only lasts that long then.
const STOP_WAIT_MS: u64 = 100;

/// Whether a CPU has started taking the system down; every CPU that sees it stops.
pub fn going_down() -> bool {
    GOING_DOWN.load(Ordering::SeqCst)
}

/// Called by a CPU right before it enters a guest, with its own state (`this_cpu`). Returns
/// false (and the CPU must not enter) if the system is going down.
pub fn entering_guest(this_cpu: &CpuState) -> bool {
    this_cpu.in_guest.store(true, Ordering::SeqCst);
    if going_down() {
        this_cpu.in_guest.store(false, Ordering::SeqCst);
        return false;
    }
    true
}

/// Called by a CPU (`this_cpu`, its own state) after a guest exited to EL2 (its general registers are saved). If the
/// system is going down, `wipe` erases the vCPU's saved state, the CPU says it has left and
/// stops for good. Otherwise the CPU stays counted as inside the guest: it still saves the
/// guest's EL1 and FP/SIMD registers on the way out (`saved_guest_state`).
pub fn left_guest(this_cpu: &CpuState, wipe: impl FnOnce()) {
    if going_down() {
        stop_in_guest(this_cpu, wipe);
    }
}

/// Called by a CPU (`this_cpu`) once the guest's state is saved and the host's is back, at the end of
/// a run. Like `left_guest`; otherwise the CPU is no longer inside a guest.
pub fn saved_guest_state(this_cpu: &CpuState, wipe: impl FnOnce()) {
    if going_down() {
        stop_in_guest(this_cpu, wipe);
    }
    this_cpu.in_guest.store(false, Ordering::SeqCst);
}

fn stop_in_guest(this_cpu: &CpuState, wipe: impl FnOnce()) -> ! {
    wipe();
    this_cpu.in_guest.store(false, Ordering::SeqCst);
    fatal::park_this_cpu()
}

/// At boot: turns PSCI MEM_PROTECT on where the firmware has it; says which.
pub fn enable_mem_protect() {
    let offered = firmware(PSCI_FEATURES, [PSCI_MEM_PROTECT.into(), 0, 0])[0] as i32 >= 0;
    if offered && (firmware(PSCI_MEM_PROTECT, [1, 0, 0])[0] as i32) >= 0 {
        log::info!("PSCI MEM_PROTECT on: the firmware overwrites RAM on every reset");
    } else {
        log::info!(
            "PSCI MEM_PROTECT not offered by the firmware: EL2 zeroes guest memory before the resets and power-offs it relays"
        );
    }
}

/// SYSTEM_OFF, SYSTEM_RESET, SYSTEM_RESET2 (`function`, the host's `args`): see the module
/// comment. Returns only what the firmware refuses before anything is changed
/// (SYSTEM_RESET2 where it is not implemented).
pub fn relay(function: u32, args: [u64; 3]) -> [u64; 4] {
    let reset2 = function == PSCI_SYSTEM_RESET2_32 || function == PSCI_SYSTEM_RESET2_64;
    if reset2 && (firmware(PSCI_FEATURES, [function.into(), 0, 0])[0] as i32) < 0 {
        return [NOT_SUPPORTED, 0, 0, 0];
    }
    if GOING_DOWN.swap(true, Ordering::SeqCst) {
        // Another CPU is taking the system down already.
        fatal::park_this_cpu();
    }
    fatal::stop_other_cpus();
    let Some(mut record) = record::lock() else {
        fatal::halt_system(format_args!("reset before the memory record exists"));
    };
    let zeroed = match record.scrub_for_reset(&mut Tlb, &mut Sanitizer) {
        Ok(n) => n,
        Err(e) => fatal::halt_system(format_args!(
            "could not take guest memory away before a reset ({e}): not resetting"
        )),
    };
    let stuck = wait_for_guest_cpus();
    vm::wipe_all_vcpus_for_reset();
    log::info!(
        "host asked for {}: zeroed {zeroed} guest pages and every vCPU context first{}",
        name(function),
        if stuck == 0 {
            ""
        } else {
            " (a CPU blocked on the memory lock did not stop; it holds no guest data)"
        }
    );
    // The lock stays held: `record` is never dropped before the firmware takes over.
    let result = firmware(function, args);
    if reset2 {
        // The firmware refused this reset type after all: the host asked for a reset.
        firmware(PSCI_SYSTEM_RESET, [0; 3]);
    }
    fatal::halt_system(format_args!(
        "the firmware returned {:#x} from {}",
        result[0],
        name(function)
    ))
}

fn name(function: u32) -> &'static str {
    match function {
        PSCI_SYSTEM_RESET => "SYSTEM_RESET",
        PSCI_SYSTEM_RESET2_32 | PSCI_SYSTEM_RESET2_64 => "SYSTEM_RESET2",
        _ => "SYSTEM_OFF",
    }
}

/// Waits until no other CPU is inside a guest, for at most `STOP_WAIT_MS`. Returns how many
/// still were.
fn wait_for_guest_cpus() -> usize {
    let me = cpu::current();
    let ticks = CNTFRQ_EL0.get() * STOP_WAIT_MS / 1000;
    let start = CNTPCT_EL0.get();
    loop {
        let busy = (0..cpu::count())
            .filter(|&c| c != me && per_cpu::of(c).in_guest.load(Ordering::SeqCst))
            .count();
        if busy == 0 || CNTPCT_EL0.get().wrapping_sub(start) > ticks {
            return busy;
        }
        core::hint::spin_loop();
    }
}
