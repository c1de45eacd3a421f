//! What this host knows about QEMU virt (`-M virt,gic-version=3`, QEMU 7.2) and reads from
//! the DTB the payload gave it.

use el1_rt::region::Region;

/// fw_cfg's registers (QEMU docs/specs/fw_cfg.txt): data, selector, DMA address.
pub const FW_CFG: usize = 0x0902_0000;
/// The first virtio-mmio transport (32 of 0x200 bytes each follow).
pub const VIRTIO_MMIO: usize = 0x0a00_0000;
/// The GICv3 ITS (GITS_CTLR at offset 0).
pub const ITS: usize = 0x0808_0000;
/// CPU 0's redistributor (RD_base; SGI_base follows at +64 KiB).
pub const GICR_CPU0: usize = 0x080a_0000;

/// Mapped at stage 1 besides the DTB's devices: the payload takes these out of the DTB.
pub const PROBED: [Region; 3] = [
    Region {
        base: FW_CFG,
        size: 0x1000,
    },
    Region {
        base: VIRTIO_MMIO,
        size: 0x4000,
    },
    Region {
        base: ITS,
        size: 0x2_0000,
    },
];

/// The `/chosen` property of the payload's boot option (kept in the host's DTB).
pub const UNCONFINED_DMA_OPTION: &str = "el2,unconfined-dma";

pub fn with_fdt<T>(dtb: usize, f: impl FnOnce(&fdt::Fdt) -> T) -> Option<T> {
    // SAFETY: the payload passed `dtb` as the host's DTB (boot protocol); it lies in RAM
    // that this image maps and nothing writes while the host runs. `from_ptr` reads the
    // header's totalsize and stays inside it.
    let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.ok()?;
    Some(f(&fdt))
}

/// True if the host's DTB has `/chosen/el2,unconfined-dma`.
pub fn unconfined_dma_option(dtb: usize) -> bool {
    with_fdt(dtb, |fdt| {
        fdt.find_node("/chosen")
            .is_some_and(|c| c.property(UNCONFINED_DMA_OPTION).is_some())
    })
    .unwrap_or(false)
}

/// True if some node of the host's DTB is compatible with `compatible`.
pub fn dtb_has_compatible(dtb: usize, compatible: &str) -> bool {
    with_fdt(dtb, |fdt| fdt.find_compatible(&[compatible]).is_some()).unwrap_or(false)
}

/// True if some node of the host's DTB has a property `name` (e.g. `msi-map`).
pub fn dtb_has_property(dtb: usize, name: &str) -> bool {
    with_fdt(dtb, |fdt| {
        fdt.all_nodes().any(|n| n.property(name).is_some())
    })
    .unwrap_or(false)
}

/// True if the host's DTB has a PCI host bridge that no `iommu-map` puts behind an IOMMU
/// (with EL2 driving QEMU's SMMUv3, the bridge behind it stays in the DTB).
pub fn dtb_has_unconfined_pci_bridge(dtb: usize) -> bool {
    with_fdt(dtb, |fdt| {
        fdt.all_nodes().any(|n| {
            n.property("device_type")
                .is_some_and(|p| p.value.strip_suffix(&[0]) == Some(b"pci"))
                && n.property("iommu-map").is_none()
        })
    })
    .unwrap_or(false)
}
