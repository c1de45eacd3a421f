//! Per-CPU bookkeeping: logical CPU numbers, their MPIDRs, and the power state the PSCI
//! relay tracks for each (so a CPU_ON can never redirect a CPU that is already running).
//!
//! Logical CPU 0 is the boot CPU; the others follow the DTB's order, as many as it lists
//! (`per_cpu` sizes their state at boot; `platform::cpu_map` maps MPIDRs, sparse cluster
//! numbering included). A CPU's logical number indexes its stack (`per_cpu::stack_top`) and
//! is the context id EL2 passes to the firmware when it starts the CPU, so
//! `rust_secondary_main` knows who it is.

use crate::per_cpu;
use core::sync::atomic::Ordering;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PowerState {
    Off = 0,
    /// CPU_ON accepted, the CPU has not reached the host yet.
    OnPending = 1,
    On = 2,
}

/// Marks the boot CPU on, once `per_cpu::init` has numbered the CPUs.
pub fn init() {
    set_power(0, PowerState::On);
}

/// How many CPUs EL2 manages (1 until `per_cpu::init`).
pub fn count() -> usize {
    per_cpu::map().map_or(1, |m| m.len())
}

/// Logical number of the CPU with this MPIDR.
pub fn logical_id(mpidr: u64) -> Option<usize> {
    per_cpu::map()?.logical_id(mpidr)
}

pub fn mpidr_of(cpu: usize) -> u64 {
    per_cpu::map().and_then(|m| m.mpidr_of(cpu)).unwrap_or(0)
}

/// Logical number of the calling CPU. Callers on hot paths call it once and pass the
/// number (or `per_cpu::of` it) down: it is a binary search over the MPIDR map.
///
/// A CPU whose MPIDR is not in the map stops the system: sharing another CPU's state
/// (its saved host registers) would be worse. It cannot happen: the boot CPU is always
/// number 0, the PSCI relay starts only CPUs in the map (`cpu_on` refuses any other
/// MPIDR with INVALID_PARAMETERS, and names the target to the firmware by the map's
/// MPIDR), and `rust_secondary_main` checks that the CPU that arrived is the one started.
pub fn current() -> usize {
    use aarch64_cpu::registers::{MPIDR_EL1, Readable};
    let mpidr = MPIDR_EL1.get();
    match logical_id(mpidr) {
        Some(cpu) => cpu,
        None => not_in_map(mpidr),
    }
}

#[cold]
#[inline(never)]
fn not_in_map(mpidr: u64) -> ! {
    crate::fatal::halt_system(format_args!(
        "a CPU with MPIDR {mpidr:#x} runs EL2 but is not in the CPU map"
    ))
}

/// Moves `cpu` from `from` to `to`; returns the state it was in if that was not `from`.
pub fn transition(cpu: usize, from: PowerState, to: PowerState) -> Result<(), PowerState> {
    per_cpu::of(cpu)
        .power
        .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
        .map(|_| ())
        .map_err(|s| match s {
            0 => PowerState::Off,
            1 => PowerState::OnPending,
            _ => PowerState::On,
        })
}

pub fn set_power(cpu: usize, state: PowerState) {
    per_cpu::of(cpu).power.store(state as u8, Ordering::Release);
}

/// Where the host wants `cpu` to start (or resume) and with which context id.
pub fn set_host_entry(cpu: usize, entry: u64, context: u64) {
    let state = per_cpu::of(cpu);
    state.host_entry.store(entry, Ordering::Relaxed);
    state.host_context.store(context, Ordering::Release);
}

pub fn host_entry(cpu: usize) -> (u64, u64) {
    let state = per_cpu::of(cpu);
    let context = state.host_context.load(Ordering::Acquire);
    (state.host_entry.load(Ordering::Relaxed), context)
}
