//! The interrupt controller: version and register regions.

use super::reg::{bad_reg, regs};
use super::{DiscoveryError, MAX_GICR_REGIONS, NodeName};
use crate::fdt_tree::{self, CellError, Walk, is_compatible};
use crate::fixed_list::{FixedList, MemRange};

/// GIC architecture version, from the node's `compatible`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// `arm,cortex-a15-gic` or `arm,gic-400`.
    V2,
    /// `arm,gic-v3`.
    V3,
}

/// The GIC's register regions (CPU physical addresses), named as in the GIC architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    pub version: GicVersion,
    /// GICD.
    pub distributor: MemRange,
    /// GICv3 only: the GICR regions (`#redistributor-regions` of them, default 1).
    pub redistributors: FixedList<MemRange, MAX_GICR_REGIONS>,
    /// GICC: required for GICv2, optional (legacy interface) for GICv3.
    pub cpu_interface: Option<MemRange>,
    /// GICH, the virtual interface control registers, if described.
    pub hypervisor_interface: Option<MemRange>,
    /// GICV, the virtual CPU interface, if described.
    pub virtual_cpu_interface: Option<MemRange>,
}

impl Gic {
    /// The memory-mapped virtual interface the DTB lists (GICH, then GICV): a GICv2's, or
    /// a GICv3's legacy one. EL2 keeps both from the host: with GICH a host could make a
    /// guest take virtual interrupts (its list registers drive the CPU's virtual IRQ, which
    /// a guest running with HCR_EL2.IMO set takes), and the payload gives guests no virtual
    /// GIC. A GICv3's own controls are the ICH_*_EL2 system registers, out of EL1's reach.
    pub fn virtual_interface(&self) -> impl Iterator<Item = MemRange> {
        self.hypervisor_interface
            .into_iter()
            .chain(self.virtual_cpu_interface)
    }
}

const V3: &[&str] = &["arm,gic-v3"];
const V2: &[&str] = &["arm,cortex-a15-gic", "arm,gic-400"];

/// The first GICv3 or GICv2 node in the tree. Its `reg` is, per the Linux bindings
/// (arm,gic-v3.yaml, arm,gic.yaml): v3: GICD, GICR x `#redistributor-regions`, [GICC, GICH,
/// GICV]; v2: GICD, GICC, [GICH, GICV].
pub fn find(fdt: &fdt::Fdt<'_>) -> Result<Gic, DiscoveryError> {
    let mut result = None;
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, chain| {
        if result.is_some() {
            return Ok(Walk::SkipChildren);
        }
        let version = if V3.iter().any(|c| is_compatible(node, c)) {
            GicVersion::V3
        } else if V2.iter().any(|c| is_compatible(node, c)) {
            GicVersion::V2
        } else {
            return Ok(Walk::Descend);
        };
        let redistributor_regions = match version {
            GicVersion::V2 => 0,
            GicVersion::V3 => node
                .property("#redistributor-regions")
                .and_then(|p| crate::fdt_tree::read_cells(p.value, 1))
                .unwrap_or(1) as usize,
        };
        if redistributor_regions > MAX_GICR_REGIONS {
            return Err(DiscoveryError::TooManyRedistributorRegions {
                max: MAX_GICR_REGIONS,
            });
        }
        let missing = |region| DiscoveryError::GicMissingRegion {
            node: NodeName::new(node.name),
            region,
        };
        let mut regs = regs(node, chain)?
            .map(|r| r.and_then(|r| r.ok_or(bad_reg(node.name, CellError::NotCpuAddressable))));
        let distributor = regs
            .next()
            .transpose()?
            .ok_or(missing("distributor (GICD)"))?;
        let mut redistributors = FixedList::new();
        for _ in 0..redistributor_regions {
            let gicr = regs
                .next()
                .transpose()?
                .ok_or(missing("redistributor (GICR)"))?;
            // Capacity was checked against `#redistributor-regions` above.
            let _ = redistributors.push(gicr);
        }
        let cpu_interface = regs.next().transpose()?;
        if version == GicVersion::V2 && cpu_interface.is_none() {
            return Err(missing("CPU interface (GICC)"));
        }
        result = Some(Gic {
            version,
            distributor,
            redistributors,
            cpu_interface,
            hypervisor_interface: regs.next().transpose()?,
            virtual_cpu_interface: regs.next().transpose()?,
        });
        Ok(Walk::SkipChildren)
    })?;
    result.ok_or(DiscoveryError::NoGic)
}
