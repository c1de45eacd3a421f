//! The SMMUv3 (`compatible = "arm,smmu-v3"`) that EL2 takes for itself, and the stream IDs the
//! host's DMA masters behind it use.
//!
//! Stream IDs come from the masters' side of the binding (Linux `pci-iommu.txt` and
//! `iommu.txt`): a PCI host bridge's `iommu-map = <rid-base &smmu sid-base length>...` (with
//! an optional `iommu-map-mask` applied to the requester ID first) and a platform device's
//! `iommus = <&smmu sid>`. Only entries that name this SMMU's phandle count. EL2 needs the
//! largest stream ID to size its stream table; it gives every stream the same (host) context.

use super::reg::{bad_reg, first_reg};
use super::{DiscoveryError, NodeName};
use crate::fdt_tree::{self, CellError, Walk, is_compatible, read_cells};
use crate::fixed_list::MemRange;

/// The compatible string of the SMMUv3 binding.
pub const SMMU_V3_COMPATIBLE: &str = "arm,smmu-v3";

/// Properties of DMA masters that point at an IOMMU, or at an MSI controller through it; the
/// host DTB drops them on a master whose `iommu-map`/`iommus` names an SMMU EL2 owns, so the
/// host does DMA with physical addresses (EL2's identity map). The MSI properties go too: a
/// device's MSI write is a DMA write that the SMMU translates, and EL2's table maps RAM
/// only, never an MSI doorbell; such devices use legacy interrupts (INTx).
pub const IOMMU_REFERENCES: &[&str] = &[
    "iommu-map",
    "iommu-map-mask",
    "iommus",
    "msi-map",
    "msi-map-mask",
    "msi-parent",
];

/// An SMMUv3 and the streams of the masters behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smmu {
    /// The register frame (page 0 and page 1: 128 KiB on QEMU `virt`).
    pub regs: MemRange,
    /// The node's `phandle`, if masters can refer to it.
    pub phandle: Option<u32>,
    /// One past the largest stream ID any master's `iommu-map` or `iommus` gives; 0 when no
    /// master names this SMMU.
    pub stream_id_end: u32,
    /// The number of masters' properties that name this SMMU (`iommu-map` or `iommus`).
    pub masters: u32,
}

/// The SMMUv3 of the tree, if there is one.
///
/// Errors: more than one SMMUv3 (EL2 drives one); an SMMUv3 without a CPU-addressable `reg`;
/// an `iommu-map` whose length is not a whole number of 4-cell entries, or whose range wraps.
pub fn find(fdt: &fdt::Fdt<'_>) -> Result<Option<Smmu>, DiscoveryError> {
    let mut found: Option<(Smmu, NodeName)> = None;
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, chain| {
        if !is_compatible(node, SMMU_V3_COMPATIBLE) {
            return Ok(Walk::Descend);
        }
        if let Some((_, first)) = found {
            return Err(DiscoveryError::TooManySmmus {
                first,
                second: NodeName::new(node.name),
            });
        }
        let regs =
            first_reg(node, chain)?.ok_or(bad_reg(node.name, CellError::NotCpuAddressable))?;
        let phandle = node
            .property("phandle")
            .or_else(|| node.property("linux,phandle"))
            .and_then(|p| read_cells(p.value, 1))
            .map(|v| v as u32);
        let smmu = Smmu {
            regs,
            phandle,
            stream_id_end: 0,
            masters: 0,
        };
        found = Some((smmu, NodeName::new(node.name)));
        Ok(Walk::SkipChildren)
    })?;
    let Some((mut smmu, _)) = found else {
        return Ok(None);
    };
    let Some(phandle) = smmu.phandle else {
        return Ok(Some(smmu));
    };
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, _| {
        if let Some(map) = node.property("iommu-map") {
            let bad = || bad_reg(node.name, CellError::Length);
            if map.value.is_empty() || !map.value.len().is_multiple_of(16) {
                return Err(bad());
            }
            let mut named = false;
            for entry in map.value.chunks_exact(16) {
                let cell = |i: usize| read_cells(&entry[i * 4..i * 4 + 4], 1).unwrap_or(0) as u32;
                let (sid_base, length) = (cell(2), cell(3));
                if cell(1) != phandle || length == 0 {
                    continue;
                }
                let end = sid_base
                    .checked_add(length)
                    .ok_or(bad_reg(node.name, CellError::Overflow))?;
                smmu.stream_id_end = smmu.stream_id_end.max(end);
                named = true;
            }
            smmu.masters += u32::from(named);
        }
        if let Some(iommus) = node.property("iommus")
            && iommus.value.len() >= 8
            && read_cells(&iommus.value[..4], 1) == Some(u64::from(phandle))
        {
            let sid = read_cells(&iommus.value[4..8], 1).unwrap_or(0) as u32;
            smmu.stream_id_end = smmu.stream_id_end.max(sid.saturating_add(1));
            smmu.masters += 1;
        }
        Ok(Walk::Descend)
    })?;
    Ok(Some(smmu))
}
