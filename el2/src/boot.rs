//! The boot sequence, one phase per step, each logged with what it found.
//!
//! Boot CPU: `rust_primary_main` (from `asm/entry.S`, MMU off, on CPU 0's stack).
//! Other CPUs: `rust_secondary_main`, when the PSCI relay has started them.

use crate::record::{self, RecordSetup};
use crate::unconfined_dma::{self, Decision};
use crate::{
    cache, cpu, el2_regs, fatal, heap, host_entry, host_gicr, host_timer, layout, mmu, per_cpu,
    psci_relay, smmu,
};
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MPIDR_EL1, Readable};
use platform::fdt_discovery::{self, BootInfo, GicVersion, MAX_MMIO_REGIONS};
use platform::fixed_list::{FixedList, MemRange};
use platform::host_dtb::{self, HostDtbEdits};
use stage2::memory_plan::{self, MemoryPlan, PlanInput, RangeList};
use stage2::pool::PagePool;

/// Largest DTB the payload accepts (the Linux boot protocol's limit too).
const MAX_DTB_SIZE: usize = 2 << 20;

macro_rules! fatal {
    ($($arg:tt)*) => { fatal::halt_system(format_args!($($arg)*)) };
}

/// Reads the DTB header's `totalsize` (big endian at offset 4) after checking the magic,
/// so that a bad x0 is refused before anything slices memory with a wild length.
fn dtb_slice(dtb: usize) -> Option<&'static mut [u8]> {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the boot protocol says x0 points at the DTB in RAM; 8 aligned bytes are read
    // only after the null/alignment check. With the MMU off any RAM address is readable.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, 8) };
    if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
        return None;
    }
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if !(40..=MAX_DTB_SIZE).contains(&size) {
        return None;
    }
    // SAFETY: the header says the blob is `size` bytes long, within the limit checked above;
    // the loader placed it in RAM and nothing writes it while EL2 reads it.
    Some(unsafe { core::slice::from_raw_parts_mut(dtb as *mut u8, size) })
}

#[unsafe(no_mangle)]
extern "C" fn rust_primary_main(dtb: usize, current_el: u64) -> ! {
    let mut blob = dtb_slice(dtb);
    // libfdt-edited blobs (QEMU's `-dtb`) carry NOP tags the parser cannot take: compact
    // first. An error here is reported by discovery below.
    let nops = blob.as_deref_mut().map(platform::fdt_check::strip_nops);
    let blob: Option<&'static [u8]> = blob.map(|b| &*b);
    // The console first: nothing can be reported without it.
    // A stdout-path UART without a driver here leaves EL2 silent; the boot goes on.
    if let Some(uart) = blob.and_then(fdt_discovery::find_console) {
        // SAFETY: the DTB names this UART as the console; EL2 drives it alone until the
        // host starts, and it stays identity-mapped as device memory.
        if let Some(console) = unsafe { platform::console::Console::for_uart(&uart) } {
            let _ = platform::console::init(console, "[el2] ", log::LevelFilter::Info);
        }
    }
    log::info!(
        "payload {} starting at {:#x}",
        env!("CARGO_PKG_VERSION"),
        layout::image().start
    );
    if let Some(Ok(n)) = nops.filter(|r| r.as_ref().is_ok_and(|&n| n > 0)) {
        log::info!("removed {n} NOP tags from the DTB");
    }
    let Some(blob) = blob else {
        fatal!("x0 = {dtb:#x} is not a device tree (bad magic, alignment or size): halting");
    };
    if current_el != 2 {
        fatal!(
            "entered at EL{current_el}: this payload must be started at EL2 (QEMU: -M virt,virtualization=on)"
        );
    }
    host_entry::install_vectors();
    let info = match fdt_discovery::discover(blob) {
        Ok(info) => info,
        Err(e) => fatal!("invalid device tree: {e}"),
    };
    log_discovery(&info);
    let Some(kernel) = info.modules.kernel else {
        fatal!(
            "no host kernel module in the DTB (/chosen/module@... compatible \"multiboot,kernel\"): nothing to run"
        );
    };

    let dma = match unconfined_dma::decide(blob) {
        Ok(decision) => decision,
        Err(e) => fatal!("DMA masters: {e}"),
    };
    let (host_mmio, gicr) = host_mmio(&info, &dma);

    // As many CPUs as the DTB lists: their state is sized from this count (`per_cpu`).
    let cpus = platform::cpu_map::cpu_count(MPIDR_EL1.get(), |f| info.cpus.for_each(f));
    psci_relay::init(info.psci.conduit);

    // Guests use FEAT_S2FWB where the CPU has it; `guest_traps::guest_hcr` sets
    // HCR_EL2.FWB from the same cached feature bit, so tables and HCR always agree.
    let config = stage2::stage2_config(ID_AA64MMFR0_EL1.get() & 0xf)
        .with_guest_fwb(crate::guest_sysregs::cpu_features().fwb);
    let per_cpu_needs = per_cpu::needs(cpus);
    let plan = match plan_memory(dtb as u64, &info, &host_mmio, gicr, &config, per_cpu_needs) {
        Ok(plan) => plan,
        Err(e) => fatal!(
            "memory plan ({cpus} CPUs at {} bytes each): {e}",
            per_cpu_needs.bytes_per_cpu()
        ),
    };
    log::info!(
        "carve-out: image {:#x}..{:#x}, pools {:#x}..{:#x} (host stage-2 pool {} KiB, ownership record {} KiB, EL2 tables {} KiB, heap {} KiB, SMMU {} KiB, per-CPU {} KiB)",
        plan.image.start,
        plan.image.end,
        plan.dynamic.start,
        plan.dynamic.end,
        kib(&plan.stage2_pool),
        kib(&plan.ownership),
        kib(&plan.el2_tables),
        kib(&plan.heap),
        kib(&plan.smmu),
        kib(&plan.per_cpu),
    );

    // EL2 stage-1 with W^X.
    // SAFETY: the plan reserved this range for EL2's tables; it is RAM nothing else uses.
    let el2_pool = unsafe { PagePool::new(plan.el2_tables.start as usize, len(&plan.el2_tables)) };
    let ram = info
        .memory
        .as_slice()
        .iter()
        .map(|r| r.base as usize..(r.base + r.size) as usize);
    let console = info
        .console
        .map(|c| c.regs.base as usize..(c.regs.base + c.regs.size) as usize);
    let redistributors = info
        .gic
        .redistributors
        .as_slice()
        .iter()
        .map(|r| r.base as usize..(r.base + r.size) as usize);
    let smmu_regs = info
        .smmu
        .map(|s| s.regs.base as usize..(s.regs.base + s.regs.size) as usize);
    // GICv2: the distributor, whose banked PPI registers `host_timer` uses (a GICv3's
    // redistributors play that part).
    let gicv2_distributor = (info.gic.version == GicVersion::V2).then(|| {
        let d = info.gic.distributor;
        d.base as usize..(d.base + d.size) as usize
    });
    let devices = redistributors
        .clone()
        .chain(smmu_regs)
        .chain(gicv2_distributor.clone());
    let guards = per_cpu::stack_guards(&plan.per_cpu, cpus);
    let el2_map = match mmu::El2Map::build(el2_pool, ram, console, devices, guards) {
        Ok(map) => map,
        Err(e) => fatal!("{e}"),
    };
    el2_map.activate();
    host_timer::init(redistributors);
    if let Some(gicd) = gicv2_distributor {
        host_timer::init_gicv2(gicd.start);
    }
    // The map lives as long as EL2 does.
    core::mem::forget(el2_map);
    log::info!("EL2 stage-1 on: text RX, rodata R, data/stacks RW+XN, stack guard pages unmapped");
    // SAFETY: the plan gave this range to the per-CPU state alone; it is mapped RW now
    // (guard pages excepted, which `per_cpu::init` does not touch).
    if let Err(e) = unsafe {
        per_cpu::init(&plan.per_cpu, cpus, MPIDR_EL1.get(), |f| {
            info.cpus.for_each(f)
        })
    } {
        fatal!("per-CPU state for {cpus} CPUs: {e}");
    }
    cpu::init();
    log::info!(
        "{cpus} CPUs from the DTB: per-CPU state sized at boot, {} bytes per CPU (stack and guard page {}, state {}), {} KiB at {:#x}..{:#x}",
        per_cpu_needs.bytes_per_cpu(),
        per_cpu_needs.stack_bytes,
        per_cpu_needs.state_bytes,
        kib(&plan.per_cpu),
        plan.per_cpu.start,
        plan.per_cpu.end
    );
    check_stack_guards(&plan.per_cpu, cpus);

    // SAFETY: the plan gave this range to the heap alone; it is mapped RW now.
    unsafe { heap::init(plan.heap.start as usize, plan.heap.end as usize) };

    // SAFETY: the plan reserved this range for the host stage-2's tables.
    let host_pool =
        unsafe { PagePool::new(plan.stage2_pool.start as usize, len(&plan.stage2_pool)) };
    // SAFETY: the plan reserved this range for the record; it is mapped read-write and
    // suitably aligned (page aligned) for u16.
    let meta = unsafe {
        core::slice::from_raw_parts_mut(plan.ownership.start as *mut u16, len(&plan.ownership) / 2)
    };
    let ram = to_pairs(
        info.memory
            .as_slice()
            .iter()
            .map(|r| r.base..r.base + r.size),
    );
    let mmio = host_mmio_pairs(host_mmio.as_slice(), gicr);
    let hyp = to_pairs([plan.image.clone(), plan.dynamic.clone()].into_iter());
    let setup = RecordSetup {
        config,
        host_pool,
        ram: ram.as_slice(),
        mmio,
        hyp: hyp.as_slice(),
        meta,
    };
    // SAFETY: EL2 maps all RAM read-write (above); the pool is exclusively the record's.
    match unsafe { record::init(setup) } {
        Ok(stats) => log::info!(
            "host stage-2: {} bits of IPA, VMID 0, RAM minus carve-outs and {} MMIO regions as {stats}",
            config.ipa_bits,
            mmio.len()
        ),
        Err(e) => fatal!("ownership record / host stage-2: {e}"),
    }
    if let Some(smmu) = &info.smmu {
        take_smmu(smmu, &plan, ram.as_slice());
    }

    let host_dtb_addr = write_host_dtb(blob, &info, &plan, kernel.bootargs, &dma);
    let Some(regs) = record::host_regs() else {
        fatal!("host stage-2 missing after build");
    };
    el2_regs::configure_for_host(regs);
    log::info!(
        "entering host at {:#x} (EL1h, x0 = DTB at {host_dtb_addr:#x}), {} CPUs known",
        kernel.range.base,
        cpu::count()
    );
    host_entry::enter_host(kernel.range.base, host_dtb_addr, per_cpu::stack_top(0))
}

/// A CPU the PSCI relay started (or woke from a power-down suspend): same EL2 state as the
/// boot CPU, then on to where the host asked.
#[unsafe(no_mangle)]
extern "C" fn rust_secondary_main(cpu_index: usize) -> ! {
    // The context id EL2 gave the firmware for this CPU: it must name this very CPU, or
    // two CPUs would share one per-CPU state (and stack).
    if cpu_index >= cpu::count() || cpu::logical_id(MPIDR_EL1.get()) != Some(cpu_index) {
        fatal::park_this_cpu();
    }
    let Some(regs) = record::host_regs() else {
        // Only the relay starts CPUs, and only once the host runs: cannot happen.
        fatal::park_this_cpu();
    };
    mmu::enable_on_secondary();
    host_entry::install_vectors();
    el2_regs::configure_for_host(regs);
    cpu::set_power(cpu_index, cpu::PowerState::On);
    let (entry, context) = cpu::host_entry(cpu_index);
    host_entry::enter_host(entry, context, per_cpu::stack_top(cpu_index))
}

/// Checks, in the live EL2 stage-1, that every CPU's guard page is unmapped and the stack
/// above it mapped (an overflow must fault, not run into the neighbour): one `AT` each.
fn check_stack_guards(per_cpu: &core::ops::Range<u64>, cpus: usize) {
    let boot = layout::boot_stack();
    let boot_guard = boot.start - layout::PAGE_SIZE..boot.start;
    let mut checked = 0;
    for guard in core::iter::once(boot_guard).chain(per_cpu::stack_guards(per_cpu, cpus)) {
        if mmu::maps_at_boot(guard.start) || !mmu::maps_at_boot(guard.end) {
            fatal!(
                "stack guard page {:#x}..{:#x} is mapped, or the stack above it is not",
                guard.start,
                guard.end
            );
        }
        checked += 1;
    }
    log::info!(
        "{checked} stack guard pages unmapped, stacks above them mapped (checked with AT S1E2R)"
    );
}

/// EL2 takes the SMMU: its tables hold the host's pages (the record grants them), then it
/// translates. Any failure stops the boot: a host with unconfined DMA is not an option.
fn take_smmu(smmu: &platform::fdt_discovery::Smmu, plan: &MemoryPlan, ram: &[(usize, usize)]) {
    let block = plan.smmu.start as usize..plan.smmu.end as usize;
    // SAFETY: the SMMU's registers are mapped as device memory at EL2 (above); the plan
    // gave `block` to the SMMU alone, and EL2 maps all RAM read-write.
    let dma = match unsafe { smmu::init(smmu, block, ram) } {
        Ok(dma) => dma,
        Err(e) => fatal!("{e}"),
    };
    let Some(mut record) = record::lock() else {
        fatal!("ownership record missing after build");
    };
    record.attach_host_dma(dma);
    drop(record);
    if let Err(e) = smmu::enable() {
        fatal!("{e}");
    }
}

fn kib(r: &core::ops::Range<u64>) -> u64 {
    (r.end - r.start) >> 10
}

fn len(r: &core::ops::Range<u64>) -> usize {
    (r.end - r.start) as usize
}

fn log_discovery(info: &BootInfo) {
    for bank in info.memory.as_slice() {
        log::info!(
            "RAM bank {:#x}..{:#x} ({} MiB)",
            bank.base,
            bank.base + bank.size,
            bank.size >> 20
        );
    }
    // The MPIDR list is printed for small machines only: 256 of them make a 2 KiB line.
    if info.cpus.len() <= 16 {
        log::info!("CPU MPIDRs {:?}", info.cpus);
    }
    log::info!(
        "{} CPUs in the DTB, PSCI {:?} via {:?}, GIC {:?} distributor at {:#x}, {} MMIO regions",
        info.cpus.len(),
        info.psci.version,
        info.psci.conduit,
        info.gic.version,
        info.gic.distributor.base,
        info.mmio.as_slice().len(),
    );
    if let Some(kernel) = &info.modules.kernel {
        log::info!(
            "host kernel module at {:#x} ({} KiB), bootargs {:?}",
            kernel.range.base,
            kernel.range.size >> 10,
            kernel.bootargs.unwrap_or("")
        );
    }
    if let Some(rd) = &info.modules.ramdisk {
        log::info!(
            "host ramdisk module at {:#x} ({} KiB)",
            rd.base,
            rd.size >> 10
        );
    }
}

/// The device MMIO the host stage-2 maps (`unconfined_dma::host_mmio`); with LPIs kept
/// from the host, the GICR regions are left out of that list and returned as a layout: the
/// host gets their SGI_base frames (one per CPU, added by [`host_mmio_pairs`] once the heap
/// exists, so their number is not capped), the RD_base frames are `host_gicr`'s.
#[inline(never)]
fn host_mmio(
    info: &BootInfo,
    dma: &Decision,
) -> (
    FixedList<MemRange, MAX_MMIO_REGIONS>,
    Option<&'static host_gicr::Layout>,
) {
    let gicr = if dma.withhold && info.gic.version == GicVersion::V3 {
        Some(host_gicr::discover(info.gic.redistributors.as_slice()))
    } else {
        if info.gic.version == GicVersion::V3 {
            unconfined_dma::disable_protected_vms(format_args!(
                "GIC redistributors' LPI tables (GICR_PROPBASER/PENDBASER) handed to the host"
            ));
        }
        None
    };
    if let Some(layout) = gicr {
        if let Some(rd) = layout.disable_lpis() {
            unconfined_dma::disable_protected_vms(format_args!(
                "the firmware enabled LPIs in the redistributor at {rd:#x} and they stay on"
            ));
        }
        log::info!(
            "{} GIC redistributors: RD_base frames emulated at EL2 (no LPIs for the host), SGI_base frames mapped",
            layout.count()
        );
    }
    let regions = gicr.map_or(&[][..], |l| l.regions());
    let mut list =
        match unconfined_dma::host_mmio(info.mmio.as_slice(), dma, regions, core::iter::empty()) {
            Ok(list) => list,
            Err(_) => {
                fatal!(
                    "more than {MAX_MMIO_REGIONS} host MMIO ranges once DMA masters are withheld"
                )
            }
        };
    // The GIC's memory-mapped virtual interface (GICv2's GICH and GICV) is not the host's:
    // see `Gic::virtual_interface`.
    for r in info.gic.virtual_interface() {
        let Some(aligned) = r.page_aligned() else {
            fatal!(
                "the GIC's virtual interface at {:#x} ends past 2^64",
                r.base
            );
        };
        if list.remove(aligned).is_err() {
            fatal!(
                "more than {MAX_MMIO_REGIONS} host MMIO ranges once the GIC's virtual interface is removed"
            );
        }
        log::info!(
            "GIC virtual interface {:#x}..{:#x} kept from the host",
            aligned.base,
            aligned.end()
        );
    }
    (list, gicr)
}

/// The memory the host kernel will occupy once it runs: its file, or an arm64 `Image`'s
/// `image_size` from its header (which covers .bss), so that EL2's carve-out never lands
/// where the kernel clears its .bss. A kernel whose footprint runs into the ramdisk would
/// clear the ramdisk: that is a fatal boot error naming both.
fn kernel_span(info: &BootInfo, kernel: &fdt_discovery::HostModule) -> core::ops::Range<u64> {
    let (base, file_size) = (kernel.range.base, kernel.range.size);
    let header_len = fdt_discovery::IMAGE_HEADER_LEN.min(file_size as usize);
    let in_ram = info.memory.as_slice().iter().any(|bank| {
        base >= bank.base && base.saturating_add(header_len as u64) <= bank.base + bank.size
    });
    let footprint = if in_ram {
        // SAFETY: the header lies within a RAM bank the DTB describes, where the loader put
        // the module; EL2 runs with the MMU off (flat physical addresses) and only reads it.
        let header = unsafe { core::slice::from_raw_parts(base as *const u8, header_len) };
        fdt_discovery::kernel_footprint(header, file_size)
    } else {
        file_size
    };
    let end = base.saturating_add(footprint);
    if let Some(rd) = &info.modules.ramdisk
        && rd.base < end
        && base < rd.base + rd.size
    {
        fatal!(
            "the host kernel at {base:#x} occupies {footprint:#x} bytes once running (its Image header's image_size, .bss included), up to {end:#x}, which overlaps the ramdisk at {:#x}: load the ramdisk at or after {end:#x}",
            rd.base
        );
    }
    if footprint > file_size {
        log::info!(
            "host kernel occupies {base:#x}..{end:#x} once running ({} KiB with .bss, image_size)",
            footprint >> 10
        );
    }
    base..end
}

/// The host's MMIO ranges for the record: `host_mmio`'s list and, with the GICR regions
/// emulated, every redistributor's SGI_base frame. From the heap (the plan sized it for
/// this many), kept for as long as the record.
fn host_mmio_pairs(
    list: &[MemRange],
    gicr: Option<&'static host_gicr::Layout>,
) -> &'static [(usize, usize)] {
    let sgi = || gicr.into_iter().flat_map(|l| l.sgi_frames());
    let count = list.len() + sgi().count();
    let mut pairs = alloc::vec::Vec::new();
    if pairs.try_reserve_exact(count).is_err() {
        fatal!("no heap for the host's {count} MMIO ranges");
    }
    let all = list.iter().copied().chain(sgi());
    pairs.extend(all.map(|r| (r.base as usize, (r.base + r.size) as usize)));
    alloc::vec::Vec::leak(pairs)
}

fn plan_memory(
    dtb: u64,
    info: &BootInfo,
    host_mmio: &[MemRange],
    gicr: Option<&'static host_gicr::Layout>,
    config: &stage2::Stage2Config,
    per_cpu: memory_plan::PerCpuNeeds,
) -> Result<MemoryPlan, memory_plan::PlanError> {
    // Every RAM bank and every range the loader uses goes into the plan: a range left out
    // could end up under EL2's carve-out. The lists hold everything discovery accepts (the
    // assertions below), and a full list is still a fatal error rather than a dropped range.
    const _: () = assert!(platform::fdt_discovery::MAX_MEMORY_BANKS <= memory_plan::MAX_RANGES);
    const _: () =
        assert!(3 + platform::fdt_discovery::MAX_RESERVED_RANGES <= memory_plan::MAX_RANGES);
    let mut ram = RangeList::new();
    for r in info.memory.as_slice() {
        if !ram.push(r.base..r.base + r.size) {
            fatal!(
                "more RAM banks than the memory plan holds ({})",
                memory_plan::MAX_RANGES
            );
        }
    }
    let mut busy = RangeList::new();
    let mut loader_uses = |range: core::ops::Range<u64>| {
        if !busy.push(range) {
            fatal!(
                "more reserved ranges, modules and DTB than the memory plan holds ({})",
                memory_plan::MAX_RANGES
            );
        }
    };
    loader_uses(dtb..dtb + info.dtb_size as u64);
    if let Some(k) = &info.modules.kernel {
        loader_uses(kernel_span(info, k));
    }
    if let Some(rd) = &info.modules.ramdisk {
        loader_uses(rd.base..rd.base + rd.size);
    }
    for r in info.reserved.as_slice() {
        loader_uses(r.base..r.base + r.size);
    }
    let image = layout::image();
    let mut mmio: [core::ops::Range<u64>; platform::fdt_discovery::MAX_MMIO_REGIONS] =
        core::array::from_fn(|_| 0..0);
    for (slot, r) in mmio.iter_mut().zip(host_mmio) {
        *slot = r.base..r.base + r.size;
    }
    let gicr_regions = gicr.map_or(&[][..], |l| l.regions());
    let mut fine_mmio: [core::ops::Range<u64>; 4] = core::array::from_fn(|_| 0..0);
    for (slot, r) in fine_mmio.iter_mut().zip(gicr_regions) {
        *slot = r.base..r.base + r.size;
    }
    memory_plan::plan(&PlanInput {
        ram: &ram,
        busy: &busy,
        image: image.start as u64..image.end as u64,
        mmio: &mmio[..host_mmio.len()],
        root_level: config.tree_root_level(),
        root_pages: config.root_pages_worst_case() as u64,
        dtb_size: info.dtb_size as u64,
        smmu: info.smmu.is_some(),
        per_cpu,
        fine_mmio: &fine_mmio[..gicr_regions.len()],
        host_mmio_ranges: (host_mmio.len() + gicr.map_or(0, |l| l.count())) as u64,
    })
}

/// Up to 64 `(start, end)` pairs, as the record wants its ranges.
struct Pairs {
    items: [(usize, usize); 64],
    len: usize,
}

impl Pairs {
    fn as_slice(&self) -> &[(usize, usize)] {
        &self.items[..self.len]
    }
}

fn to_pairs(ranges: impl Iterator<Item = core::ops::Range<u64>>) -> Pairs {
    let mut p = Pairs {
        items: [(0, 0); 64],
        len: 0,
    };
    for r in ranges {
        if p.len == p.items.len() {
            fatal!(
                "more than {} ranges for the ownership record",
                p.items.len()
            );
        }
        p.items[p.len] = (r.start as usize, r.end as usize);
        p.len += 1;
    }
    p
}

/// Writes the host's DTB (modules removed, bootargs and initrd set, carve-outs reserved
/// with `no-map`) into the host-owned window the plan chose, cleaned to the point of
/// coherency since the host reads it with its MMU off.
fn write_host_dtb(
    blob: &[u8],
    info: &BootInfo,
    plan: &MemoryPlan,
    bootargs: Option<&str>,
    dma: &Decision,
) -> u64 {
    let carveouts = [
        (plan.image.start, plan.image.end - plan.image.start),
        (plan.dynamic.start, plan.dynamic.end - plan.dynamic.start),
    ];
    let edits = HostDtbEdits {
        carveouts: &carveouts,
        bootargs,
        initrd: info.modules.ramdisk.map(|r| (r.base, r.base + r.size)), // (start, end)
        withhold_dma: dma.withhold.then_some(unconfined_dma::POLICY),
    };
    // SAFETY: the plan chose this window in host RAM that nothing else uses; EL2 has it
    // mapped read-write. The host has not started yet.
    let out = unsafe {
        core::slice::from_raw_parts_mut(plan.host_dtb.start as *mut u8, len(&plan.host_dtb))
    };
    match host_dtb::write_host_dtb(blob, &edits, out) {
        Ok(size) => {
            cache::clean_to_poc(plan.host_dtb.start as usize, size);
            log::info!(
                "host DTB at {:#x} ({size} bytes): modules {}removed, /reserved-memory no-map for {:#x}..{:#x} and {:#x}..{:#x}",
                plan.host_dtb.start,
                if dma.withhold {
                    "and unconfined DMA masters "
                } else {
                    ""
                },
                plan.image.start,
                plan.image.end,
                plan.dynamic.start,
                plan.dynamic.end
            );
            plan.host_dtb.start
        }
        Err(e) => fatal!("host DTB: {e}"),
    }
}
