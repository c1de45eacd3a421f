//! `fdt_discovery::discover` against DTBs dumped from QEMU and small synthetic boards.

mod common;

use common::{Board, be_cells, fixture, module, reg2};
use platform::fdt_discovery::{
    ConsoleUart, DiscoveryError, GicVersion, MAX_CPUS, MAX_MEMORY_BANKS, MAX_RESERVED_RANGES,
    PsciVersion, UartKind, discover,
};
use platform::psci::Conduit;
use platform::{FdtFormatError, MemRange};

fn r(base: u64, size: u64) -> MemRange {
    MemRange::new(base, size).unwrap()
}

fn pl011(base: u64, size: u64) -> Option<ConsoleUart> {
    Some(ConsoleUart {
        kind: UartKind::Pl011,
        regs: r(base, size),
    })
}

fn covers(list: &[MemRange], base: u64, size: u64) -> bool {
    list.iter()
        .any(|m| m.base <= base && base + size <= m.end())
}

/// The MMIO list QEMU 7.2 virt (GICv3, virtualization=on) yields: flash+GICD, ITS+GICR+UART,
/// RTC, fw-cfg, GPIO, the virtio-mmio block, platform-bus, PCIe MMIO32+I/O, ECAM, MMIO64.
const VIRT_GICV3_MMIO: &[(u64, u64)] = &[
    (0x0, 0x801_0000),
    (0x808_0000, 0x9001000 - 0x808_0000),
    (0x901_0000, 0x1000),
    (0x902_0000, 0x1000),
    (0x903_0000, 0x1000),
    (0xa00_0000, 0x4000),
    (0xc00_0000, 0x200_0000),
    (0x1000_0000, 0x3f00_0000 - 0x1000_0000),
    (0x40_1000_0000, 0x1000_0000),
    (0x80_0000_0000, 0x80_0000_0000),
];

#[test]
fn qemu_virt_gicv3_is_discovered() {
    let dtb = fixture("virt-gicv3.dtb");
    let info = discover(&dtb).unwrap();
    assert_eq!(info.memory.as_slice(), &[r(0x4000_0000, 0x4000_0000)]);
    assert_eq!(info.console, pl011(0x900_0000, 0x1000));
    assert_eq!(info.gic.version, GicVersion::V3);
    assert_eq!(info.gic.distributor, r(0x800_0000, 0x1_0000));
    assert_eq!(
        info.gic.redistributors.as_slice(),
        &[r(0x80a_0000, 0xf6_0000)]
    );
    assert_eq!(info.gic.cpu_interface, None);
    let mut cpus = vec![];
    info.cpus.for_each(|m| cpus.push(m));
    assert_eq!(cpus, [0, 1, 2, 3]);
    assert_eq!(info.psci.conduit, Conduit::Smc);
    assert_eq!(info.psci.version, PsciVersion::V1_0);
    assert_eq!(info.dtb_size, 0x10_0000, "QEMU pads its blob to 1 MiB");
    assert!(info.reserved.is_empty());
    assert_eq!(info.modules.kernel, None);
    assert_eq!(info.modules.ramdisk, None);

    let expected: Vec<MemRange> = VIRT_GICV3_MMIO.iter().map(|&(b, s)| r(b, s)).collect();
    assert_eq!(info.mmio.as_slice(), expected.as_slice());
}

#[test]
fn qemu_virt_mmio_covers_devices_and_never_ram() {
    for name in [
        "virt-gicv3.dtb",
        "virt-gicv3-4g.dtb",
        "virt-gicv2.dtb",
        "virt-modules.dtb",
    ] {
        let dtb = fixture(name);
        let info = discover(&dtb).unwrap();
        let mmio = info.mmio.as_slice();
        assert!(covers(mmio, 0x900_0000, 0x1000), "{name}: UART");
        assert!(
            covers(mmio, 0x800_0000, 0x1_0000),
            "{name}: GIC distributor"
        );
        assert!(covers(mmio, 0xa00_0000, 0x200), "{name}: first virtio-mmio");
        assert!(covers(mmio, 0xa00_3e00, 0x200), "{name}: last virtio-mmio");
        assert!(covers(mmio, 0x902_0000, 0x18), "{name}: fw-cfg");
        assert!(
            covers(mmio, 0x40_1000_0000, 0x1000_0000),
            "{name}: PCIe ECAM"
        );
        for m in mmio {
            assert_eq!(m.base % 4096, 0, "{name}: {m} page-aligned");
            assert_eq!(m.size % 4096, 0, "{name}: {m} page-aligned");
            for bank in info.memory.iter() {
                assert!(!m.overlaps(bank), "{name}: {m} overlaps RAM {bank}");
            }
        }
        for pair in mmio.windows(2) {
            assert!(pair[0].end() < pair[1].base, "{name}: sorted and merged");
        }
    }
}

#[test]
fn qemu_virt_4g_has_one_4g_bank() {
    let blob = fixture("virt-gicv3-4g.dtb");
    let info = discover(&blob).unwrap();
    assert_eq!(info.memory.as_slice(), &[r(0x4000_0000, 0x1_0000_0000)]);
    assert_eq!(info.cpus.len(), 4);
}

#[test]
fn qemu_virt_gicv2_regions_are_discovered() {
    let blob = fixture("virt-gicv2.dtb");
    let info = discover(&blob).unwrap();
    assert_eq!(info.gic.version, GicVersion::V2);
    assert_eq!(info.gic.distributor, r(0x800_0000, 0x1_0000));
    assert!(info.gic.redistributors.is_empty());
    assert_eq!(info.gic.cpu_interface, Some(r(0x801_0000, 0x1_0000)));
    assert_eq!(info.gic.hypervisor_interface, Some(r(0x803_0000, 0x1_0000)));
    assert_eq!(
        info.gic.virtual_cpu_interface,
        Some(r(0x804_0000, 0x1_0000))
    );
}

#[test]
fn zcu102_gic_400_is_a_gicv2_whose_virtual_interface_is_gich_and_gicv() {
    let blob = fixture("zynqmp-zcu102-rev1.0.dtb");
    let info = discover(&blob).unwrap();
    assert_eq!(info.gic.version, GicVersion::V2);
    assert_eq!(info.gic.distributor, r(0xf901_0000, 0x1_0000));
    assert_eq!(info.gic.cpu_interface, Some(r(0xf902_0000, 0x2_0000)));
    let virtual_interface: Vec<_> = info.gic.virtual_interface().collect();
    assert_eq!(
        virtual_interface,
        [r(0xf904_0000, 0x2_0000), r(0xf906_0000, 0x2_0000)]
    );
    // The GIC sits under /axi: its MMIO is in the list EL2 starts the host's from.
    assert!(covers(info.mmio.as_slice(), 0xf904_0000, 0x2_0000));
}

#[test]
fn qemu_virt_gicv3_has_no_memory_mapped_virtual_interface() {
    let blob = fixture("virt-gicv3.dtb");
    let info = discover(&blob).unwrap();
    assert_eq!(info.gic.virtual_interface().count(), 0);
}

#[test]
fn multiboot_modules_are_discovered() {
    let blob = fixture("virt-modules.dtb");
    let info = discover(&blob).unwrap();
    let kernel = info.modules.kernel.unwrap();
    assert_eq!(kernel.range, r(0x5000_0000, 0x200_0000));
    assert_eq!(
        kernel.bootargs,
        Some("console=ttyAMA0 earlycon rdinit=/init")
    );
    assert_eq!(info.modules.ramdisk, Some(r(0x5c00_0000, 0x40_0000)));
    assert_eq!(info.dtb_size, fixture("virt-modules.dtb").len());
}

#[test]
fn reserved_ranges_and_aliased_stdout_are_discovered() {
    let blob = fixture("virt-reserved.dtb");
    let info = discover(&blob).unwrap();
    assert_eq!(
        info.console,
        pl011(0x900_0000, 0x1000),
        "serial0:115200n8 via /aliases"
    );
    assert_eq!(
        info.reserved.as_slice(),
        &[r(0x4800_0000, 0x10_0000), r(0x7ff0_0000, 0x10_0000)]
    );
    let kernel = info.modules.kernel.unwrap();
    assert_eq!(kernel.bootargs, None);
    assert_eq!(info.modules.ramdisk, None);
}

#[test]
fn missing_stdout_path_is_no_console() {
    let dtb = Board {
        stdout_path: None,
        ..Board::default()
    }
    .build();
    assert_eq!(discover(&dtb).unwrap().console, None);
}

#[test]
fn hvc_and_psci_0_2_are_recognised() {
    let dtb = Board {
        psci: Some((vec!["arm,psci-0.2"], "hvc")),
        ..Board::default()
    }
    .build();
    let psci = discover(&dtb).unwrap().psci;
    assert_eq!(
        (psci.conduit, psci.version),
        (Conduit::Hvc, PsciVersion::V0_2)
    );
}

fn err(board: Board) -> DiscoveryError {
    discover(&board.build()).unwrap_err()
}

#[test]
fn absent_essentials_are_named() {
    assert_eq!(
        err(Board {
            banks: vec![],
            ..Board::default()
        }),
        DiscoveryError::NoMemory
    );
    assert_eq!(
        err(Board {
            cpus: vec![],
            ..Board::default()
        }),
        DiscoveryError::NoCpus
    );
    assert_eq!(
        err(Board {
            psci: None,
            ..Board::default()
        }),
        DiscoveryError::NoPsci
    );
    assert_eq!(
        err(Board {
            gic: None,
            ..Board::default()
        }),
        DiscoveryError::NoGic
    );
    assert!(
        DiscoveryError::NoMemory
            .to_string()
            .starts_with("no /memory node")
    );
    assert_eq!(
        DiscoveryError::NoCpus.to_string(),
        "no CPU nodes (/cpus/cpu@* with device_type = \"cpu\")"
    );
    assert!(
        DiscoveryError::NoPsci
            .to_string()
            .starts_with("no PSCI node")
    );
}

#[test]
fn psci_problems_are_reported() {
    let only_0_1 = Board {
        psci: Some((vec!["arm,psci"], "smc")),
        ..Board::default()
    };
    assert_eq!(err(only_0_1), DiscoveryError::PsciVersionUnsupported);
    let bad_method = Board {
        psci: Some((vec!["arm,psci-1.0"], "svc")),
        ..Board::default()
    };
    assert_eq!(err(bad_method), DiscoveryError::BadPsciMethod);
}

#[test]
fn capacity_limits_are_errors_not_truncation() {
    let cpus = Board {
        cpus: (0..=MAX_CPUS as u32).collect(),
        ..Board::default()
    };
    let e = err(cpus);
    assert_eq!(e, DiscoveryError::TooManyCpus { max: MAX_CPUS });
    assert_eq!(e.to_string(), format!("too many CPUs (max {MAX_CPUS})"));

    let banks = (0..=MAX_MEMORY_BANKS as u64).map(|i| (0x4000_0000 + i * 0x100_0000, 0x10_0000));
    let e = err(Board {
        banks: banks.collect(),
        ..Board::default()
    });
    assert_eq!(
        e,
        DiscoveryError::TooManyMemoryBanks {
            max: MAX_MEMORY_BANKS
        }
    );
    assert_eq!(
        e.to_string(),
        format!("too many memory banks (max {MAX_MEMORY_BANKS})")
    );

    let exactly = Board {
        cpus: (0..MAX_CPUS as u32).collect(),
        ..Board::default()
    };
    assert_eq!(discover(&exactly.build()).unwrap().cpus.len(), MAX_CPUS);
}

/// A board with `n` `/reserved-memory` children, one page each.
fn board_with_reserved(n: u64) -> Board {
    Board {
        extra: vec![Box::new(move |w| {
            let node = w.begin_node("reserved-memory").unwrap();
            w.property_u32("#address-cells", 2).unwrap();
            w.property_u32("#size-cells", 2).unwrap();
            w.property_null("ranges").unwrap();
            for i in 0..n {
                let base = 0x4000_0000 + i * 0x1000;
                let child = w.begin_node(&format!("r@{base:x}")).unwrap();
                reg2(w, &[(base, 0x1000)]);
                w.end_node(child).unwrap();
            }
            w.end_node(node).unwrap();
        })],
        ..Board::default()
    }
}

#[test]
fn a_full_reserved_list_keeps_every_range_and_one_more_is_an_error() {
    let blob = board_with_reserved(MAX_RESERVED_RANGES as u64).build();
    let full = discover(&blob).unwrap();
    assert_eq!(full.reserved.len(), MAX_RESERVED_RANGES);
    assert!(covers(full.reserved.as_slice(), 0x4000_0000, 0x1000));
    let last = 0x4000_0000 + (MAX_RESERVED_RANGES as u64 - 1) * 0x1000;
    assert!(covers(full.reserved.as_slice(), last, 0x1000));

    let e = err(board_with_reserved(MAX_RESERVED_RANGES as u64 + 1));
    assert_eq!(
        e,
        DiscoveryError::TooManyReservedRanges {
            max: MAX_RESERVED_RANGES
        }
    );
    assert_eq!(
        e.to_string(),
        format!("too many reserved memory ranges (max {MAX_RESERVED_RANGES})")
    );
}

#[test]
fn memory_banks_are_sorted_and_overlaps_refused() {
    let board = Board {
        banks: vec![(0x8000_0000, 0x1000_0000), (0x4000_0000, 0x1000_0000)],
        ..Board::default()
    };
    let blob = board.build();
    let info = discover(&blob).unwrap();
    assert_eq!(
        info.memory.as_slice(),
        &[r(0x4000_0000, 0x1000_0000), r(0x8000_0000, 0x1000_0000)]
    );

    let overlapping = Board {
        banks: vec![(0x4000_0000, 0x2000_0000), (0x5000_0000, 0x1000_0000)],
        ..Board::default()
    };
    assert!(matches!(
        err(overlapping),
        DiscoveryError::MemoryBanksOverlap { .. }
    ));
}

#[test]
fn device_overlapping_ram_is_refused() {
    let board = Board {
        extra: vec![Box::new(|w| {
            let n = w.begin_node("rogue@40001000").unwrap();
            w.property_string("compatible", "vendor,rogue").unwrap();
            reg2(w, &[(0x4000_1000, 0x100)]);
            w.end_node(n).unwrap();
        })],
        ..Board::default()
    };
    let e = err(board);
    assert!(
        matches!(e, DiscoveryError::DeviceOverlapsRam { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("device rogue@40001000 overlaps RAM"),
        "{e}"
    );
}

#[test]
fn stdout_problems_leave_no_console_and_never_stop_discovery() {
    // A device the payload has no driver for (or a dangling path or alias) is no console,
    // not an error: the payload runs silently and the boot goes on.
    let no_driver = Board {
        stdout_path: Some("/cpus"),
        ..Board::default()
    };
    assert_eq!(discover(&no_driver.build()).unwrap().console, None);

    let missing = Board {
        stdout_path: Some("/serial@1234:115200"),
        ..Board::default()
    };
    assert_eq!(discover(&missing.build()).unwrap().console, None);

    // An alias naming itself must not recurse (fdt's own alias lookup would).
    let looping = Board {
        stdout_path: Some("serial0"),
        aliases: vec![("serial0", "serial0")],
        ..Board::default()
    };
    assert_eq!(discover(&looping.build()).unwrap().console, None);

    let unknown_alias = Board {
        stdout_path: Some("serial1"),
        ..Board::default()
    };
    assert_eq!(discover(&unknown_alias.build()).unwrap().console, None);

    let aliased = Board {
        stdout_path: Some("uart0:115200n8"),
        aliases: vec![("uart0", "/pl011@9000000")],
        ..Board::default()
    };
    assert_eq!(
        discover(&aliased.build()).unwrap().console,
        pl011(0x900_0000, 0x1000)
    );
}

#[test]
fn module_problems_are_reported() {
    const KERNEL: &[&str] = &["multiboot,kernel", "multiboot,module"];
    const RAMDISK: &[&str] = &["multiboot,ramdisk", "multiboot,module"];
    let two_kernels = Board {
        chosen_children: vec![
            module("module@50000000", KERNEL, Some((0x5000_0000, 0x1000)), None),
            module("module@51000000", KERNEL, Some((0x5100_0000, 0x1000)), None),
        ],
        ..Board::default()
    };
    let e = err(two_kernels);
    assert!(
        matches!(e, DiscoveryError::DuplicateModule { kind: "kernel", .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "two multiboot,kernel modules under /chosen: module@50000000 and module@51000000"
    );

    let no_reg = Board {
        chosen_children: vec![module("module@50000000", KERNEL, None, None)],
        ..Board::default()
    };
    assert!(matches!(
        err(no_reg),
        DiscoveryError::ModuleWithoutReg { .. }
    ));

    let zero_size = Board {
        chosen_children: vec![module(
            "module@5c000000",
            RAMDISK,
            Some((0x5c00_0000, 0)),
            None,
        )],
        ..Board::default()
    };
    assert!(matches!(
        err(zero_size),
        DiscoveryError::ModuleWithoutReg { .. }
    ));

    let ramdisk_only = Board {
        chosen_children: vec![module(
            "module@5c000000",
            RAMDISK,
            Some((0x5c00_0000, 0x1000)),
            None,
        )],
        ..Board::default()
    };
    let blob = ramdisk_only.build();
    let modules = discover(&blob).unwrap().modules;
    assert_eq!(modules.kernel, None, "no kernel module is not an error");
    assert_eq!(modules.ramdisk, Some(r(0x5c00_0000, 0x1000)));
}

/// A simple-bus whose `ranges` move its children, an I2C bus whose children are not MMIO, and
/// a bus whose `ranges` window its child straddles.
#[test]
fn bus_ranges_translate_child_addresses() {
    let board = Board {
        extra: vec![Box::new(|w| {
            let bus = w.begin_node("soc@20000000").unwrap();
            w.property_string("compatible", "simple-bus").unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 1).unwrap();
            // child 0x0..0x100000 -> CPU 0x2000_0000
            w.property("ranges", &be_cells(&[0x0, 0x0, 0x2000_0000, 0x10_0000]))
                .unwrap();
            let dev = w.begin_node("timer@3000").unwrap();
            w.property("reg", &be_cells(&[0x3000, 0x100])).unwrap();
            w.end_node(dev).unwrap();
            let i2c = w.begin_node("i2c@5000").unwrap();
            w.property("reg", &be_cells(&[0x5000, 0x1000])).unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 0).unwrap();
            let eeprom = w.begin_node("eeprom@50").unwrap();
            w.property_u32("reg", 0x50).unwrap();
            w.end_node(eeprom).unwrap();
            w.end_node(i2c).unwrap();
            w.end_node(bus).unwrap();
        })],
        ..Board::default()
    };
    let blob = board.build();
    let info = discover(&blob).unwrap();
    assert!(covers(&info.mmio, 0x2000_3000, 0x100), "{:?}", info.mmio);
    assert!(covers(&info.mmio, 0x2000_5000, 0x1000));
    assert!(
        !covers(&info.mmio, 0x2000_0000, 0x1000),
        "described bus: no whole window"
    );
    assert!(!covers(&info.mmio, 0x50, 1), "I2C child is not MMIO");

    let straddling = Board {
        extra: vec![Box::new(|w| {
            let bus = w.begin_node("soc@20000000").unwrap();
            w.property_u32("#address-cells", 1).unwrap();
            w.property_u32("#size-cells", 1).unwrap();
            w.property("ranges", &be_cells(&[0x0, 0x0, 0x2000_0000, 0x1000]))
                .unwrap();
            let dev = w.begin_node("dev@f00").unwrap();
            w.property("reg", &be_cells(&[0xf00, 0x200])).unwrap();
            w.end_node(dev).unwrap();
            w.end_node(bus).unwrap();
        })],
        ..Board::default()
    };
    assert!(matches!(err(straddling), DiscoveryError::BadReg { .. }));
}

#[test]
fn format_errors_pass_through() {
    assert_eq!(
        discover(&[0u8; 64]).unwrap_err(),
        DiscoveryError::Format(FdtFormatError::BadMagic)
    );
    assert_eq!(
        DiscoveryError::Format(FdtFormatError::BadMagic).to_string(),
        "not a device tree: bad magic"
    );
    let dtb = fixture("virt-modules.dtb");
    assert!(matches!(
        discover(&dtb[..dtb.len() - 1]).unwrap_err(),
        DiscoveryError::Format(FdtFormatError::Truncated { .. })
    ));
}

#[test]
fn find_console_finds_the_uart_and_refuses_garbage() {
    let dtb = common::fixture("virt-gicv3.dtb");
    let console = platform::fdt_discovery::find_console(&dtb).expect("console");
    assert_eq!(console.regs.base, 0x0900_0000);
    assert!(platform::fdt_discovery::find_console(b"not a device tree at all, no").is_none());
}

/// The blob exactly as QEMU hands it to the payload after `-dtb` (read back from guest
/// memory): QEMU edits /chosen and /memory in place with libfdt, which can leave NOP tags.
#[test]
fn blob_as_loaded_by_qemu_is_discovered() {
    let mut dtb = common::fixture("virt-as-loaded-by-qemu.dtb");
    assert!(
        platform::fdt_check::check(&dtb).is_err(),
        "QEMU's blob has NOP tags"
    );
    let removed = platform::fdt_check::strip_nops(&mut dtb).expect("strip");
    assert!(removed > 0);
    let info = platform::discover(&dtb).unwrap_or_else(|e| panic!("discover: {e}"));
    assert!(platform::fdt_discovery::find_console(&dtb).is_some());
    assert!(info.modules.kernel.is_some());
}

/// A `reg` that is not a whole number of (address, size) entries is refused, not read in
/// part; a bus with more than two address cells is left out of the host's MMIO.
#[test]
fn a_reg_with_a_partial_entry_or_too_many_cells_is_refused() {
    let bus = |address_cells: u32, reg: &'static [u32]| -> Board {
        Board {
            extra: vec![Box::new(move |w| {
                let bus = w.begin_node("soc@20000000").unwrap();
                w.property_string("compatible", "simple-bus").unwrap();
                w.property_u32("#address-cells", address_cells).unwrap();
                w.property_u32("#size-cells", 1).unwrap();
                // child 0x0..0x100000 -> CPU 0x2000_0000
                let mut ranges = vec![0; address_cells as usize];
                ranges.extend([0x0, 0x2000_0000, 0x10_0000]);
                w.property("ranges", &be_cells(&ranges)).unwrap();
                let dev = w.begin_node("timer@3000").unwrap();
                w.property("reg", &be_cells(reg)).unwrap();
                w.end_node(dev).unwrap();
                w.end_node(bus).unwrap();
            })],
            ..Board::default()
        }
    };
    let blob = bus(1, &[0x3000, 0x100]).build();
    let whole = discover(&blob).unwrap();
    assert!(covers(&whole.mmio, 0x2000_3000, 0x100), "{:?}", whole.mmio);
    let partial = bus(1, &[0x3000, 0x100, 0x4000]);
    assert!(matches!(err(partial), DiscoveryError::BadReg { .. }));
    // With three address cells the bus is not MMIO EL2 understands: its children stay out
    // of the host's MMIO, whatever their `reg` says.
    let blob = bus(3, &[0x0, 0x0, 0x3000, 0x100]).build();
    let info = discover(&blob).unwrap();
    assert!(!covers(&info.mmio, 0x2000_3000, 0x100), "{:?}", info.mmio);
}
