//! The DMA masters EL2 cannot confine (`platform::fdt_discovery::dma_masters`), decided once
//! at boot: withheld from the host by default, or handed to it when the loader's DTB asks
//! for it with `/chosen/el2,unconfined-dma`, in which case protected VMs are off for the
//! whole boot (VM_CREATE answers DENIED, docs/abi.md 4.3) and the log names every device
//! that made it so. Never a silent hole.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use platform::fdt_discovery::DiscoveryError;
use platform::fdt_discovery::MAX_MMIO_REGIONS;
use platform::fdt_discovery::dma_masters::{self, DmaMasters, DmaPolicy, UNCONFINED_DMA_OPTION};
use platform::fixed_list::{FixedList, ListFull, MemRange};
use spin::Once;

/// Compatibles of the IOMMUs EL2 programs itself (`crate::smmu`): a device behind one of
/// them is confined; a device behind any other IOMMU counts as unconfined.
pub const EL2_IOMMUS: &[&str] = &[platform::fdt_discovery::SMMU_V3_COMPATIBLE];

pub const POLICY: DmaPolicy<'static> = DmaPolicy {
    el2_iommus: EL2_IOMMUS,
};

static PROTECTED_VMS_DISABLED: AtomicBool = AtomicBool::new(false);
static MASTERS: Once<DmaMasters> = Once::new();

/// True once anything at boot handed the host a way around EL2's checks.
pub fn protected_vms_disabled() -> bool {
    PROTECTED_VMS_DISABLED.load(Ordering::Relaxed)
}

/// Turns protected VMs off for this boot and says why (one line per cause).
pub fn disable_protected_vms(why: fmt::Arguments) {
    log::warn!("protected VMs disabled: {why}");
    PROTECTED_VMS_DISABLED.store(true, Ordering::Relaxed);
}

/// What the boot does with the unconfined DMA masters.
pub struct Decision {
    pub masters: &'static DmaMasters,
    /// False when the boot option hands them to the host.
    pub withhold: bool,
}

/// Classifies the loader's DTB and reads the boot option; logs the outcome.
///
/// Never inlined: the list is about 10 KiB while it is built, and the boot CPU's frame
/// (`boot::rust_primary_main`) must not keep that much for the rest of the boot.
#[inline(never)]
pub fn decide(dtb: &[u8]) -> Result<Decision, DiscoveryError> {
    let masters = dma_masters::unconfined_dma_masters(dtb, &POLICY)?;
    let masters = MASTERS.call_once(|| masters);
    let withhold = !dma_masters::unconfined_dma_requested(dtb);
    let list = masters.as_slice();
    if withhold {
        // Runs of alike devices (QEMU virt's 32 virtio-mmio transports) take one line.
        let mut rest = list;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|m| m.compatible == first.compatible && m.reason == first.reason)
                .count();
            let last = &rest[run - 1];
            if run == 1 {
                log::info!(
                    "withheld from the host: {} ({}, {})",
                    first.path,
                    first.compatible,
                    first.reason.describe()
                );
            } else {
                log::info!(
                    "withheld from the host: {} .. {} ({run} x {}, {})",
                    first.path,
                    last.path,
                    first.compatible,
                    first.reason.describe()
                );
            }
            rest = &rest[run..];
        }
        log::info!(
            "{} unconfined DMA masters withheld (not in the host stage-2 nor its DTB)",
            list.len()
        );
    } else {
        log::warn!(
            "boot option /chosen/{UNCONFINED_DMA_OPTION}: {} unconfined DMA masters handed to the host",
            list.len()
        );
        for m in list {
            disable_protected_vms(format_args!(
                "unconfined DMA master {} ({}, {})",
                m.path,
                m.compatible,
                m.reason.describe()
            ));
        }
        if list.is_empty() {
            log::info!("no unconfined DMA master on this board: protected VMs stay on");
        }
    }
    Ok(Decision { masters, withhold })
}

/// The MMIO the host stage-2 maps (`dma_masters::host_mmio`): the DTB's device ranges
/// without the withheld masters' registers and, of the GIC redistributor regions, only the
/// SGI_base frames. The ownership record takes every range this can return (its list is
/// borrowed storage sized at boot, `boot::host_mmio_pairs`).
pub fn host_mmio(
    mmio: &[MemRange],
    decision: &Decision,
    gicr_regions: &[MemRange],
    sgi_frames: impl Iterator<Item = MemRange>,
) -> Result<FixedList<MemRange, MAX_MMIO_REGIONS>, ListFull> {
    let withheld = if decision.withhold {
        decision.masters.as_slice()
    } else {
        &[]
    };
    dma_masters::host_mmio(mmio, withheld, gicr_regions, sgi_frames)
}
