//! Decoding a node's `reg` into CPU physical ranges.

use core::slice::ChunksExact;

use fdt::node::FdtNode;

use super::{DiscoveryError, NodeName};
use crate::fdt_tree::{CellError, Chain, address_cells, read_cells, size_cells, translate};
use crate::fixed_list::MemRange;

/// The `reg` entries of one node, each translated through its ancestors' `ranges`.
/// Items: `Ok(Some(range))` for a CPU-addressable entry, `Ok(None)` for one that is not
/// (e.g. behind a bus without `ranges`), `Err` for malformed cells.
pub struct Regs<'c, 'b, 'a> {
    name: &'a str,
    chunks: ChunksExact<'a, u8>,
    address_cells: u32,
    size_cells: u32,
    chain: &'c [FdtNode<'b, 'a>],
}

/// Decodes `node`'s `reg` with the cell sizes of its parent (the last node of `chain`).
/// A node without `reg` yields nothing. Errors: more than two address or size cells, or a
/// value that is not a whole number of entries.
pub fn regs<'c, 'b, 'a>(
    node: FdtNode<'b, 'a>,
    chain: &'c Chain<'b, 'a>,
) -> Result<Regs<'c, 'b, 'a>, DiscoveryError> {
    let value = node.property("reg").map_or(&[][..], |p| p.value);
    let (ac, sc) = chain
        .parent()
        .map_or((2, 1), |p| (address_cells(p), size_cells(p)));
    let bad = |e: CellError| bad_reg(node.name, e);
    if !value.is_empty() {
        if ac > 2 || sc > 2 {
            return Err(bad(CellError::TooManyCells));
        }
        if ac + sc == 0 || !value.len().is_multiple_of((ac + sc) as usize * 4) {
            return Err(bad(CellError::Length));
        }
    }
    let entry = ((ac + sc).max(1) * 4) as usize;
    Ok(Regs {
        name: node.name,
        chunks: value.chunks_exact(entry),
        address_cells: ac,
        size_cells: sc,
        chain: chain.as_slice(),
    })
}

/// The first CPU-addressable `reg` entry of `node`, if any.
pub fn first_reg(
    node: FdtNode<'_, '_>,
    chain: &Chain<'_, '_>,
) -> Result<Option<MemRange>, DiscoveryError> {
    regs(node, chain)?.next().transpose().map(Option::flatten)
}

pub fn bad_reg(name: &str, e: CellError) -> DiscoveryError {
    DiscoveryError::BadReg {
        node: NodeName::new(name),
        reason: e.reason(),
    }
}

impl Iterator for Regs<'_, '_, '_> {
    type Item = Result<Option<MemRange>, DiscoveryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = self.chunks.next()?;
        let split = (self.address_cells * 4) as usize;
        let decoded = read_cells(chunk, self.address_cells)
            .zip(
                chunk
                    .get(split..)
                    .and_then(|s| read_cells(s, self.size_cells)),
            )
            .ok_or(CellError::Length)
            .and_then(|(base, size)| MemRange::new(base, size).ok_or(CellError::Overflow))
            .and_then(|range| translate(range, self.chain));
        Some(decoded.map_err(|e| bad_reg(self.name, e)))
    }
}
