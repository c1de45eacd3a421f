//! Why discovery failed, in words the payload can print before it stops.

use core::fmt;

use crate::fdt_check::FdtFormatError;
use crate::fixed_list::MemRange;

/// A node name or path copied out of the blob, so errors need no lifetime. Names longer than
/// the buffer are cut and end in "...".
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodeName {
    bytes: [u8; Self::CAPACITY],
    len: u8,
    truncated: bool,
}

impl NodeName {
    const CAPACITY: usize = 48;

    pub fn new(name: &str) -> Self {
        let mut bytes = [0; Self::CAPACITY];
        let mut len = name.len().min(Self::CAPACITY);
        // Cut on a character boundary so `as_str` stays valid UTF-8.
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        Self {
            bytes,
            len: len as u8,
            truncated: len < name.len(),
        }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.as_str().is_empty() {
            "/"
        } else {
            self.as_str()
        };
        f.write_str(name)?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Everything [`super::discover`] can report. `Display` gives one line that names the problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// The blob is not a structurally valid FDT (bad magic, truncated, malformed, ...).
    Format(FdtFormatError),
    /// No `device_type = "memory"` node with a non-empty `reg`.
    NoMemory,
    /// More memory banks than `BootInfo` can hold.
    TooManyMemoryBanks { max: usize },
    /// Two memory banks share addresses.
    MemoryBanksOverlap { first: MemRange, second: MemRange },
    /// A `reg`, `ranges` or cell property of `node` cannot be decoded.
    BadReg {
        node: NodeName,
        reason: &'static str,
    },
    /// No `/cpus/cpu@*` node with `device_type = "cpu"`.
    NoCpus,
    /// More CPUs than `BootInfo` can hold.
    TooManyCpus { max: usize },
    /// No node compatible with `arm,psci-*`.
    NoPsci,
    /// The PSCI node's `method` is missing or not `smc`/`hvc`.
    BadPsciMethod,
    /// The PSCI node claims only PSCI 0.1 (`arm,psci`), whose function ids come from the DTB.
    PsciVersionUnsupported,
    /// No `arm,gic-v3` or GICv2 (`arm,cortex-a15-gic`, `arm,gic-400`) interrupt controller.
    NoGic,
    /// The GIC's `reg` lacks a region the version needs.
    GicMissingRegion {
        node: NodeName,
        region: &'static str,
    },
    /// More GICv3 redistributor regions than `BootInfo` can hold.
    TooManyRedistributorRegions { max: usize },
    /// More distinct MMIO regions than `BootInfo` can hold.
    TooManyMmioRegions { max: usize },
    /// A device's (page-aligned) registers share addresses with a RAM bank.
    DeviceOverlapsRam {
        node: NodeName,
        device: MemRange,
        bank: MemRange,
    },
    /// More reserved ranges than `BootInfo` can hold.
    TooManyReservedRanges { max: usize },
    /// Two `/chosen` module nodes are compatible with `multiboot,kernel` (or both with
    /// `multiboot,ramdisk`).
    DuplicateModule {
        kind: &'static str,
        first: NodeName,
        second: NodeName,
    },
    /// A module node has no `reg`, or its size is zero.
    ModuleWithoutReg { node: NodeName },
    /// A module's `reg` does not decode with `/chosen`'s cell sizes: usually `/chosen`
    /// lacks `#address-cells`/`#size-cells` (`defaulted`), so the devicetree defaults (2
    /// and 1) apply while the loader wrote 2 + 2 cells.
    ModuleRegCells {
        node: NodeName,
        bytes: usize,
        address_cells: u32,
        size_cells: u32,
        defaulted: bool,
    },
    /// More unconfined DMA masters than the list holds.
    TooManyDmaMasters { max: usize },
    /// An unconfined DMA master has more distinct register ranges than its list holds.
    TooManyDmaMasterRegions { node: NodeName, max: usize },
    /// More than one `arm,smmu-v3` node: EL2 drives one SMMU.
    TooManySmmus { first: NodeName, second: NodeName },
    /// A string property (bootargs, stdout-path, alias) is not UTF-8.
    BadString {
        node: NodeName,
        property: &'static str,
    },
}

impl From<FdtFormatError> for DiscoveryError {
    fn from(e: FdtFormatError) -> Self {
        Self::Format(e)
    }
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(e) => write!(f, "{e}"),
            Self::NoMemory => write!(
                f,
                "no /memory node (no device_type = \"memory\" with a reg)"
            ),
            Self::TooManyMemoryBanks { max } => write!(f, "too many memory banks (max {max})"),
            Self::MemoryBanksOverlap { first, second } => {
                write!(f, "memory banks {first} and {second} overlap")
            }
            Self::BadReg { node, reason } => write!(f, "node {node}: bad reg/ranges: {reason}"),
            Self::NoCpus => write!(f, "no CPU nodes (/cpus/cpu@* with device_type = \"cpu\")"),
            Self::TooManyCpus { max } => write!(f, "too many CPUs (max {max})"),
            Self::NoPsci => write!(f, "no PSCI node (compatible arm,psci-0.2 or arm,psci-1.0)"),
            Self::BadPsciMethod => write!(f, "PSCI node has no method \"smc\" or \"hvc\""),
            Self::PsciVersionUnsupported => write!(
                f,
                "PSCI node is only compatible with arm,psci (0.1); need arm,psci-0.2 or arm,psci-1.0"
            ),
            Self::NoGic => write!(
                f,
                "no GIC node (arm,gic-v3, arm,cortex-a15-gic or arm,gic-400)"
            ),
            Self::GicMissingRegion { node, region } => {
                write!(f, "GIC node {node} has no {region} region in reg")
            }
            Self::TooManyRedistributorRegions { max } => {
                write!(f, "too many GIC redistributor regions (max {max})")
            }
            Self::TooManyMmioRegions { max } => write!(f, "too many MMIO regions (max {max})"),
            Self::DeviceOverlapsRam { node, device, bank } => {
                write!(f, "device {node} overlaps RAM: {device} vs bank {bank}")
            }
            Self::TooManyReservedRanges { max } => {
                write!(f, "too many reserved memory ranges (max {max})")
            }
            Self::DuplicateModule {
                kind,
                first,
                second,
            } => write!(
                f,
                "two multiboot,{kind} modules under /chosen: {first} and {second}"
            ),
            Self::ModuleWithoutReg { node } => {
                write!(f, "module {node} under /chosen has no reg or a zero size")
            }
            Self::ModuleRegCells {
                node,
                bytes,
                address_cells,
                size_cells,
                defaulted,
            } => {
                write!(
                    f,
                    "module {node} under /chosen: its reg ({bytes} bytes) does not decode \
                     with #address-cells = {address_cells} and #size-cells = {size_cells}"
                )?;
                if *defaulted {
                    write!(
                        f,
                        ": /chosen has no #address-cells/#size-cells, so the devicetree \
                         defaults (2 and 1) apply; add #address-cells = <2> and \
                         #size-cells = <2> to /chosen (the multiboot binding's)"
                    )?;
                }
                Ok(())
            }
            Self::TooManyDmaMasters { max } => {
                write!(f, "too many unconfined DMA masters (max {max})")
            }
            Self::TooManyDmaMasterRegions { node, max } => write!(
                f,
                "DMA master {node} has too many register ranges (max {max})"
            ),
            Self::TooManySmmus { first, second } => write!(
                f,
                "two arm,smmu-v3 nodes ({first} and {second}): EL2 drives only one SMMU"
            ),
            Self::BadString { node, property } => {
                write!(f, "node {node}: property {property} is not a UTF-8 string")
            }
        }
    }
}
