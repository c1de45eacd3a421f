//! What this host knows about QEMU's xlnx-zcu102 (Xilinx ZynqMP, QEMU 7.2
//! `hw/arm/xlnx-zynqmp.c`): where its general-purpose DMA engines sit. Both are in the
//! board's DTB as `xlnx,zynqmp-dma-1.0` nodes behind the SoC's SMMU-500, which EL2 does not
//! drive, so the payload withholds them unless the boot option hands them over.

use el1_rt::region::Region;

/// The board's DTB (`zynqmp-zcu102-rev1.0.dtb`) says so at its root.
const ROOT_COMPATIBLE: &str = "xlnx,zynqmp";
/// The compatible of each ZDMA channel node.
pub const ZDMA_COMPATIBLE: &str = "xlnx,zynqmp-dma-1.0";
/// The SoC's SMMU (an MMU-500), which EL2 does not drive.
pub const SMMU_500_COMPATIBLE: &str = "arm,mmu-500";
/// The full-power domain's DMA (GDMA): eight channels, one 64 KiB frame each.
pub const GDMA: usize = 0xfd50_0000;
/// The low-power domain's DMA (ADMA): eight channels, one 64 KiB frame each.
pub const ADMA: usize = 0xffa8_0000;
pub const CHANNELS_PER_ENGINE: usize = 8;
pub const CHANNEL_STRIDE: usize = 0x1_0000;

/// Mapped at stage 1 besides the DTB's devices: the payload takes the channels out of the
/// host's DTB (and el1-rt maps only the root node's devices anyway: these sit under /axi).
pub const PROBED: [Region; 2] = [
    Region {
        base: GDMA,
        size: CHANNELS_PER_ENGINE * CHANNEL_STRIDE,
    },
    Region {
        base: ADMA,
        size: CHANNELS_PER_ENGINE * CHANNEL_STRIDE,
    },
];

/// Every channel's register frame, GDMA's then ADMA's.
pub fn channels() -> impl Iterator<Item = usize> {
    [GDMA, ADMA]
        .into_iter()
        .flat_map(|engine| (0..CHANNELS_PER_ENGINE).map(move |i| engine + i * CHANNEL_STRIDE))
}

/// True if the DTB at `dtb` is a ZynqMP board's. Runs before the MMU is on: the `fdt`
/// crate reads byte by byte and the target has strict alignment, so the Device-memory
/// accesses of a CPU with its MMU off are fine (el1-rt parses the DTB the same way).
pub fn is_zynqmp(dtb: usize) -> bool {
    crate::virt::with_fdt(dtb, |fdt| {
        // Not `fdt.root()`, which panics on a DTB without a root `compatible`.
        fdt.find_node("/")
            .and_then(|root| root.compatible())
            .is_some_and(|c| c.all().any(|c| c == ROOT_COMPATIBLE))
    })
    .unwrap_or(false)
}
