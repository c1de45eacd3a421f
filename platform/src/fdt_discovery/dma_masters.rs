//! The DMA masters EL2 cannot confine: devices that can write any physical address the host
//! names, with no IOMMU under EL2's control between them and memory.
//!
//! The host programs every device it can reach. A device with its own DMA engine can
//! therefore write a guest's private page, the ownership record or EL2's image, whatever the
//! host stage-2 says, unless an IOMMU that EL2 (not the host) programs sits in its path. Such
//! a device must not be handed to the host ([`unconfined_dma_masters`] lists them; EL2 leaves
//! their registers out of the host stage-2 and `host_dtb` drops their nodes), or, when the
//! boot option hands them over anyway, protected VMs are refused.
//!
//! The rules, checked in this order on every device node (the same nodes `mmio` maps; a
//! node's `status` does not matter, since its registers are mapped either way):
//! 1. an IOMMU (`#iommu-cells`) whose compatible is one EL2 drives belongs to EL2's IOMMU
//!    driver: not listed here. Any other IOMMU is listed: it writes its own queues and
//!    tables to memory the host would name.
//! 2. `qemu,fw-cfg-mmio`: fw_cfg's DMA interface writes the selected item, or zeros for an
//!    invalid one, at any address (QEMU docs/specs/fw_cfg.txt, "DMA interface").
//! 3. `virtio,mmio`: every virtio transport DMAs its virtqueues and buffers.
//! 4. `arm,gic-v3-its`: the ITS writes its command queue reads, device, collection and
//!    interrupt tables at the addresses in GITS_CBASER/GITS_BASER<n> (GICv3 spec 12.19).
//! 5. a PCI host bridge (`device_type = "pci"`): its devices are bus masters; confined only
//!    if an `iommu-map` (or `iommus`) sends every entry to an IOMMU EL2 drives.
//! 6. any other node with `iommus`: confined only if every IOMMU named is one EL2 drives.
//! 7. a DMA controller (`#dma-cells`): it copies between any addresses it is given. Its
//!    clients (`dmas`) are not masters themselves; `host_dtb` removes their `dmas`.
//! 8. `dma-coherent`: the binding says the device does DMA (coherently).
//! 9. a compatible in [`KNOWN_DMA_MASTERS`]: common bus masters that are usually not
//!    coherent and so carry none of the properties above.
//!
//! This is a conservative rule for boards, not a proof: a bus master that the DTB describes
//! with none of these marks is missed. Such a board needs its DTB marked (`dma-coherent`
//! or an `iommus` entry) or the list extended; docs/security.md says so.

use fdt::node::FdtNode;

use super::MAX_MMIO_REGIONS;
use super::reg::{bad_reg, regs};
use super::{DiscoveryError, NodeName};
use crate::fdt_check;
use crate::fdt_tree::{
    self, Chain, Walk, address_cells, base_name, has_device_type, is_compatible, ranges_windows,
    read_cells, size_cells, translate,
};
use crate::fixed_list::{FixedList, ListFull, MemRange};

/// Most unconfined DMA masters listed (QEMU virt has 35: fw_cfg, 32 virtio-mmio
/// transports, the ITS, the PCIe host bridge).
pub const MAX_DMA_MASTERS: usize = 48;
/// Most distinct (page-aligned, merged) register ranges per master (a PCIe host bridge has
/// its configuration space and three windows).
pub const MAX_DMA_MASTER_REGIONS: usize = 6;

/// Common bus masters whose bindings need no DMA property (non-coherent ones on boards).
pub const KNOWN_DMA_MASTERS: &[&str] = &[
    "generic-xhci",
    "generic-ehci",
    "generic-ohci",
    "generic-ahci",
    "snps,dwc2",
    "snps,dwc3",
    "snps,dwmac",
    "cdns,gem",
    "cdns,macb",
    "arasan,sdhci-8.9a",
    "arasan,sdhci-5.1",
    "snps,dwcmshc-sdhci",
    "arm,pl330",
    "arm,pl080",
    "arm,mali-midgard",
    "arm,mali-bifrost",
    "arm,mali-valhall-jm",
    "xlnx,zynqmp-dma-1.0",
    "xlnx,zynqmp-dpdma",
];

const NOT_DEVICES: &[&str] = &["chosen", "cpus", "aliases", "reserved-memory"];

/// Which IOMMUs EL2 programs itself; a device behind one of them is confined.
#[derive(Clone, Copy, Debug, Default)]
pub struct DmaPolicy<'a> {
    /// Compatibles of the IOMMUs EL2 drives (empty: none, so nothing is confined).
    pub el2_iommus: &'a [&'a str],
}

/// Why a device is an unconfined DMA master (the rule of the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DmaReason {
    /// An IOMMU EL2 does not drive (rule 1).
    IommuNotDrivenByEl2,
    /// fw_cfg's DMA interface (rule 2).
    FwCfgDma,
    /// A virtio-mmio transport (rule 3).
    VirtioMmio,
    /// The GICv3 ITS and its memory tables (rule 4).
    GicIts,
    /// A PCI host bridge without an `iommu-map` to an IOMMU EL2 drives (rule 5).
    PciHostNotBehindEl2Iommu,
    /// `iommus` names an IOMMU EL2 does not drive (rule 6).
    BehindIommuNotDrivenByEl2,
    /// A DMA controller (rule 7).
    DmaController,
    /// `dma-coherent` (rule 8).
    #[default]
    DmaCoherent,
    /// A known bus master (rule 9).
    KnownDmaMaster,
}

impl DmaReason {
    /// A few words for the boot log.
    pub fn describe(self) -> &'static str {
        match self {
            Self::IommuNotDrivenByEl2 => "an IOMMU EL2 does not drive",
            Self::FwCfgDma => "fw_cfg DMA interface",
            Self::VirtioMmio => "virtio-mmio transport",
            Self::GicIts => "GICv3 ITS tables",
            Self::PciHostNotBehindEl2Iommu => "PCI host bridge not behind an IOMMU EL2 drives",
            Self::BehindIommuNotDrivenByEl2 => "behind an IOMMU EL2 does not drive",
            Self::DmaController => "DMA controller",
            Self::DmaCoherent => "dma-coherent device",
            Self::KnownDmaMaster => "known bus master",
        }
    }
}

/// One unconfined DMA master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaMaster {
    /// Full node path (cut with "..." past 48 bytes).
    pub path: NodeName,
    /// The first `compatible` string, or empty.
    pub compatible: NodeName,
    pub reason: DmaReason,
    /// Registers of the node and its whole subtree (and a PCI host bridge's windows), CPU
    /// addresses, page-aligned outward, sorted and merged.
    pub regs: FixedList<MemRange, MAX_DMA_MASTER_REGIONS>,
}

impl Default for DmaMaster {
    fn default() -> Self {
        Self {
            path: NodeName::new(""),
            compatible: NodeName::new(""),
            reason: DmaReason::default(),
            regs: FixedList::new(),
        }
    }
}

/// The unconfined DMA masters of a board, in DTB order.
pub type DmaMasters = FixedList<DmaMaster, MAX_DMA_MASTERS>;

/// What [`classify`] says about one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not a device, or a bus whose children are not memory-mapped: neither it nor its
    /// subtree is looked at.
    NotADevice,
    /// Not an unconfined master as far as the DTB tells; its children are looked at.
    Confined,
    /// An unconfined DMA master; its whole subtree goes with it.
    Unconfined(DmaReason),
}

/// Applies the rules to `node`, whose parent is `parent` (`None` for the root) at `depth`
/// (root 0).
pub(crate) fn classify(
    fdt: &fdt::Fdt<'_>,
    node: FdtNode<'_, '_>,
    parent: Option<FdtNode<'_, '_>>,
    depth: usize,
    policy: &DmaPolicy<'_>,
) -> Verdict {
    let Some(parent) = parent else {
        return Verdict::Confined;
    };
    if (depth == 1 && NOT_DEVICES.contains(&base_name(node.name)))
        || has_device_type(node, "memory")
        || address_cells(parent) > 2
        || size_cells(parent) == 0
    {
        return Verdict::NotADevice;
    }
    let driven = |iommu: FdtNode<'_, '_>| policy.el2_iommus.iter().any(|c| is_compatible(iommu, c));
    let reason = if node.property("#iommu-cells").is_some() {
        if driven(node) {
            return Verdict::NotADevice;
        }
        DmaReason::IommuNotDrivenByEl2
    } else if is_compatible(node, "qemu,fw-cfg-mmio") {
        DmaReason::FwCfgDma
    } else if is_compatible(node, "virtio,mmio") {
        DmaReason::VirtioMmio
    } else if is_compatible(node, "arm,gic-v3-its") {
        DmaReason::GicIts
    } else if has_device_type(node, "pci") {
        if behind_driven_iommus(fdt, node, &driven) {
            return Verdict::Confined;
        }
        DmaReason::PciHostNotBehindEl2Iommu
    } else if node.property("iommus").is_some() {
        if behind_driven_iommus(fdt, node, &driven) {
            return Verdict::Confined;
        }
        DmaReason::BehindIommuNotDrivenByEl2
    } else if node.property("#dma-cells").is_some() {
        DmaReason::DmaController
    } else if node.property("dma-coherent").is_some() {
        DmaReason::DmaCoherent
    } else if KNOWN_DMA_MASTERS.iter().any(|c| is_compatible(node, c)) {
        DmaReason::KnownDmaMaster
    } else {
        return Verdict::Confined;
    };
    Verdict::Unconfined(reason)
}

/// True if `node` has an `iommu-map` or `iommus` and every IOMMU they name is driven by
/// EL2. Malformed or dangling references count as not driven.
fn behind_driven_iommus(
    fdt: &fdt::Fdt<'_>,
    node: FdtNode<'_, '_>,
    driven: &dyn Fn(FdtNode<'_, '_>) -> bool,
) -> bool {
    let mut any = false;
    // iommu-map: (rid-base, iommu phandle, iommu-base of #iommu-cells, length) tuples
    // (Linux Documentation/devicetree/bindings/pci/pci-iommu.txt).
    if let Some(map) = node.property("iommu-map") {
        let ok = for_each_reference(fdt, map.value, 1, Some("#iommu-cells"), 1, &mut |iommu| {
            any = true;
            driven(iommu)
        });
        if !ok {
            return false;
        }
    }
    // iommus: (phandle, #iommu-cells specifier) entries.
    if let Some(iommus) = node.property("iommus") {
        let ok = for_each_reference(
            fdt,
            iommus.value,
            0,
            Some("#iommu-cells"),
            0,
            &mut |iommu| {
                any = true;
                driven(iommu)
            },
        );
        if !ok {
            return false;
        }
    }
    any
}

/// Walks `value` as entries of `before` cells, a phandle, as many cells as the target's
/// `cells` property says (none if `None` or absent) and `after` cells; calls `f` on each
/// target. False if `f` says so, a phandle dangles or the value does not end on an entry
/// boundary.
pub(crate) fn for_each_reference(
    fdt: &fdt::Fdt<'_>,
    value: &[u8],
    before: usize,
    cells: Option<&str>,
    after: usize,
    f: &mut dyn FnMut(FdtNode<'_, '_>) -> bool,
) -> bool {
    let total = value.len() / 4;
    if !value.len().is_multiple_of(4) {
        return false;
    }
    let mut at = 0;
    while at < total {
        let Some(phandle) = value
            .get((at + before) * 4..)
            .and_then(|v| read_cells(v, 1))
        else {
            return false;
        };
        let Some(target) = fdt.find_phandle(phandle as u32) else {
            return false;
        };
        let specifier = cells
            .and_then(|name| target.property(name))
            .and_then(|p| read_cells(p.value, 1))
            .unwrap_or(0) as usize;
        if specifier > 4 || !f(target) {
            return false;
        }
        at += before + 1 + specifier + after;
    }
    at == total
}

/// The unconfined DMA masters of the board in `dtb` under `policy`.
///
/// Errors: the blob is not a valid FDT; a malformed `reg`/`ranges`; more than
/// [`MAX_DMA_MASTERS`] masters or more than [`MAX_DMA_MASTER_REGIONS`] ranges for one.
pub fn unconfined_dma_masters(
    dtb: &[u8],
    policy: &DmaPolicy<'_>,
) -> Result<DmaMasters, DiscoveryError> {
    let checked = fdt_check::check(dtb)?;
    let fdt = checked.parse()?;
    let mut masters = DmaMasters::new();
    // The master whose subtree the walk is in, and that master's depth.
    let mut inside: Option<usize> = None;
    fdt_tree::walk::<DiscoveryError>(&fdt, &mut |node, chain| {
        let depth = chain.depth();
        if inside.is_some_and(|d| depth <= d) {
            inside = None;
        }
        if inside.is_some() {
            add_node_regs(&mut masters, node, chain)?;
            return Ok(Walk::Descend);
        }
        match classify(&fdt, node, chain.parent(), depth, policy) {
            Verdict::NotADevice => Ok(Walk::SkipChildren),
            Verdict::Confined => Ok(Walk::Descend),
            Verdict::Unconfined(reason) => {
                let master = DmaMaster {
                    path: node_path(chain, node.name),
                    // Not `Compatible::first`, which panics on a string without a NUL.
                    compatible: NodeName::new(
                        node.compatible().and_then(|c| c.all().next()).unwrap_or(""),
                    ),
                    reason,
                    regs: FixedList::new(),
                };
                masters
                    .push(master)
                    .map_err(|_| DiscoveryError::TooManyDmaMasters {
                        max: MAX_DMA_MASTERS,
                    })?;
                add_node_regs(&mut masters, node, chain)?;
                inside = Some(depth);
                // A PCI bus's children are not memory-mapped: its windows were added.
                Ok(if has_device_type(node, "pci") {
                    Walk::SkipChildren
                } else {
                    Walk::Descend
                })
            }
        }
    })?;
    Ok(masters)
}

/// Adds `node`'s registers (and, for a PCI host bridge or a bus whose devices are not
/// described, its `ranges` windows, as `mmio` maps them) to the last master.
fn add_node_regs(
    masters: &mut DmaMasters,
    node: FdtNode<'_, '_>,
    chain: &Chain<'_, '_>,
) -> Result<(), DiscoveryError> {
    let Some(parent) = chain.parent() else {
        return Ok(());
    };
    if address_cells(parent) > 2 || size_cells(parent) == 0 {
        return Ok(());
    }
    let index = masters.as_slice().len().saturating_sub(1);
    let mut found: FixedList<MemRange, MAX_DMA_MASTER_REGIONS> = masters
        .as_slice()
        .get(index)
        .map(|m| m.regs)
        .unwrap_or_default();
    let mut add = |range: MemRange| -> Result<(), DiscoveryError> {
        if range.size == 0 {
            return Ok(());
        }
        let aligned = range
            .page_aligned()
            .ok_or(bad_reg(node.name, crate::fdt_tree::CellError::Overflow))?;
        found
            .insert_merged(aligned)
            .map_err(|_| DiscoveryError::TooManyDmaMasterRegions {
                node: NodeName::new(node.name),
                max: MAX_DMA_MASTER_REGIONS,
            })
    };
    for reg in regs(node, chain)? {
        if let Some(range) = reg? {
            add(range)?;
        }
    }
    let described = node.children().any(|child| child.property("reg").is_some());
    if has_device_type(node, "pci") || !described {
        let windows = ranges_windows(node, parent).map_err(|e| bad_reg(node.name, e))?;
        for window in windows.into_iter().flatten() {
            let window = window.map_err(|e| bad_reg(node.name, e))?;
            let translated =
                translate(window.parent, chain.as_slice()).map_err(|e| bad_reg(node.name, e))?;
            if let Some(range) = translated {
                add(range)?;
            }
        }
    }
    if let Some(master) = masters.as_mut_slice().get_mut(index) {
        master.regs = found;
    }
    Ok(())
}

/// `/a/b/name` from the chain of ancestors, cut to what [`NodeName`] holds.
fn node_path(chain: &Chain<'_, '_>, name: &str) -> NodeName {
    let mut buf = PathBuf::default();
    for ancestor in chain.as_slice().iter().skip(1) {
        buf.push("/");
        buf.push(ancestor.name);
    }
    buf.push("/");
    buf.push(name);
    NodeName::new(buf.as_str())
}

/// A path under construction; bytes past its capacity are dropped (NodeName then marks the
/// cut, because the result is longer than it holds).
struct PathBuf {
    bytes: [u8; 64],
    len: usize,
}

impl Default for PathBuf {
    fn default() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl PathBuf {
    fn push(&mut self, s: &str) {
        for &b in s.as_bytes() {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn as_str(&self) -> &str {
        let mut len = self.len;
        // Node names are ASCII by the devicetree specification; cut at a boundary anyway.
        loop {
            if let Ok(s) = core::str::from_utf8(&self.bytes[..len]) {
                return s;
            }
            len -= 1;
        }
    }
}

/// True if `dtb`'s `/chosen` has the boot option that hands unconfined DMA masters to the
/// host ([`UNCONFINED_DMA_OPTION`]). An unreadable blob counts as not set.
pub fn unconfined_dma_requested(dtb: &[u8]) -> bool {
    let Ok(checked) = fdt_check::check(dtb) else {
        return false;
    };
    let Ok(fdt) = checked.parse() else {
        return false;
    };
    fdt_tree::find_path(&fdt, "/chosen")
        .is_some_and(|(chosen, _)| chosen.property(UNCONFINED_DMA_OPTION).is_some())
}

/// The `/chosen` property (any value, usually empty) that hands the unconfined DMA masters
/// to the host; protected VMs are then refused.
pub const UNCONFINED_DMA_OPTION: &str = "el2,unconfined-dma";

/// The device MMIO the host stage-2 maps: `mmio` (the DTB's, from `discover`) without the
/// registers of `withheld` and of the GIC redistributor regions `gicr_regions`, plus the
/// redistributors' `sgi_frames` (EL2 emulates the rest of each redistributor). Sorted and
/// merged. `Err` if a range split needs more entries than the list holds.
pub fn host_mmio(
    mmio: &[MemRange],
    withheld: &[DmaMaster],
    gicr_regions: &[MemRange],
    sgi_frames: impl Iterator<Item = MemRange>,
) -> Result<FixedList<MemRange, MAX_MMIO_REGIONS>, ListFull> {
    let mut out = FixedList::<MemRange, MAX_MMIO_REGIONS>::new();
    for r in mmio {
        out.insert_merged(*r)?;
    }
    for r in withheld.iter().flat_map(|m| m.regs.as_slice()) {
        out.remove(*r)?;
    }
    for r in gicr_regions {
        if let Some(aligned) = r.page_aligned() {
            out.remove(aligned)?;
        }
    }
    for frame in sgi_frames {
        out.insert_merged(frame)?;
    }
    Ok(out)
}
