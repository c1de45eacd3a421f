//! Per-CPU state, sized from the DTB at boot: as many CPUs as `/cpus` lists, no fixed cap
//! (servers have 64 to 256 cores; discovery's sanity bound is Linux's largest NR_CPUS).
//!
//! The memory plan (`stage2::memory_plan::per_cpu_bytes`) reserves, in the dynamic
//! carve-out, one stack with its guard page for every CPU but the boot CPU (whose stack is
//! in the image: it needs one before any plan exists), then for every CPU a [`CpuState`]
//! and its entries of the MPIDR map (`platform::cpu_map`). [`init`] fills that region once
//! the EL2 stage-1 maps it (the guard pages left unmapped, `mmu`), before the host runs.
//!
//! What one CPU costs is [`needs`]`(1).bytes_per_cpu()`; the boot log prints it.

use crate::el1_state::El1State;
use crate::host_sve::SveState;
use crate::{cache, fatal, layout};
use core::cell::UnsafeCell;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use platform::cpu_map::{self, CpuMap, SortedEntry};
use spin::Once;
use stage2::memory_plan::PerCpuNeeds;

/// Everything EL2 keeps per CPU besides its stack. Each field belongs to the module named.
#[repr(C)]
pub struct CpuState {
    /// `cpu`: PSCI power state (`cpu::PowerState`).
    pub power: AtomicU8,
    /// `cpu`: where the host wants the CPU to start, and with which context id.
    pub host_entry: AtomicU64,
    pub host_context: AtomicU64,
    /// `system_reset`: the CPU is inside a guest.
    pub in_guest: AtomicBool,
    /// `host_timer`: the CPU's redistributor SGI frame.
    pub timer_frame: AtomicUsize,
    /// `el2_regs`: host PMU, GIC priority mask and trace filter saved around a guest.
    pub host_pmcnten: AtomicU64,
    pub host_pmr: AtomicU64,
    pub host_trfcr: AtomicU64,
    /// `host_features`: the host's SPE, branch-record and SME thread-pointer state saved
    /// around a guest.
    pub host_pmscr: AtomicU64,
    pub host_brbcr: AtomicU64,
    pub host_tpidr2: AtomicU64,
    /// `vcpu`: the host's EL1 state while the CPU runs a guest.
    pub host_el1: UnsafeCell<El1State>,
    /// `host_sve`: the host's SVE/SME state while the CPU runs a guest.
    pub host_sve: UnsafeCell<SveState>,
}

// SAFETY: the atomics are Sync; `host_el1` and `host_sve` are only ever accessed by the CPU
// that owns the slot (the state `vcpu::run` finds with `cpu::current()` and passes down),
// inside its own VCPU_RUN, never shared.
unsafe impl Sync for CpuState {}

impl CpuState {
    const fn new() -> Self {
        Self {
            power: AtomicU8::new(0),
            host_entry: AtomicU64::new(0),
            host_context: AtomicU64::new(0),
            in_guest: AtomicBool::new(false),
            timer_frame: AtomicUsize::new(0),
            host_pmcnten: AtomicU64::new(0),
            host_pmr: AtomicU64::new(0),
            host_trfcr: AtomicU64::new(0),
            host_pmscr: AtomicU64::new(0),
            host_brbcr: AtomicU64::new(0),
            host_tpidr2: AtomicU64::new(0),
            host_el1: UnsafeCell::new(El1State::zeroed()),
            host_sve: UnsafeCell::new(SveState::INIT),
        }
    }
}

/// What the memory plan must reserve for `cpus` CPUs.
pub fn needs(cpus: usize) -> PerCpuNeeds {
    PerCpuNeeds {
        cpus: cpus as u64,
        stack_bytes: layout::STACK_STRIDE as u64,
        state_bytes: (core::mem::size_of::<CpuState>() + cpu_map::BYTES_PER_CPU) as u64,
    }
}

/// Base of the secondary CPUs' stacks: CPU `i >= 1` has slot `i - 1`, guard page first, so
/// its stack top is `SECONDARY_STACKS + i * STACK_STRIDE`. Read by `asm/entry.S` with the
/// MMU off (hence cleaned to the point of coherency); 0 until [`init`].
#[unsafe(no_mangle)]
static SECONDARY_STACKS: AtomicUsize = AtomicUsize::new(0);

// Every CPU's state: `STATE_LEN` slots from `STATE_BASE`. A plain pointer and length, not a
// `spin::Once`: `of` is on the world switch and PSCI paths, and a Once's state check, its
// slice and its niche test cost instructions on every call (the bench's VCPU_RUN row).
// Both are written exactly once, by `init` on the boot CPU, before the host runs and so
// before any other CPU can start (only the PSCI relay starts CPUs, on the host's
// CPU_ON); until then `STATE_LEN` is 0 and every `of` stops the system loudly.
static STATE_BASE: AtomicPtr<CpuState> = AtomicPtr::new(core::ptr::null_mut());
static STATE_LEN: AtomicUsize = AtomicUsize::new(0);
static MAP: Once<CpuMap<'static>> = Once::new();

/// The guard page of each secondary CPU's stack in `region` (the plan's `per_cpu`).
pub fn stack_guards(region: &Range<u64>, cpus: usize) -> impl Iterator<Item = Range<usize>> {
    let base = region.start as usize;
    (1..cpus).map(move |cpu| {
        let guard = base + (cpu - 1) * layout::STACK_STRIDE;
        guard..guard + layout::PAGE_SIZE
    })
}

/// Why the per-CPU region could not be set up.
pub enum InitError {
    /// The region is smaller than [`needs`] says (the plan and this module disagree).
    RegionTooSmall,
    Map(cpu_map::CpuMapError),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::RegionTooSmall => write!(f, "per-CPU region smaller than planned"),
            Self::Map(e) => write!(f, "CPU list: {e}"),
        }
    }
}

/// Lays out `region` for `cpus` CPUs (boot CPU `boot_mpidr` first, then `dtb_mpidrs`'
/// order) and publishes it. Call once, on the boot CPU, with `region` mapped read-write.
///
/// # Safety
/// `region` is the plan's per-CPU range, used by nothing else, forever.
pub unsafe fn init(
    region: &Range<u64>,
    cpus: usize,
    boot_mpidr: u64,
    dtb_mpidrs: impl FnOnce(&mut dyn FnMut(u64)),
) -> Result<&'static CpuMap<'static>, InitError> {
    let stacks = cpus.saturating_sub(1) * layout::STACK_STRIDE;
    let states = region.start as usize + stacks;
    let by_index = states + cpus * core::mem::size_of::<CpuState>();
    let by_mpidr = by_index + cpus * core::mem::size_of::<u64>();
    let end = by_mpidr + cpus * core::mem::size_of::<SortedEntry>();
    if end > region.end as usize {
        return Err(InitError::RegionTooSmall);
    }
    // SAFETY: the ranges computed above are disjoint, inside `region` (checked), which the
    // caller gives to this module alone; each is aligned for its type (the region is page
    // aligned, stacks are whole pages, and CpuState's size is a multiple of 16, a multiple of
    // the u64/SortedEntry alignment). Every element is written before the slices are made.
    let (state, by_index, by_mpidr) = unsafe {
        let state = states as *mut CpuState;
        for i in 0..cpus {
            state.add(i).write(CpuState::new());
        }
        let by_index = by_index as *mut u64;
        core::ptr::write_bytes(by_index, 0, cpus);
        let by_mpidr = by_mpidr as *mut SortedEntry;
        for i in 0..cpus {
            by_mpidr.add(i).write(SortedEntry::default());
        }
        (
            core::slice::from_raw_parts(state, cpus),
            core::slice::from_raw_parts_mut(by_index, cpus),
            core::slice::from_raw_parts_mut(by_mpidr, cpus),
        )
    };
    let map = CpuMap::build(boot_mpidr, dtb_mpidrs, by_index, by_mpidr).map_err(InitError::Map)?;
    if map.len() != cpus {
        return Err(InitError::RegionTooSmall);
    }
    STATE_BASE.store(state.as_ptr().cast_mut(), Ordering::Relaxed);
    STATE_LEN.store(state.len(), Ordering::Release);
    let map = MAP.call_once(|| map);
    SECONDARY_STACKS.store(region.start as usize, Ordering::Release);
    // Secondary CPUs read these with their MMU off (`asm/entry.S`, `rust_secondary_main`'s
    // `cpu::count`): clean them to the point of coherency. Their stacks are cleaned and invalidated so
    // no stale line is later evicted over what a CPU wrote with its MMU off.
    cache::clean_to_poc(SECONDARY_STACKS.as_ptr() as usize, 8);
    cache::clean_to_poc(STATE_BASE.as_ptr() as usize, 8);
    cache::clean_to_poc(STATE_LEN.as_ptr() as usize, 8);
    cache::clean_to_poc(&raw const MAP as usize, core::mem::size_of_val(&MAP));
    cache::clean_to_poc(states, end - states);
    cache::clean_invalidate_to_poc(region.start as usize, stacks);
    Ok(map)
}

/// The MPIDR map, once [`init`] ran.
pub fn map() -> Option<&'static CpuMap<'static>> {
    MAP.get()
}

/// CPU `cpu`'s state. Callers pass numbers from `cpu::current`/`cpu::logical_id`, which
/// are always below the count; anything else is a bug in EL2 and stops the system loudly.
#[inline]
pub fn of(cpu: usize) -> &'static CpuState {
    // Relaxed is enough: `init` stores both once, on the boot CPU, before the host runs.
    // The boot CPU reads them later in its own program order; every other CPU is started
    // (by the firmware, on the relay's CPU_ON SMC) only after that, and `init` cleaned
    // them to the point of coherency, so no CPU can see the length without the base. An
    // `of` before `init` sees length 0 and stops.
    let len = STATE_LEN.load(Ordering::Relaxed);
    if cpu >= len {
        not_set_up(cpu);
    }
    // SAFETY: `cpu < len`, and slots `0..len` from `STATE_BASE` were each written by
    // `init` and live forever in the region it was given (see the comment above on why
    // this CPU sees `init`'s stores).
    unsafe { &*STATE_BASE.load(Ordering::Relaxed).add(cpu) }
}

#[cold]
#[inline(never)]
fn not_set_up(cpu: usize) -> ! {
    fatal::halt_system(format_args!(
        "per-CPU state of CPU {cpu} used before boot set it up"
    ))
}

/// The top of CPU `cpu`'s stack (the boot CPU's is in the image).
pub fn stack_top(cpu: usize) -> usize {
    if cpu == 0 {
        return layout::boot_stack().end;
    }
    SECONDARY_STACKS.load(Ordering::Acquire) + cpu * layout::STACK_STRIDE
}
