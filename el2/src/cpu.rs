//! Per-CPU bookkeeping: logical CPU numbers, their MPIDRs, and the power state the PSCI
//! relay tracks for each (so a CPU_ON can never redirect a CPU that is already running).
//!
//! Logical CPU 0 is the boot CPU; the others follow the DTB's order. A CPU's logical number
//! indexes its stack (`layout::stack_of`) and is the context id EL2 passes to the firmware
//! when it starts the CPU, so `rust_secondary_main` knows who it is.

use crate::layout::MAX_CPUS;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use spin::Once;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum PowerState {
    Off = 0,
    /// CPU_ON accepted, the CPU has not reached the host yet.
    OnPending = 1,
    On = 2,
}

/// The MPIDR affinity fields (Aff3, Aff2, Aff1, Aff0) that name a CPU.
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

pub struct CpuTable {
    mpidr: [u64; MAX_CPUS],
    count: usize,
}

static CPUS: Once<CpuTable> = Once::new();
static POWER: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(PowerState::Off as u8) }; MAX_CPUS];
/// Where the host wants a CPU to start (or resume) and with which context id.
static HOST_ENTRY: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static HOST_CONTEXT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Records the CPUs from the DTB, boot CPU first.
pub fn init(boot_mpidr: u64, dtb_mpidrs: impl Iterator<Item = u64>) {
    let boot = boot_mpidr & MPIDR_AFFINITY_MASK;
    let mut table = CpuTable {
        mpidr: [0; MAX_CPUS],
        count: 1,
    };
    table.mpidr[0] = boot;
    for m in dtb_mpidrs.map(|m| m & MPIDR_AFFINITY_MASK) {
        if m != boot && table.count < MAX_CPUS {
            table.mpidr[table.count] = m;
            table.count += 1;
        }
    }
    CPUS.call_once(|| table);
    POWER[0].store(PowerState::On as u8, Ordering::Release);
}

pub fn count() -> usize {
    CPUS.get().map_or(1, |t| t.count)
}

/// Logical number of the CPU with this MPIDR.
pub fn logical_id(mpidr: u64) -> Option<usize> {
    let t = CPUS.get()?;
    let m = mpidr & MPIDR_AFFINITY_MASK;
    t.mpidr[..t.count].iter().position(|&x| x == m)
}

pub fn mpidr_of(cpu: usize) -> u64 {
    CPUS.get().map_or(0, |t| t.mpidr[cpu])
}

/// Logical number of the calling CPU.
pub fn current() -> usize {
    use aarch64_cpu::registers::{MPIDR_EL1, Readable};
    logical_id(MPIDR_EL1.get()).unwrap_or(0)
}

/// Moves `cpu` from `from` to `to`; returns the state it was in if that was not `from`.
pub fn transition(cpu: usize, from: PowerState, to: PowerState) -> Result<(), PowerState> {
    POWER[cpu]
        .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
        .map(|_| ())
        .map_err(|s| match s {
            0 => PowerState::Off,
            1 => PowerState::OnPending,
            _ => PowerState::On,
        })
}

pub fn set_power(cpu: usize, state: PowerState) {
    POWER[cpu].store(state as u8, Ordering::Release);
}

pub fn set_host_entry(cpu: usize, entry: u64, context: u64) {
    HOST_ENTRY[cpu].store(entry, Ordering::Relaxed);
    HOST_CONTEXT[cpu].store(context, Ordering::Release);
}

pub fn host_entry(cpu: usize) -> (u64, u64) {
    let context = HOST_CONTEXT[cpu].load(Ordering::Acquire);
    (HOST_ENTRY[cpu].load(Ordering::Relaxed), context)
}
