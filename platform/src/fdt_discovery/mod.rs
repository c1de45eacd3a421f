//! Discovery of the board from the device tree the loader hands to EL2.
//!
//! [`discover`] reads everything the payload needs before it touches the hardware: RAM banks,
//! the console UART, the GIC, the CPUs' MPIDRs, the PSCI conduit, the MMIO the host may use,
//! reserved ranges and the host images passed as Xen-style multiboot modules.
//! [`dma_masters`] lists the devices that can DMA where no IOMMU under EL2's control stops
//! them. It allocates
//! nothing (results live in fixed-capacity lists that report overflow as errors) and never
//! panics on a malformed blob: the blob is validated by [`crate::fdt_check`] before the `fdt`
//! crate parses it.

mod cpus;
pub mod dma_masters;
mod error;
mod gic;
mod memory;
mod mmio;
mod modules;
mod reg;
mod smmu;
mod stdout;

pub use cpus::Cpus;
pub use error::{DiscoveryError, NodeName};
pub use gic::{Gic, GicVersion, find as find_gic};
pub use modules::{
    HostModule, HostModules, IMAGE_HEADER_LEN, IMAGE_MAGIC, IMAGE_MAGIC_OFFSET, IMAGE_SIZE_OFFSET,
    MODULE_COMPATIBLES, image_size, is_module, kernel_footprint,
};
pub use smmu::{IOMMU_REFERENCES, SMMU_V3_COMPATIBLE, Smmu};
pub use stdout::{ConsoleUart, UartKind, console as stdout_console};

use crate::fdt_check;
use crate::fixed_list::{FixedList, MemRange};
use crate::psci::Conduit;

/// Most RAM banks `BootInfo` holds.
pub const MAX_MEMORY_BANKS: usize = 16;
/// Most CPUs discovery accepts: a sanity bound, not a table size (the payload sizes its
/// per-CPU state from the DTB's count at boot). 4096 is the largest `NR_CPUS` Linux's arm64
/// build allows (arch/arm64/Kconfig: `range 2 4096`); a DTB with more CPU nodes is refused
/// with [`DiscoveryError::TooManyCpus`], never cut short.
pub const MAX_CPUS: usize = 4096;
/// Most distinct (merged, page-aligned) MMIO regions `BootInfo` holds.
pub const MAX_MMIO_REGIONS: usize = 64;
/// Most reserved ranges (`/memreserve/` plus `/reserved-memory` children) `BootInfo` holds.
pub const MAX_RESERVED_RANGES: usize = 32;
/// Most GICv3 redistributor regions `BootInfo` holds.
pub const MAX_GICR_REGIONS: usize = 4;

/// PSCI version claimed by the PSCI node's `compatible`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciVersion {
    /// `arm,psci-0.2`
    V0_2,
    /// `arm,psci-1.0`
    V1_0,
}

/// How to reach PSCI firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci {
    pub conduit: Conduit,
    pub version: PsciVersion,
}

/// What the payload learns from the device tree.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo<'a> {
    /// RAM banks from every `device_type = "memory"` node, sorted, non-overlapping.
    pub memory: FixedList<MemRange, MAX_MEMORY_BANKS>,
    /// The UART named by `/chosen/stdout-path` (registers as given by its `reg`), or `None`
    /// when there is no stdout-path or the payload has no driver for the device it names.
    pub console: Option<ConsoleUart>,
    pub gic: Gic,
    /// The `/cpus/cpu@*` nodes: their count and MPIDRs (the `reg` values), in DTB order.
    pub cpus: Cpus<'a>,
    pub psci: Psci,
    /// Device MMIO to identity-map for the host: page-aligned outward, sorted, merged; none of
    /// it overlaps RAM. The SMMUv3's registers are not in it (EL2 owns the SMMU).
    pub mmio: FixedList<MemRange, MAX_MMIO_REGIONS>,
    /// `/memreserve/` entries and statically placed `/reserved-memory` children, sorted.
    pub reserved: FixedList<MemRange, MAX_RESERVED_RANGES>,
    /// The SMMUv3 EL2 takes for itself, if the board has one.
    pub smmu: Option<Smmu>,
    /// Host kernel and ramdisk from `/chosen/module@*` nodes.
    pub modules: HostModules<'a>,
    /// The blob's own size (header `totalsize`).
    pub dtb_size: usize,
}

/// Reads the board description from `dtb`.
///
/// Errors (see [`DiscoveryError`]): the blob is not a valid FDT; no memory, CPU, PSCI or GIC
/// node; more banks/CPUs/MMIO regions/reserved ranges than fit; overlapping RAM banks; a
/// device overlapping RAM; a malformed
/// `reg`/`ranges`; two kernel (or ramdisk) modules or a module without a usable `reg`.
/// A missing host kernel module is *not* an error: `modules.kernel` is `None`.
pub fn discover(dtb: &[u8]) -> Result<BootInfo<'_>, DiscoveryError> {
    let checked = fdt_check::check(dtb)?;
    let fdt = checked.parse()?;
    let memory = memory::banks(&fdt)?;
    Ok(BootInfo {
        console: stdout::console(&fdt),
        gic: gic::find(&fdt)?,
        cpus: cpus::cpus(&fdt)?,
        psci: cpus::psci(&fdt)?,
        mmio: mmio::regions(&fdt, &memory)?,
        reserved: memory::reserved(&fdt)?,
        smmu: smmu::find(&fdt)?,
        modules: modules::find(&fdt)?,
        dtb_size: checked.bytes.len(),
        memory,
    })
}

/// Just the console, for reporting why [`discover`] failed: `None` if the blob is not a
/// valid FDT or names no UART the payload can drive. Looks at nothing else, so a DTB that
/// is broken elsewhere still gets its error printed.
pub fn find_console(dtb: &[u8]) -> Option<ConsoleUart> {
    let checked = fdt_check::check(dtb).ok()?;
    let fdt = checked.parse().ok()?;
    stdout::console(&fdt)
}
