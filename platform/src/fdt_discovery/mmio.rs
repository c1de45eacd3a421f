//! The device MMIO the host may touch, to be identity-mapped in its stage 2.
//!
//! Rules (the devicetree specification's address translation, plus what a hypervisor needs):
//! - every `reg` entry of every device node counts, translated to a CPU address through its
//!   ancestors' `ranges`; entries that do not translate (behind a bus without `ranges`) are
//!   not memory-mapped and are left out;
//! - not devices: `/chosen`, `/cpus`, `/aliases`, `/reserved-memory` and their subtrees, and
//!   `device_type = "memory"` nodes (RAM is handled by `memory`);
//! - children of buses with more than two address cells (PCI) or no size cells (I2C, SPI) are
//!   not memory-mapped themselves;
//! - an SMMUv3 (`arm,smmu-v3`) is left out: EL2 drives it, the host never maps it;
//! - a PCI host bridge (`device_type = "pci"`) contributes the parent side of every `ranges`
//!   window (I/O, 32-bit and 64-bit memory): device BARs are assigned inside them at run time;
//! - any other bus with non-empty `ranges` contributes its windows only when none of its
//!   children has a `reg`, i.e. when its devices are not described (QEMU virt's
//!   `platform-bus`, filled with dynamic sysbus devices at run time). A described bus (an SoC
//!   `simple-bus` whose window often spans RAM) contributes its children's `reg` instead.
//!
//! Every range is page-aligned outward, then merged with overlapping and adjacent ones. A
//! device whose aligned range overlaps a RAM bank is an error, never silently dropped: the
//! host would otherwise get RAM mapped as a device or lose the device.

use super::reg::{bad_reg, regs};
use super::{DiscoveryError, MAX_MMIO_REGIONS, NodeName};
use crate::fdt_tree::{
    self, CellError, Walk, address_cells, base_name, has_device_type, is_compatible,
    ranges_windows, size_cells, translate,
};
use crate::fixed_list::{FixedList, MemRange};

const NOT_DEVICES: &[&str] = &["chosen", "cpus", "aliases", "reserved-memory"];

pub fn regions(
    fdt: &fdt::Fdt<'_>,
    ram: &[MemRange],
) -> Result<FixedList<MemRange, MAX_MMIO_REGIONS>, DiscoveryError> {
    let mut mmio = FixedList::new();
    let mut add = |name: &str, range: MemRange| -> Result<(), DiscoveryError> {
        if range.size == 0 {
            return Ok(());
        }
        let aligned = range
            .page_aligned()
            .ok_or(bad_reg(name, CellError::Overflow))?;
        if let Some(bank) = ram.iter().find(|bank| bank.overlaps(&aligned)) {
            return Err(DiscoveryError::DeviceOverlapsRam {
                node: NodeName::new(name),
                device: aligned,
                bank: *bank,
            });
        }
        mmio.insert_merged(aligned)
            .map_err(|_| DiscoveryError::TooManyMmioRegions {
                max: MAX_MMIO_REGIONS,
            })
    };
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, chain| {
        let Some(parent) = chain.parent() else {
            return Ok(Walk::Descend);
        };
        if chain.depth() == 1 && NOT_DEVICES.contains(&base_name(node.name)) {
            return Ok(Walk::SkipChildren);
        }
        if has_device_type(node, "memory") || address_cells(parent) > 2 || size_cells(parent) == 0 {
            return Ok(Walk::SkipChildren);
        }
        // EL2 owns the SMMU: its registers never enter the host stage-2.
        if is_compatible(node, super::SMMU_V3_COMPATIBLE) {
            return Ok(Walk::SkipChildren);
        }
        for reg in regs(node, chain)? {
            if let Some(range) = reg? {
                add(node.name, range)?;
            }
        }
        let is_pci = has_device_type(node, "pci");
        let described = node.children().any(|child| child.property("reg").is_some());
        if is_pci || !described {
            let windows = ranges_windows(node, parent).map_err(|e| bad_reg(node.name, e))?;
            for window in windows.into_iter().flatten() {
                let window = window.map_err(|e| bad_reg(node.name, e))?;
                let translated = translate(window.parent, chain.as_slice())
                    .map_err(|e| bad_reg(node.name, e))?;
                if let Some(range) = translated {
                    add(node.name, range)?;
                }
            }
        }
        Ok(if is_pci {
            Walk::SkipChildren
        } else {
            Walk::Descend
        })
    })?;
    Ok(mmio)
}
