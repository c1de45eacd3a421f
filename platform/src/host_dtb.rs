//! The device tree handed to the host: the loader's tree with EL2's edits applied.
//!
//! Edits: the `/chosen` multiboot module nodes are removed (the host must not see, or reuse,
//! EL2's inputs); `/chosen/bootargs` is set from the kernel module's command line;
//! `linux,initrd-start`/`-end` are set for the ramdisk (stale ones removed when there is none);
//! and every EL2 carve-out becomes a `/reserved-memory/el2@<addr>` child with `no-map`, so the
//! host neither uses nor maps it. EL2 owns the SMMUv3: its `arm,smmu-v3` node is removed, and
//! so are the masters' `iommu-map`, `iommu-map-mask` and `iommus` properties that name it
//! (with their `msi-map`/`msi-parent`: EL2's DMA table maps no ITS doorbell), so the host
//! programs its DMA masters with physical addresses (EL2's tables identity-map what the host
//! may reach). With [`HostDtbEdits::withhold_dma`] every unconfined DMA master
//! (`fdt_discovery::dma_masters`) is removed with its subtree, and so is every reference to
//! one (`msi-parent`, `msi-map`/`msi-map-mask`, `dmas`/`dma-names`), so the host's OS neither
//! probes them nor routes MSIs to a withheld ITS. Every other node, property (raw bytes, including
//! `phandle`s), memory reservation and the header's `boot_cpuid_phys` is copied unchanged.
//!
//! Why `vm-fdt` writes the result: it is maintained by rust-vmm, builds `no_std` with `alloc`,
//! and only emits well-formed FDTs (it checks node and property names, nesting and the memory
//! reservation map). No maintained Rust crate edits an FDT in place (libfdt-style `setprop`
//! with block shuffling), so the tree is read with `fdt` and written anew. Property names
//! longer than the specification's 31 characters, which `vm-fdt` refuses and real board
//! DTBs have, go through [`crate::fdt_long_names`]. The blob is checked
//! by [`crate::fdt_check`] first, so a malformed input is an error, not a panic.

use alloc::format;
use alloc::vec::Vec;
use core::fmt;

use fdt::node::FdtNode;
use vm_fdt::{FdtReserveEntry, FdtWriter};

use crate::fdt_check::{self, FdtFormatError};
use crate::fdt_discovery::NodeName;
use crate::fdt_discovery::dma_masters::{DmaPolicy, Verdict, classify, for_each_reference};
use crate::fdt_discovery::{IOMMU_REFERENCES, SMMU_V3_COMPATIBLE, is_module};
use crate::fdt_long_names::{LongNameError, LongNames};
use crate::fdt_tree::{self, Walk, address_cells, base_name, is_compatible, size_cells};

/// What to change in the host's copy of the device tree.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostDtbEdits<'e> {
    /// EL2's own memory as `(base, size)`: each becomes `/reserved-memory/el2@<base>` with
    /// `reg` and `no-map`. Sizes must be non-zero and ranges must not overlap.
    pub carveouts: &'e [(u64, u64)],
    /// New `/chosen/bootargs` (replacing any existing value). `None` leaves `/chosen/bootargs`
    /// as the loader wrote it.
    pub bootargs: Option<&'e str>,
    /// The ramdisk as `(start, end)`, `end` exclusive, written as 64-bit
    /// `linux,initrd-start`/`linux,initrd-end`. `None` removes those properties.
    pub initrd: Option<(u64, u64)>,
    /// `Some`: remove the DMA masters EL2 cannot confine under this policy (and every
    /// reference to them). `None`: keep every device (the boot option that hands them to
    /// the host).
    pub withhold_dma: Option<DmaPolicy<'e>>,
}

/// Why the host DTB could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum HostDtbError {
    /// The input blob is not a valid FDT.
    Format(FdtFormatError),
    /// `vm-fdt` refused to write `node` (for example a node or property name outside the
    /// devicetree specification's character set, or overlapping memory reservations).
    Writer {
        node: NodeName,
        error: vm_fdt::Error,
    },
    /// A property name longer than 31 characters could not be carried over.
    LongName(LongNameError),
    /// `out` is smaller than the rewritten blob; nothing usable was written.
    BufferTooSmall { needed: usize, available: usize },
    /// A carve-out has size zero or wraps past 2^64.
    BadCarveout { base: u64, size: u64 },
    /// Two carve-outs overlap.
    OverlappingCarveouts {
        first: (u64, u64),
        second: (u64, u64),
    },
    /// The initrd range ends before it starts.
    BadInitrd { start: u64, end: u64 },
    /// A carve-out does not fit the `#address-cells`/`#size-cells` of `/reserved-memory`.
    CarveoutDoesNotFit {
        base: u64,
        size: u64,
        address_cells: u32,
        size_cells: u32,
    },
    /// `/reserved-memory` already has a child with the name a carve-out would get.
    DuplicateCarveoutNode { node: NodeName },
}

impl From<FdtFormatError> for HostDtbError {
    fn from(e: FdtFormatError) -> Self {
        Self::Format(e)
    }
}

impl fmt::Display for HostDtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(e) => write!(f, "{e}"),
            Self::Writer { node, error } => write!(f, "cannot write host DTB node {node}: {error}"),
            Self::BufferTooSmall { needed, available } => {
                write!(f, "host DTB needs {needed} bytes, buffer holds {available}")
            }
            Self::LongName(error) => write!(f, "{error}"),
            Self::BadCarveout { base, size } => {
                write!(f, "carve-out at {base:#x} size {size:#x} is empty or wraps")
            }
            Self::OverlappingCarveouts { first, second } => write!(
                f,
                "carve-outs at {:#x} (size {:#x}) and {:#x} (size {:#x}) overlap",
                first.0, first.1, second.0, second.1
            ),
            Self::BadInitrd { start, end } => {
                write!(f, "initrd end {end:#x} is below its start {start:#x}")
            }
            Self::CarveoutDoesNotFit {
                base,
                size,
                address_cells,
                size_cells,
            } => write!(
                f,
                "carve-out at {base:#x} size {size:#x} does not fit /reserved-memory's \
                 #address-cells = {address_cells}, #size-cells = {size_cells}"
            ),
            Self::DuplicateCarveoutNode { node } => {
                write!(f, "/reserved-memory already has a node {node}")
            }
        }
    }
}

/// Writes `dtb` with `edits` applied into `out`; returns the number of bytes written (the new
/// blob's `totalsize`). The caller places `out` where the host expects its DTB (Linux wants
/// 8-byte alignment).
///
/// Errors: see [`HostDtbError`]; in particular `BufferTooSmall` when `out` cannot hold the
/// whole blob (it is never truncated).
pub fn write_host_dtb(
    dtb: &[u8],
    edits: &HostDtbEdits<'_>,
    out: &mut [u8],
) -> Result<usize, HostDtbError> {
    let checked = fdt_check::check(dtb)?;
    let fdt = checked.parse()?;
    check_edits(edits)?;
    let root = fdt_tree::root(&fdt).ok_or(FdtFormatError::BadStructure {
        offset: 0,
        reason: "no root node",
    })?;

    // vm-fdt rejects zero-size reservations; one reserves nothing, so it is dropped.
    let reservations = fdt
        .memory_reservations()
        .filter(|r| r.size() != 0)
        .map(|r| FdtReserveEntry::new(r.address() as u64, r.size() as u64))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| writer_error("/memreserve/", error))?;
    let mut writer = FdtWriter::new_with_mem_reserv(&reservations)
        .map_err(|error| writer_error("/memreserve/", error))?;
    writer.set_boot_cpuid_phys(checked.boot_cpuid_phys);

    let withheld = match &edits.withhold_dma {
        Some(policy) => withheld_phandles(&fdt, policy),
        None => Vec::new(),
    };
    let mut smmu_phandles = Vec::new();
    let walked = fdt_tree::walk::<core::convert::Infallible>(&fdt, &mut |node, _| {
        if is_compatible(node, SMMU_V3_COMPATIBLE)
            && let Some(p) = node.property("phandle")
            && let Some(v) = fdt_tree::read_cells(p.value, 1)
        {
            smmu_phandles.push(v as u32);
        }
        Ok(Walk::Descend)
    });
    if let Err(never) = walked {
        match never {}
    }
    let mut copier = Copier {
        writer,
        edits,
        fdt: &fdt,
        withheld,
        smmu_phandles,
        long_names: LongNames::default(),
    };
    copier.copy_node(root, 0, true)?;
    let blob = copier
        .writer
        .finish()
        .map_err(|error| writer_error("/", error))?;
    let blob = copier
        .long_names
        .restore(blob)
        .map_err(HostDtbError::LongName)?;

    let available = out.len();
    let dest = out
        .get_mut(..blob.len())
        .ok_or(HostDtbError::BufferTooSmall {
            needed: blob.len(),
            available,
        })?;
    dest.copy_from_slice(&blob);
    Ok(blob.len())
}

fn check_edits(edits: &HostDtbEdits<'_>) -> Result<(), HostDtbError> {
    let mut carveouts = edits.carveouts.to_vec();
    for &(base, size) in &carveouts {
        if size == 0 || base.checked_add(size).is_none() {
            return Err(HostDtbError::BadCarveout { base, size });
        }
    }
    carveouts.sort_unstable();
    if let Some(pair) = carveouts.windows(2).find(|p| p[0].0 + p[0].1 > p[1].0) {
        return Err(HostDtbError::OverlappingCarveouts {
            first: pair[0],
            second: pair[1],
        });
    }
    if let Some((start, end)) = edits.initrd
        && end < start
    {
        return Err(HostDtbError::BadInitrd { start, end });
    }
    Ok(())
}

fn writer_error(node: &str, error: vm_fdt::Error) -> HostDtbError {
    HostDtbError::Writer {
        node: NodeName::new(node),
        error,
    }
}

fn carveout_name(base: u64) -> alloc::string::String {
    format!("el2@{base:x}")
}

/// Where a node sits, for the nodes that get edited.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Chosen,
    ReservedMemory,
    Other,
}

/// The phandles of every withheld node and of every node below one.
fn withheld_phandles(fdt: &fdt::Fdt<'_>, policy: &DmaPolicy<'_>) -> Vec<u32> {
    let mut phandles = Vec::new();
    let mut inside: Option<usize> = None;
    let _ = fdt_tree::walk::<()>(fdt, &mut |node, chain| {
        let depth = chain.depth();
        if inside.is_some_and(|d| depth <= d) {
            inside = None;
        }
        if inside.is_none() {
            match classify(fdt, node, chain.parent(), depth, policy) {
                Verdict::NotADevice => return Ok(fdt_tree::Walk::SkipChildren),
                Verdict::Confined => return Ok(fdt_tree::Walk::Descend),
                Verdict::Unconfined(_) => inside = Some(depth),
            }
        }
        if let Some(p) = node
            .property("phandle")
            .and_then(|p| fdt_tree::read_cells(p.value, 1))
        {
            phandles.push(p as u32);
        }
        Ok(fdt_tree::Walk::Descend)
    });
    phandles
}

/// A property that names other nodes and goes when one it names is withheld.
struct Reference {
    name: &'static str,
    /// Cells before each phandle.
    before: usize,
    /// The target's property that gives its specifier size (none: no specifier).
    cells: Option<&'static str>,
    /// Cells after the specifier.
    after: usize,
    /// Properties that go with it.
    companions: &'static [&'static str],
}

const REFERENCES: &[Reference] = &[
    Reference {
        name: "msi-parent",
        before: 0,
        cells: Some("#msi-cells"),
        after: 0,
        companions: &[],
    },
    // (rid-base, msi-controller, msi-base, length): Linux pci-msi.txt.
    Reference {
        name: "msi-map",
        before: 1,
        cells: None,
        after: 2,
        companions: &["msi-map-mask"],
    },
    Reference {
        name: "dmas",
        before: 0,
        cells: Some("#dma-cells"),
        after: 0,
        companions: &["dma-names"],
    },
];

struct Copier<'e, 'f, 'a> {
    writer: FdtWriter,
    edits: &'e HostDtbEdits<'e>,
    fdt: &'f fdt::Fdt<'a>,
    /// Phandles of withheld nodes (empty unless `edits.withhold_dma`).
    withheld: Vec<u32>,
    /// Phandles of the SMMUv3 nodes EL2 takes (left out of the host's tree).
    smmu_phandles: Vec<u32>,
    /// Property names beyond the specification's length, written under placeholders.
    long_names: LongNames<'a>,
}

impl<'a> Copier<'_, '_, 'a> {
    /// Copies one property of the input as it is, whatever the length of its name.
    fn copy_property(&mut self, name: &'a str, value: &[u8]) -> Result<(), HostDtbError> {
        let written = self
            .long_names
            .name_to_write(name)
            .map_err(HostDtbError::LongName)?;
        self.writer
            .property(&written, value)
            .map_err(|error| writer_error(name, error))
    }

    /// Whether `node` has an IOMMU reference (`iommu-map` or `iommus`) naming an SMMU EL2
    /// owns; then all of its IOMMU references go.
    fn names_owned_smmu(&self, node: FdtNode<'_, '_>) -> bool {
        let phandle_at = |value: &[u8], offset: usize| {
            value
                .get(offset..offset + 4)
                .and_then(|b| fdt_tree::read_cells(b, 1))
                .is_some_and(|v| self.smmu_phandles.contains(&(v as u32)))
        };
        let map = node
            .property("iommu-map")
            .is_some_and(|p| (0..p.value.len() / 16).any(|i| phandle_at(p.value, i * 16 + 4)));
        let iommus = node
            .property("iommus")
            .is_some_and(|p| phandle_at(p.value, 0));
        map || iommus
    }

    /// The properties of `node` that refer to a withheld node, with their companions.
    fn dropped_properties(&self, node: FdtNode<'_, '_>) -> Vec<&'static str> {
        let mut dropped = Vec::new();
        if self.withheld.is_empty() {
            return dropped;
        }
        for r in REFERENCES {
            let Some(prop) = node.property(r.name) else {
                continue;
            };
            let mut hits = false;
            // A malformed or dangling reference also goes: the host cannot use it either.
            let well_formed = for_each_reference(
                self.fdt,
                prop.value,
                r.before,
                r.cells,
                r.after,
                &mut |target| {
                    let phandle = target
                        .property("phandle")
                        .and_then(|p| fdt_tree::read_cells(p.value, 1));
                    hits |= phandle.is_some_and(|p| self.withheld.contains(&(p as u32)));
                    true
                },
            );
            if hits || !well_formed {
                dropped.push(r.name);
                dropped.extend_from_slice(r.companions);
            }
        }
        dropped
    }

    /// `classify_children`: false below a node the rules say is not a device (as
    /// `dma_masters` skips such subtrees, e.g. `/reserved-memory`'s regions), so the host
    /// DTB drops exactly the masters `unconfined_dma_masters` lists.
    fn copy_node(
        &mut self,
        node: FdtNode<'_, 'a>,
        depth: usize,
        classify_children: bool,
    ) -> Result<(), HostDtbError> {
        let role = match (depth, base_name(node.name)) {
            (0, _) => Role::Root,
            (1, "chosen") => Role::Chosen,
            (1, "reserved-memory") => Role::ReservedMemory,
            _ => Role::Other,
        };
        let name = node.name;
        let wr = |error| writer_error(name, error);
        let handle = self.writer.begin_node(name).map_err(wr)?;

        if role == Role::Chosen {
            self.copy_chosen_properties(node)?;
        } else {
            let mut dropped = self.dropped_properties(node);
            if self.names_owned_smmu(node) {
                dropped.extend_from_slice(IOMMU_REFERENCES);
            }
            for prop in node.properties() {
                if !dropped.contains(&prop.name) {
                    self.copy_property(prop.name, prop.value)?;
                }
            }
        }

        let (mut saw_chosen, mut saw_reserved) = (false, false);
        for child in node.children() {
            if role == Role::Chosen && is_module(child) {
                continue;
            }
            if is_compatible(child, SMMU_V3_COMPATIBLE) {
                continue;
            }
            let verdict = match &self.edits.withhold_dma {
                Some(policy) if classify_children => {
                    classify(self.fdt, child, Some(node), depth + 1, policy)
                }
                _ => Verdict::NotADevice,
            };
            if let Verdict::Unconfined(_) = verdict {
                continue;
            }
            if role == Role::ReservedMemory
                && self
                    .edits
                    .carveouts
                    .iter()
                    .any(|&(base, _)| carveout_name(base) == child.name)
            {
                return Err(HostDtbError::DuplicateCarveoutNode {
                    node: NodeName::new(child.name),
                });
            }
            if role == Role::Root {
                saw_chosen |= base_name(child.name) == "chosen";
                saw_reserved |= base_name(child.name) == "reserved-memory";
            }
            self.copy_node(child, depth + 1, verdict == Verdict::Confined)?;
        }

        match role {
            Role::ReservedMemory => {
                self.write_carveouts(address_cells(node), size_cells(node))?;
            }
            Role::Root => {
                let edits = self.edits;
                if !saw_chosen && (edits.bootargs.is_some() || edits.initrd.is_some()) {
                    let chosen = self.writer.begin_node("chosen").map_err(wr)?;
                    self.write_chosen_edits(false, false, false).map_err(wr)?;
                    self.writer.end_node(chosen).map_err(wr)?;
                }
                if !saw_reserved && !edits.carveouts.is_empty() {
                    self.write_reserved_memory(node)?;
                }
            }
            Role::Chosen | Role::Other => {}
        }
        self.writer.end_node(handle).map_err(wr)
    }

    /// Copies `/chosen`'s properties, replacing `bootargs` and the initrd pair in place and
    /// dropping stale initrd properties, then adds the edited ones that were not there.
    fn copy_chosen_properties(&mut self, chosen: FdtNode<'_, 'a>) -> Result<(), HostDtbError> {
        let wr = |error| writer_error("chosen", error);
        let edits = self.edits;
        let (mut bootargs, mut start, mut end) = (false, false, false);
        for prop in chosen.properties() {
            match (prop.name, edits.bootargs, edits.initrd) {
                ("bootargs", Some(args), _) => {
                    self.writer.property_string("bootargs", args).map_err(wr)?;
                    bootargs = true;
                }
                ("linux,initrd-start", _, Some((s, _))) => {
                    self.writer
                        .property_u64("linux,initrd-start", s)
                        .map_err(wr)?;
                    start = true;
                }
                ("linux,initrd-end", _, Some((_, e))) => {
                    self.writer
                        .property_u64("linux,initrd-end", e)
                        .map_err(wr)?;
                    end = true;
                }
                ("linux,initrd-start" | "linux,initrd-end", _, None) => {}
                _ => self.copy_property(prop.name, prop.value)?,
            }
        }
        self.write_chosen_edits(bootargs, start, end).map_err(wr)
    }

    fn write_chosen_edits(
        &mut self,
        bootargs: bool,
        start: bool,
        end: bool,
    ) -> Result<(), vm_fdt::Error> {
        if let (false, Some(args)) = (bootargs, self.edits.bootargs) {
            self.writer.property_string("bootargs", args)?;
        }
        if let Some((s, e)) = self.edits.initrd {
            if !start {
                self.writer.property_u64("linux,initrd-start", s)?;
            }
            if !end {
                self.writer.property_u64("linux,initrd-end", e)?;
            }
        }
        Ok(())
    }

    /// Adds a `/reserved-memory` node using the root's cell sizes, as Linux requires them to
    /// match (2/2 on every 64-bit board, QEMU virt included), with an empty `ranges`.
    fn write_reserved_memory(&mut self, root: FdtNode<'_, '_>) -> Result<(), HostDtbError> {
        let (ac, sc) = (address_cells(root), size_cells(root));
        let wr = |error| writer_error("reserved-memory", error);
        let node = self.writer.begin_node("reserved-memory").map_err(wr)?;
        self.writer.property_u32("#address-cells", ac).map_err(wr)?;
        self.writer.property_u32("#size-cells", sc).map_err(wr)?;
        self.writer.property_null("ranges").map_err(wr)?;
        self.write_carveouts(ac, sc)?;
        self.writer.end_node(node).map_err(wr)
    }

    fn write_carveouts(&mut self, ac: u32, sc: u32) -> Result<(), HostDtbError> {
        for &(base, size) in self.edits.carveouts {
            let mut reg = Vec::with_capacity(16);
            let fits = push_cells(&mut reg, base, ac) && push_cells(&mut reg, size, sc);
            if !fits {
                return Err(HostDtbError::CarveoutDoesNotFit {
                    base,
                    size,
                    address_cells: ac,
                    size_cells: sc,
                });
            }
            let name = carveout_name(base);
            let wr = |error| writer_error(&name, error);
            let node = self.writer.begin_node(&name).map_err(wr)?;
            self.writer.property("reg", &reg).map_err(wr)?;
            self.writer.property_null("no-map").map_err(wr)?;
            self.writer.end_node(node).map_err(wr)?;
        }
        Ok(())
    }
}

/// Appends `value` as `cells` big-endian cells; false if it does not fit (or `cells` is not
/// 1 or 2).
fn push_cells(out: &mut Vec<u8>, value: u64, cells: u32) -> bool {
    match cells {
        1 => match u32::try_from(value) {
            Ok(v) => {
                out.extend_from_slice(&v.to_be_bytes());
                true
            }
            Err(_) => false,
        },
        2 => {
            out.extend_from_slice(&value.to_be_bytes());
            true
        }
        _ => false,
    }
}
