//! Tree walking, cell decoding and address translation over a blob that passed
//! [`crate::fdt_check`].
//!
//! `fdt` 0.1.5 nodes do not know their parents, and its own path lookup falls back to
//! `/aliases` recursively (an alias naming itself recurses without end), so this module walks
//! the tree from the root itself and carries the chain of ancestors that address translation
//! through `ranges` needs.

use fdt::node::FdtNode;

use crate::fdt_check::MAX_DEPTH;
use crate::fixed_list::MemRange;

/// The ancestors of a node, root first. Holds at most [`MAX_DEPTH`] nodes, which
/// `fdt_check` guarantees is enough.
#[derive(Clone, Copy)]
pub struct Chain<'b, 'a> {
    nodes: [FdtNode<'b, 'a>; MAX_DEPTH],
    len: usize,
}

impl<'b, 'a> Chain<'b, 'a> {
    fn new(root: FdtNode<'b, 'a>) -> Self {
        Self {
            nodes: [root; MAX_DEPTH],
            len: 0,
        }
    }

    pub fn as_slice(&self) -> &[FdtNode<'b, 'a>] {
        &self.nodes[..self.len]
    }

    /// The parent of the node this chain belongs to (`None` for the root).
    pub fn parent(&self) -> Option<FdtNode<'b, 'a>> {
        self.as_slice().last().copied()
    }

    /// Number of ancestors: 0 for the root, 1 for its children.
    pub fn depth(&self) -> usize {
        self.len
    }

    fn push(&mut self, node: FdtNode<'b, 'a>) {
        // Callers test `is_full` first (and `fdt_check` limits nesting to MAX_DEPTH); the
        // bounds-checked slot only keeps a forgotten test from becoming a panic.
        if let Some(slot) = self.nodes.get_mut(self.len) {
            *slot = node;
            self.len += 1;
        }
    }

    fn pop(&mut self) {
        self.len -= 1;
    }

    fn is_full(&self) -> bool {
        self.len == MAX_DEPTH
    }
}

/// What a visitor wants done with the children of the node it just saw.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Descend,
    SkipChildren,
}

/// Visits every node depth-first in blob order, with its ancestors.
pub fn walk<'b, 'a, E>(
    fdt: &'b fdt::Fdt<'a>,
    visit: &mut dyn FnMut(FdtNode<'b, 'a>, &Chain<'b, 'a>) -> Result<Walk, E>,
) -> Result<(), E> {
    let Some(root) = root(fdt) else { return Ok(()) };
    let mut chain = Chain::new(root);
    walk_from(root, &mut chain, visit)
}

fn walk_from<'b, 'a, E>(
    node: FdtNode<'b, 'a>,
    chain: &mut Chain<'b, 'a>,
    visit: &mut dyn FnMut(FdtNode<'b, 'a>, &Chain<'b, 'a>) -> Result<Walk, E>,
) -> Result<(), E> {
    if visit(node, chain)? == Walk::SkipChildren || chain.is_full() {
        return Ok(());
    }
    chain.push(node);
    for child in node.children() {
        walk_from(child, chain, visit)?;
    }
    chain.pop();
    Ok(())
}

/// The root node. `fdt_check` guarantees exactly one root with an empty name, which is what
/// `find_node("/")` matches before it would ever consult `/aliases`; `None` cannot happen for a
/// checked blob but is handled by callers anyway instead of panicking like `Fdt::root()`.
pub fn root<'b, 'a>(fdt: &'b fdt::Fdt<'a>) -> Option<FdtNode<'b, 'a>> {
    fdt.find_node("/")
}

/// Finds the node at an absolute path (`/a/b@1`). A component without a unit address matches
/// the first node with that base name, as in the devicetree specification (2.2.3). Returns the
/// node and its ancestors.
pub fn find_path<'b, 'a>(
    fdt: &'b fdt::Fdt<'a>,
    path: &str,
) -> Option<(FdtNode<'b, 'a>, Chain<'b, 'a>)> {
    let rest = path.strip_prefix('/')?;
    let root = root(fdt)?;
    let mut chain = Chain::new(root);
    let mut node = root;
    for component in rest.split('/').filter(|c| !c.is_empty()) {
        let child = node.children().find(|c| name_matches(c.name, component))?;
        if chain.is_full() {
            return None;
        }
        chain.push(node);
        node = child;
    }
    Some((node, chain))
}

fn name_matches(name: &str, component: &str) -> bool {
    name == component || (!component.contains('@') && base_name(name) == component)
}

/// The node name without its unit address.
pub fn base_name(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// A string property without its terminating NUL; `None` if absent or not UTF-8.
pub fn prop_str<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let value = node.property(name)?.value;
    let value = value.strip_suffix(&[0]).unwrap_or(value);
    core::str::from_utf8(value).ok()
}

/// True if the node's `compatible` list contains `wanted`.
pub fn is_compatible(node: FdtNode<'_, '_>, wanted: &str) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| s == wanted))
}

/// True if `device_type` equals `wanted`.
pub fn has_device_type(node: FdtNode<'_, '_>, wanted: &str) -> bool {
    prop_str(node, "device_type") == Some(wanted)
}

fn cells_prop(node: FdtNode<'_, '_>, name: &str, default: u32) -> u32 {
    node.property(name)
        .and_then(|p| p.value.get(..4))
        .map_or(default, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `#address-cells` of `node` (the number of cells in its children's addresses); 2 if absent,
/// as the devicetree specification says.
pub fn address_cells(node: FdtNode<'_, '_>) -> u32 {
    cells_prop(node, "#address-cells", 2)
}

/// `#size-cells` of `node`; 1 if absent, as the devicetree specification says.
pub fn size_cells(node: FdtNode<'_, '_>) -> u32 {
    cells_prop(node, "#size-cells", 1)
}

/// Reads a number of 0, 1 or 2 big-endian cells from the front of `bytes`.
pub fn read_cells(bytes: &[u8], cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => bytes
            .get(..4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))),
        2 => bytes
            .get(..8)
            .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        _ => None,
    }
}

/// Why a `reg` or `ranges` value could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellError {
    /// The value length is not a whole number of entries.
    Length,
    /// More than two cells for an address or size: not a CPU address.
    TooManyCells,
    /// `address + size` passes 2^64.
    Overflow,
    /// A range lies partly inside and partly outside a `ranges` window of a bus.
    StraddlesWindow,
    /// The address does not translate to a CPU physical address.
    NotCpuAddressable,
}

impl CellError {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Length => "value length is not a whole number of entries",
            Self::TooManyCells => "more than two cells per address or size",
            Self::Overflow => "address + size passes 2^64",
            Self::StraddlesWindow => "reg straddles the edge of a parent bus's ranges window",
            Self::NotCpuAddressable => {
                "reg is not a CPU address (no parent ranges window covers it)"
            }
        }
    }
}

/// Iterates over the `(address, size)` entries of a `reg`-style property with `address_cells`
/// + `size_cells` cells per entry.
pub fn entries(
    value: &[u8],
    address_cells: u32,
    size_cells: u32,
) -> Result<impl Iterator<Item = Result<MemRange, CellError>> + '_, CellError> {
    if address_cells > 2 || size_cells > 2 {
        return Err(CellError::TooManyCells);
    }
    let entry = ((address_cells + size_cells) * 4) as usize;
    if entry == 0 || !value.len().is_multiple_of(entry) {
        return Err(CellError::Length);
    }
    Ok(value.chunks_exact(entry).map(move |chunk| {
        let split = (address_cells * 4) as usize;
        let base = read_cells(chunk, address_cells).ok_or(CellError::Length)?;
        let size = read_cells(&chunk[split..], size_cells).ok_or(CellError::Length)?;
        MemRange::new(base, size).ok_or(CellError::Overflow)
    }))
}

/// One `ranges` entry: child-side base, parent-side base, size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub child_base: u64,
    pub parent: MemRange,
}

/// Decodes the `ranges` of `bus`, whose parent is `parent`; `Ok(None)` if it has none. For a
/// PCI bus (3 child address cells) the child base is the 64-bit PCI address without phys.hi.
pub fn ranges_windows<'v>(
    bus: FdtNode<'_, 'v>,
    parent: FdtNode<'_, '_>,
) -> Result<Option<impl Iterator<Item = Result<Window, CellError>> + 'v>, CellError> {
    let Some(ranges) = bus.property("ranges") else {
        return Ok(None);
    };
    let child_cells = address_cells(bus);
    let parent_cells = address_cells(parent);
    let size_cells = size_cells(bus);
    if parent_cells > 2 || size_cells > 2 || child_cells > 3 {
        return Err(CellError::TooManyCells);
    }
    let entry = ((child_cells + parent_cells + size_cells) * 4) as usize;
    if entry == 0 || !ranges.value.len().is_multiple_of(entry) {
        return Err(CellError::Length);
    }
    Ok(Some(ranges.value.chunks_exact(entry).map(move |chunk| {
        let child_len = (child_cells * 4) as usize;
        let parent_len = (parent_cells * 4) as usize;
        // A 3-cell child address is a PCI address (phys.hi, phys.mid, phys.lo): its 64-bit
        // offset is the last two cells.
        let child_base = match child_cells {
            3 => read_cells(&chunk[4..], 2),
            n => read_cells(chunk, n),
        }
        .ok_or(CellError::Length)?;
        let parent_base = read_cells(&chunk[child_len..], parent_cells).ok_or(CellError::Length)?;
        let size =
            read_cells(&chunk[child_len + parent_len..], size_cells).ok_or(CellError::Length)?;
        let parent = MemRange::new(parent_base, size).ok_or(CellError::Overflow)?;
        child_base.checked_add(size).ok_or(CellError::Overflow)?;
        Ok(Window { child_base, parent })
    })))
}

/// Translates `range`, expressed in the child address space of `chain`'s last node, into a CPU
/// physical address by walking up through each bus's `ranges` (devicetree specification 2.3.8).
///
/// `Ok(None)`: not CPU-addressable (a bus on the way has no `ranges`, uses PCI or other
/// non-linear addresses, or no window covers the range). Errors: malformed `ranges`
/// ([`CellError::Length`], [`CellError::Overflow`]) or [`CellError::StraddlesWindow`].
pub fn translate(
    range: MemRange,
    chain: &[FdtNode<'_, '_>],
) -> Result<Option<MemRange>, CellError> {
    let mut current = range;
    for level in (1..chain.len()).rev() {
        let (bus, parent) = (chain[level], chain[level - 1]);
        if address_cells(bus) > 2 {
            return Ok(None);
        }
        let windows = match ranges_windows(bus, parent) {
            Ok(Some(windows)) => windows,
            Ok(None) => return Ok(None),
            Err(CellError::TooManyCells) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut empty = true;
        let mut mapped = None;
        for window in windows {
            let window = window?;
            empty = false;
            let child = MemRange {
                base: window.child_base,
                size: window.parent.size,
            };
            if current.base >= child.base && current.end() <= child.end() {
                mapped = Some(MemRange {
                    base: window.parent.base + (current.base - child.base),
                    size: current.size,
                });
                break;
            }
            if current.overlaps(&child) {
                return Err(CellError::StraddlesWindow);
            }
        }
        match (empty, mapped) {
            // An empty `ranges` means the child and parent address spaces are identical.
            (true, _) => {}
            (false, Some(m)) => current = m,
            (false, None) => return Ok(None),
        }
    }
    Ok(Some(current))
}
