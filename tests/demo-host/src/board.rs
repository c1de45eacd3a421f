//! What the demo host learns from the DTB the payload gives it: console, RAM, device MMIO,
//! CPUs, PSCI conduit and the payload's carve-out.
//!
//! Parsing runs on the boot CPU with the MMU off, so it only reads the DTB and fills
//! fixed-size arrays: no allocation, no atomics.

use core::fmt;
use fdt::Fdt;
use fdt::node::FdtNode;

/// Most memory or device regions the demo host keeps track of.
pub const MAX_REGIONS: usize = 64;
/// Most CPUs the demo host brings up (the QEMU tests use 4).
pub const MAX_CPUS: usize = 8;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Region {
    pub base: usize,
    pub size: usize,
}

impl Region {
    /// The first address after the region, or `None` if that does not fit in `usize`.
    pub fn end(&self) -> Option<usize> {
        self.base.checked_add(self.size)
    }

    /// Whether `other` lies entirely inside this region.
    pub fn contains(&self, other: &Region) -> bool {
        match (self.end(), other.end()) {
            (Some(end), Some(other_end)) => self.base <= other.base && other_end <= end,
            _ => false,
        }
    }
}

/// A fixed-capacity list of regions.
#[derive(Clone, Copy, Debug)]
pub struct RegionList {
    items: [Region; MAX_REGIONS],
    len: usize,
}

impl RegionList {
    const fn new() -> Self {
        Self {
            items: [Region { base: 0, size: 0 }; MAX_REGIONS],
            len: 0,
        }
    }

    fn push(&mut self, region: Region, what: &'static str) -> Result<(), BoardError> {
        let slot = self
            .items
            .get_mut(self.len)
            .ok_or(BoardError::TooManyRegions(what))?;
        *slot = region;
        self.len += 1;
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.items[..self.len].iter()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// How PSCI is reached, from `/psci/method`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Conduit {
    Smc,
    Hvc,
}

impl fmt::Display for Conduit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Conduit::Smc => "smc",
            Conduit::Hvc => "hvc",
        })
    }
}

/// The CPUs listed under `/cpus`, in DTB order; a CPU's number is its index here.
#[derive(Clone, Copy, Debug)]
pub struct CpuList {
    mpidrs: [u64; MAX_CPUS],
    len: usize,
}

impl CpuList {
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.mpidrs[..self.len].iter().copied().enumerate()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// Everything the demo host takes from the DTB.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// The PL011 that `/chosen/stdout-path` names.
    pub uart: usize,
    /// RAM from the `memory` nodes.
    pub memory: RegionList,
    /// MMIO ranges (`reg`) of the devices directly under the root node.
    pub devices: RegionList,
    pub cpus: CpuList,
    /// `None` if there is no `/psci` node or its method is neither "smc" nor "hvc".
    pub psci: Option<Conduit>,
    /// The payload's carve-out: the regions of every `/reserved-memory/el2@...` node
    /// (empty if there is none).
    pub carve_outs: RegionList,
}

/// Why the DTB could not be used.
#[derive(Clone, Copy, Debug)]
pub enum BoardError {
    NoUart,
    NoMemory,
    NoCpus,
    TooManyCpus,
    TooManyRegions(&'static str),
    BadReg(&'static str),
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoUart => write!(f, "DTB names no PL011 console (/chosen/stdout-path)"),
            Self::NoMemory => write!(f, "DTB has no memory node with a reg property"),
            Self::NoCpus => write!(f, "DTB has no /cpus/cpu@* node with a reg property"),
            Self::TooManyCpus => write!(f, "DTB lists more than {MAX_CPUS} CPUs"),
            Self::TooManyRegions(what) => {
                write!(f, "DTB has more than {MAX_REGIONS} {what} regions")
            }
            Self::BadReg(node) => write!(f, "unusable reg property in {node}"),
        }
    }
}

impl Board {
    /// Reads the board description from `fdt`.
    pub fn from_fdt(fdt: &Fdt) -> Result<Self, BoardError> {
        Ok(Self {
            uart: find_console(fdt)?,
            memory: find_memory(fdt)?,
            devices: find_devices(fdt)?,
            cpus: find_cpus(fdt)?,
            psci: find_psci(fdt),
            carve_outs: find_carve_outs(fdt)?,
        })
    }
}

/// The PL011 named by `/chosen/stdout-path` ("path[:options]"), else the first PL011.
fn find_console(fdt: &Fdt) -> Result<usize, BoardError> {
    let stdout = fdt
        .find_node("/chosen")
        .and_then(|chosen| chosen.property("stdout-path"))
        .and_then(|path| path.as_str())
        .and_then(|path| fdt.find_node(path.split(':').next().unwrap_or(path)));
    let node = stdout
        .filter(|node| is_pl011(*node))
        .or_else(|| fdt.find_compatible(&["arm,pl011"]))
        .ok_or(BoardError::NoUart)?;
    first_reg(node)
        .map(|region| region.base)
        .ok_or(BoardError::NoUart)
}

fn is_pl011(node: FdtNode) -> bool {
    node.compatible()
        .is_some_and(|compatible| compatible.all().any(|c| c == "arm,pl011"))
}

fn find_memory(fdt: &Fdt) -> Result<RegionList, BoardError> {
    let mut memory = RegionList::new();
    for node in root_children(fdt).filter(|node| is_memory(*node)) {
        for region in regs(node, "memory node")? {
            memory.push(region, "memory")?;
        }
    }
    if memory.is_empty() {
        return Err(BoardError::NoMemory);
    }
    Ok(memory)
}

fn is_memory(node: FdtNode) -> bool {
    node.property("device_type")
        .and_then(|p| p.as_str())
        .is_some_and(|t| t == "memory")
        || node.name == "memory"
        || node.name.starts_with("memory@")
}

/// Device MMIO: the `reg` ranges of the root's children other than memory. Devices behind
/// buses with their own `ranges` are not needed by the demo host and are left unmapped.
fn find_devices(fdt: &Fdt) -> Result<RegionList, BoardError> {
    let mut devices = RegionList::new();
    for node in root_children(fdt).filter(|node| !is_memory(*node)) {
        if node.property("reg").is_none() {
            continue;
        }
        for region in regs(node, "device node")? {
            devices.push(region, "device")?;
        }
    }
    Ok(devices)
}

fn find_cpus(fdt: &Fdt) -> Result<CpuList, BoardError> {
    let mut cpus = CpuList {
        mpidrs: [0; MAX_CPUS],
        len: 0,
    };
    let Some(parent) = fdt.find_node("/cpus") else {
        return Err(BoardError::NoCpus);
    };
    let cpu_nodes = parent.children().filter(|node| {
        node.property("device_type")
            .and_then(|p| p.as_str())
            .is_some_and(|t| t == "cpu")
    });
    for node in cpu_nodes {
        // A cpu node's reg is its MPIDR affinity fields; #size-cells of /cpus is 0.
        let mpidr = node
            .reg()
            .and_then(|mut reg| reg.next())
            .map(|region| region.starting_address as usize as u64)
            .ok_or(BoardError::BadReg("cpu node"))?;
        let slot = cpus
            .mpidrs
            .get_mut(cpus.len)
            .ok_or(BoardError::TooManyCpus)?;
        *slot = mpidr;
        cpus.len += 1;
    }
    if cpus.len == 0 {
        return Err(BoardError::NoCpus);
    }
    Ok(cpus)
}

fn find_psci(fdt: &Fdt) -> Option<Conduit> {
    match fdt.find_node("/psci")?.property("method")?.as_str()? {
        "smc" => Some(Conduit::Smc),
        "hvc" => Some(Conduit::Hvc),
        _ => None,
    }
}

/// The payload's carve-out: the `/reserved-memory` children whose names start with `el2@`.
fn find_carve_outs(fdt: &Fdt) -> Result<RegionList, BoardError> {
    let mut carve_outs = RegionList::new();
    let Some(reserved) = fdt.find_node("/reserved-memory") else {
        return Ok(carve_outs);
    };
    for node in reserved
        .children()
        .filter(|node| node.name.starts_with("el2@"))
    {
        for region in regs(node, "/reserved-memory/el2@...")? {
            carve_outs.push(region, "carve-out")?;
        }
    }
    Ok(carve_outs)
}

fn root_children<'b, 'a>(fdt: &'b Fdt<'a>) -> impl Iterator<Item = FdtNode<'b, 'a>> {
    fdt.find_node("/")
        .into_iter()
        .flat_map(|root| root.children())
}

/// All `(address, size)` pairs of a node's `reg`, which must have sizes.
fn regs<'a>(
    node: FdtNode<'_, 'a>,
    what: &'static str,
) -> Result<impl Iterator<Item = Region> + 'a, BoardError> {
    let reg = node.reg().ok_or(BoardError::BadReg(what))?;
    Ok(reg.filter_map(|region| {
        Some(Region {
            base: region.starting_address as usize,
            size: region.size?,
        })
    }))
}

fn first_reg(node: FdtNode) -> Option<Region> {
    let region = node.reg()?.next()?;
    Some(Region {
        base: region.starting_address as usize,
        size: region.size?,
    })
}
