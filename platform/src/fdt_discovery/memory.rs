//! RAM banks and reserved ranges.

use super::reg::bad_reg;
use super::reg::regs;
use super::{DiscoveryError, MAX_MEMORY_BANKS, MAX_RESERVED_RANGES};
use crate::fdt_tree::{
    self, CellError, Walk, address_cells, base_name, entries, has_device_type, prop_str, size_cells,
};
use crate::fixed_list::{FixedList, MemRange};

/// Every non-empty `reg` entry of every available `device_type = "memory"` node, sorted.
/// Disabled memory nodes are skipped, as Linux does (QEMU's secure-only RAM is one).
pub fn banks(fdt: &fdt::Fdt<'_>) -> Result<FixedList<MemRange, MAX_MEMORY_BANKS>, DiscoveryError> {
    let mut banks = FixedList::new();
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, chain| {
        if !has_device_type(node, "memory") {
            return Ok(Walk::Descend);
        }
        if prop_str(node, "status") == Some("disabled") {
            return Ok(Walk::SkipChildren);
        }
        for bank in regs(node, chain)? {
            if let Some(bank) = bank?.filter(|b| b.size != 0) {
                banks
                    .push(bank)
                    .map_err(|_| DiscoveryError::TooManyMemoryBanks {
                        max: MAX_MEMORY_BANKS,
                    })?;
            }
        }
        Ok(Walk::SkipChildren)
    })?;
    if banks.is_empty() {
        return Err(DiscoveryError::NoMemory);
    }
    banks.sort();
    if let Some(pair) = banks.windows(2).find(|pair| pair[0].overlaps(&pair[1])) {
        return Err(DiscoveryError::MemoryBanksOverlap {
            first: pair[0],
            second: pair[1],
        });
    }
    Ok(banks)
}

/// `/memreserve/` entries plus the `reg` of every `/reserved-memory` child that has one
/// (children with only `size`/`alloc-ranges` are placed by the OS and have no fixed range).
/// Sorted; zero-size entries are dropped.
pub fn reserved(
    fdt: &fdt::Fdt<'_>,
) -> Result<FixedList<MemRange, MAX_RESERVED_RANGES>, DiscoveryError> {
    let mut reserved = FixedList::new();
    let too_many = |_| DiscoveryError::TooManyReservedRanges {
        max: MAX_RESERVED_RANGES,
    };
    for entry in fdt.memory_reservations() {
        let (base, size) = (entry.address() as u64, entry.size() as u64);
        if size == 0 {
            continue;
        }
        let range =
            MemRange::new(base, size).ok_or(bad_reg("/memreserve/", CellError::Overflow))?;
        reserved.push(range).map_err(too_many)?;
    }
    fdt_tree::walk::<DiscoveryError>(fdt, &mut |node, chain| {
        match chain.depth() {
            0 => return Ok(Walk::Descend),
            1 if base_name(node.name) == "reserved-memory" => return Ok(Walk::Descend),
            1 => return Ok(Walk::SkipChildren),
            _ => {}
        }
        // `/reserved-memory` must have an empty `ranges` (its children use CPU addresses), so
        // the children's `reg` is read literally rather than translated.
        let Some(parent) = chain.parent() else {
            return Ok(Walk::SkipChildren);
        };
        let value = node.property("reg").map_or(&[][..], |p| p.value);
        let bad = |e| bad_reg(node.name, e);
        for range in entries(value, address_cells(parent), size_cells(parent)).map_err(bad)? {
            if let Some(range) = Some(range.map_err(bad)?).filter(|r| r.size != 0) {
                reserved.push(range).map_err(too_many)?;
            }
        }
        Ok(Walk::SkipChildren)
    })?;
    reserved.sort();
    Ok(reserved)
}
