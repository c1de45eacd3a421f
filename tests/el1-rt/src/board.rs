//! What an EL1 test image learns from the DTB the payload gives it: console, RAM, device
//! MMIO, GIC, CPUs, PSCI conduit, the payload's carve-out and the memory already in use.
//!
//! The console and the GIC are found by the payload's own discovery (`platform`): the UART
//! `/chosen/stdout-path` names (an alias or a path, on any bus, driver by `compatible`)
//! and the first GICv2 or GICv3 node, with bus `ranges` applied.
//!
//! Parsing runs on the boot CPU with the MMU off, so it only reads the DTB and fills
//! fixed-size arrays: no allocation, no atomics.

use crate::region::{ListFull, MAX_REGIONS, Region, RegionList};
use core::fmt;
use fdt::Fdt;
use fdt::node::FdtNode;
use platform::MemRange;
pub use platform::fdt_discovery::{ConsoleUart, Gic, GicVersion, UartKind};

/// Most CPUs an image brings up: 512, the most QEMU `virt` (GICv3) takes, which is where the
/// test images run (the payload itself takes what the DTB lists). The per-CPU arrays cost
/// about 16.1 KiB per CPU of .bss (mostly the 16 KiB secondary stacks), 8 MiB in all; a DTB
/// with more CPUs is an error (`BoardError::TooManyCpus`), never a silent cut.
pub const MAX_CPUS: usize = 512;

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

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Everything the demo host takes from the DTB.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// The UART that `/chosen/stdout-path` names (else the first PL011), and its driver.
    pub console: ConsoleUart,
    /// The console UART's register base (`console.regs.base`).
    pub uart: usize,
    /// The interrupt controller, if the DTB describes one the payload's discovery reads.
    pub gic: Option<Gic>,
    /// RAM from the `memory` nodes.
    pub memory: RegionList,
    /// MMIO ranges (`reg`) of the devices directly under the root node, plus the console's
    /// and the GIC's registers wherever they sit (zcu102 has both under `/axi`).
    pub devices: RegionList,
    pub cpus: CpuList,
    /// The first PCI host bridge (`device_type = "pci"`, generic ECAM), if any.
    pub pci: Option<PciHost>,
    /// `None` if there is no `/psci` node or its method is neither "smc" nor "hvc".
    pub psci: Option<Conduit>,
    /// The payload's carve-out: the regions of every `/reserved-memory/el2@...` node
    /// (empty if there is none).
    pub carve_outs: RegionList,
    /// Memory the DTB says is taken: every `/reserved-memory` child (the carve-out
    /// included), every `/memreserve/` entry and the initrd of `/chosen`. The DTB blob
    /// itself is not described by the DTB; the caller knows where it is.
    pub in_use: RegionList,
    /// `/chosen/bootargs` (what the payload passed on from the module node), cut at
    /// `BOOTARGS_MAX` bytes; see [`Board::bootargs`].
    bootargs: [u8; BOOTARGS_MAX],
    bootargs_len: usize,
}

/// Bytes of `/chosen/bootargs` a board keeps: test hosts take a mode word from it.
pub const BOOTARGS_MAX: usize = 64;
/// A generic ECAM PCI host bridge: its configuration space and the 32-bit memory window
/// where BARs can be placed (the window is also in [`Board::devices`], so it is mapped).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct PciHost {
    pub ecam: Region,
    /// The CPU address range of the window; PCI bus addresses equal CPU addresses on
    /// QEMU `virt` (checked when the window is read).
    pub mem32: Region,
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
    BadInitrd,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoUart => write!(
                f,
                "DTB names no console UART with a driver here (/chosen/stdout-path: PL011, Cadence, 16550) and has no PL011"
            ),
            Self::NoMemory => write!(f, "DTB has no memory node with a reg property"),
            Self::NoCpus => write!(f, "DTB has no /cpus/cpu@* node with a reg property"),
            Self::TooManyCpus => write!(f, "DTB lists more than {MAX_CPUS} CPUs"),
            Self::TooManyRegions(what) => {
                write!(f, "DTB has more than {MAX_REGIONS} {what} regions")
            }
            Self::BadReg(node) => write!(f, "unusable reg property in {node}"),
            Self::BadInitrd => write!(
                f,
                "/chosen has an unusable linux,initrd-start/linux,initrd-end pair"
            ),
        }
    }
}

impl Board {
    /// Reads the board description from `fdt`.
    pub fn from_fdt(fdt: &Fdt) -> Result<Self, BoardError> {
        let mut bootargs = [0u8; BOOTARGS_MAX];
        let mut bootargs_len = 0;
        // Not `fdt.chosen()`: it panics on a DTB without `/chosen`.
        if let Some(args) = fdt
            .find_node("/chosen")
            .and_then(|chosen| chosen.property("bootargs"))
            .and_then(|p| p.as_str())
            && args.len() <= BOOTARGS_MAX
        {
            bootargs[..args.len()].copy_from_slice(args.as_bytes());
            bootargs_len = args.len();
        }
        let console = find_console(fdt)?;
        let gic = platform::fdt_discovery::find_gic(fdt).ok();
        let mut devices = find_devices(fdt)?;
        add_device(&mut devices, console.regs)?;
        for region in gic.iter().flat_map(gic_regions) {
            add_device(&mut devices, region)?;
        }
        Ok(Self {
            console,
            uart: console.regs.base as usize,
            gic,
            memory: find_memory(fdt)?,
            devices,
            pci: find_pci(fdt),
            cpus: find_cpus(fdt)?,
            psci: find_psci(fdt),
            carve_outs: find_carve_outs(fdt)?,
            in_use: find_in_use(fdt)?,
            bootargs,
            bootargs_len,
        })
    }

    /// `/chosen/bootargs`, or "" (also if it was longer than `BOOTARGS_MAX` bytes).
    pub fn bootargs(&self) -> &str {
        core::str::from_utf8(&self.bootargs[..self.bootargs_len]).unwrap_or("")
    }
}

/// The UART named by `/chosen/stdout-path` if the payload's console code has a driver
/// for it (the same choice the payload makes), else the first PL011 under the root.
fn find_console(fdt: &Fdt) -> Result<ConsoleUart, BoardError> {
    if let Some(uart) = platform::fdt_discovery::stdout_console(fdt) {
        return Ok(uart);
    }
    let node = fdt
        .find_compatible(&["arm,pl011"])
        .ok_or(BoardError::NoUart)?;
    let region = first_reg(node).ok_or(BoardError::NoUart)?;
    Ok(ConsoleUart {
        kind: UartKind::Pl011,
        regs: MemRange {
            base: region.base as u64,
            size: region.size as u64,
        },
    })
}

/// The GIC's register regions: GICD, GICR (v3), GICC, and GICH/GICV where the DTB lists
/// them (mapped so that a probe of them reaches stage 2, which must refuse it).
fn gic_regions(gic: &Gic) -> impl Iterator<Item = MemRange> + '_ {
    core::iter::once(gic.distributor)
        .chain(gic.redistributors.as_slice().iter().copied())
        .chain(gic.cpu_interface)
        .chain(gic.hypervisor_interface)
        .chain(gic.virtual_cpu_interface)
}

/// Adds `range` to the device list unless a listed region already covers it.
fn add_device(devices: &mut RegionList, range: MemRange) -> Result<(), BoardError> {
    let region = Region {
        base: range.base as usize,
        size: range.size as usize,
    };
    if devices.iter().any(|d| d.contains(&region)) {
        return Ok(());
    }
    push(devices, region, "device")
}

fn find_memory(fdt: &Fdt) -> Result<RegionList, BoardError> {
    let mut memory = RegionList::new();
    for node in root_children(fdt).filter(|node| is_memory(*node)) {
        for region in regs(node, "memory node")? {
            push(&mut memory, region, "memory")?;
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
            push(&mut devices, region, "device")?;
        }
    }
    if let Some(pci) = find_pci(fdt) {
        push(&mut devices, pci.mem32, "device")?;
    }
    Ok(devices)
}

/// The first `device_type = "pci"` node under the root with a `reg` (ECAM) and a 32-bit
/// memory window in `ranges` (space code 0b10 in the top cell, 3 child address cells, 2
/// parent address cells, 2 size cells) whose PCI address equals its CPU address.
fn find_pci(fdt: &Fdt) -> Option<PciHost> {
    let node = root_children(fdt).find(|node| {
        node.property("device_type")
            .and_then(|p| p.as_str())
            .is_some_and(|t| t == "pci")
    })?;
    let ecam = first_reg(node)?;
    let ranges = node.property("ranges")?.value;
    let cell = |entry: &[u8], i: usize| {
        u32::from_be_bytes([
            entry[4 * i],
            entry[4 * i + 1],
            entry[4 * i + 2],
            entry[4 * i + 3],
        ])
    };
    let wide =
        |entry: &[u8], i: usize| (u64::from(cell(entry, i)) << 32) | u64::from(cell(entry, i + 1));
    ranges.chunks_exact(28).find_map(|entry| {
        let space = (cell(entry, 0) >> 24) & 3;
        let (pci, cpu, size) = (wide(entry, 1), wide(entry, 3), wide(entry, 5));
        (space == 0b10 && pci == cpu && size > 0).then_some(PciHost {
            ecam,
            mem32: Region {
                base: cpu as usize,
                size: size as usize,
            },
        })
    })
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
            push(&mut carve_outs, region, "carve-out")?;
        }
    }
    Ok(carve_outs)
}

fn find_in_use(fdt: &Fdt) -> Result<RegionList, BoardError> {
    let mut in_use = RegionList::new();
    if let Some(reserved) = fdt.find_node("/reserved-memory") {
        for node in reserved.children() {
            // Dynamic pools (`size` without `reg`) are placed by the OS, not yet taken.
            if node.property("reg").is_none() {
                continue;
            }
            for region in regs(node, "/reserved-memory child")? {
                push(&mut in_use, region, "reserved-memory")?;
            }
        }
    }
    for reservation in fdt.memory_reservations() {
        let region = Region {
            base: reservation.address() as usize,
            size: reservation.size(),
        };
        push(&mut in_use, region, "reserved-memory")?;
    }
    if let Some(initrd) = find_initrd(fdt)? {
        push(&mut in_use, initrd, "reserved-memory")?;
    }
    Ok(in_use)
}

/// `/chosen/linux,initrd-start` and `linux,initrd-end` (either 32 or 64 bits wide).
fn find_initrd(fdt: &Fdt) -> Result<Option<Region>, BoardError> {
    let Some(chosen) = fdt.find_node("/chosen") else {
        return Ok(None);
    };
    let start = chosen.property("linux,initrd-start");
    let end = chosen.property("linux,initrd-end");
    match (start, end) {
        (None, None) => Ok(None),
        (Some(start), Some(end)) => {
            let start = start.as_usize().ok_or(BoardError::BadInitrd)?;
            let end = end.as_usize().ok_or(BoardError::BadInitrd)?;
            let size = end.checked_sub(start).ok_or(BoardError::BadInitrd)?;
            Ok(Some(Region { base: start, size }))
        }
        _ => Err(BoardError::BadInitrd),
    }
}

fn push(list: &mut RegionList, region: Region, what: &'static str) -> Result<(), BoardError> {
    list.push(region)
        .map_err(|ListFull| BoardError::TooManyRegions(what))
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

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_VIRT: &[u8] = include_bytes!("../../../platform/tests/data/virt-gicv3.dtb");
    const ZCU102: &[u8] = include_bytes!("../../../platform/tests/data/zynqmp-zcu102-rev1.0.dtb");
    const WITH_RESERVATIONS: &[u8] =
        include_bytes!("../../../platform/tests/data/virt-reserved.dtb");

    fn board(blob: &[u8]) -> Board {
        Board::from_fdt(&Fdt::new(blob).unwrap()).unwrap()
    }

    #[test]
    fn qemu_virt_has_console_ram_cpus_and_smc_psci() {
        let board = board(QEMU_VIRT);
        assert_eq!(board.uart, 0x0900_0000);
        let ram: Vec<_> = board.memory.iter().copied().collect();
        assert_eq!(
            ram,
            [Region {
                base: 0x4000_0000,
                size: 1 << 30
            }]
        );
        assert_eq!(board.cpus.len(), 4);
        assert_eq!(board.psci, Some(Conduit::Smc));
        assert!(board.carve_outs.is_empty());
        assert!(board.in_use.is_empty());
        // pcie@10000000: ECAM high, the 32-bit window identity-mapped.
        let pci = board.pci.unwrap();
        assert_eq!(
            pci.ecam,
            Region {
                base: 0x40_1000_0000,
                size: 0x1000_0000
            }
        );
        assert_eq!(
            pci.mem32,
            Region {
                base: 0x1000_0000,
                size: 0x2eff_0000
            }
        );
        assert!(board.devices.iter().any(|d| *d == pci.mem32));
    }

    #[test]
    fn zcu102_console_is_the_cadence_uart_its_stdout_alias_names_and_it_and_the_gic_are_mapped() {
        let board = board(ZCU102);
        // stdout-path = "serial0:115200n8", serial0 = "/axi/serial@ff000000".
        assert_eq!(board.console.kind, UartKind::Cadence);
        assert_eq!(board.uart, 0xff00_0000);
        let gic = board.gic.unwrap();
        assert_eq!(gic.version, GicVersion::V2);
        assert_eq!(gic.distributor.base, 0xf901_0000);
        assert_eq!(gic.cpu_interface.unwrap().base, 0xf902_0000);
        // Both sit under /axi, not under the root: mapped all the same.
        for base in [0xff00_0000, 0xf901_0000, 0xf902_0000] {
            let reg = Region { base, size: 0x1000 };
            assert!(
                board.devices.iter().any(|d| d.contains(&reg)),
                "{base:#x} is not in the device map"
            );
        }
        assert_eq!(board.cpus.len(), 4);
        assert_eq!(board.psci, Some(Conduit::Smc));
    }

    /// A board whose console is a DesignWare 16550 (32-bit registers, 4 bytes apart)
    /// behind a bus that translates addresses (child 0x0 -> CPU 0xfe00_0000).
    fn dw_apb_uart_board() -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("stdout-path", "serial2:1500000n8")
            .unwrap();
        w.end_node(chosen).unwrap();
        let aliases = w.begin_node("aliases").unwrap();
        w.property_string("serial2", "/soc/serial@b50000").unwrap();
        w.end_node(aliases).unwrap();
        let memory = w.begin_node("memory@0").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[0, 0x8000_0000]).unwrap();
        w.end_node(memory).unwrap();
        let cpus = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let cpu = w.begin_node("cpu@0").unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u32("reg", 0).unwrap();
        w.end_node(cpu).unwrap();
        w.end_node(cpus).unwrap();
        let soc = w.begin_node("soc").unwrap();
        w.property_string("compatible", "simple-bus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_array_u32("ranges", &[0, 0, 0xfe00_0000, 0x100_0000])
            .unwrap();
        let uart = w.begin_node("serial@b50000").unwrap();
        w.property_string_list(
            "compatible",
            vec!["rockchip,rk3588-uart".into(), "snps,dw-apb-uart".into()],
        )
        .unwrap();
        w.property_array_u32("reg", &[0xb5_0000, 0x100]).unwrap();
        w.property_u32("reg-shift", 2).unwrap();
        w.property_u32("reg-io-width", 4).unwrap();
        w.end_node(uart).unwrap();
        w.end_node(soc).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_dw_apb_uart_console_behind_a_translating_bus_is_found_and_mapped() {
        let blob = dw_apb_uart_board();
        let board = board(&blob);
        assert_eq!(
            board.console.kind,
            UartKind::Ns16550 {
                reg_shift: 2,
                io_width: 4
            }
        );
        assert_eq!(board.uart, 0xfeb5_0000);
        let reg = Region {
            base: 0xfeb5_0000,
            size: 0x100,
        };
        assert!(board.devices.iter().any(|d| d.contains(&reg)));
    }

    #[test]
    fn qemu_virt_console_and_gic_are_not_listed_twice() {
        let board = board(QEMU_VIRT);
        assert_eq!(board.console.kind, UartKind::Pl011);
        assert_eq!(board.gic.unwrap().version, GicVersion::V3);
        let uart = Region {
            base: 0x0900_0000,
            size: 0x1000,
        };
        assert_eq!(
            board.devices.iter().filter(|d| d.contains(&uart)).count(),
            1
        );
    }

    #[test]
    fn reserved_memory_memreserve_and_initrd_are_in_use() {
        let board = board(WITH_RESERVATIONS);
        let in_use: Vec<_> = board.in_use.iter().copied().collect();
        assert_eq!(
            in_use,
            [
                // /reserved-memory/firmware@7ff00000; the dynamic pool has no reg.
                Region {
                    base: 0x7ff0_0000,
                    size: 0x10_0000
                },
                // /memreserve/
                Region {
                    base: 0x4800_0000,
                    size: 0x10_0000
                },
                // linux,initrd-start/end
                Region {
                    base: 0x4800_0000,
                    size: 0x10_0000
                },
            ]
        );
        // Only el2@... children are the payload's carve-out.
        assert!(board.carve_outs.is_empty());
    }
}
