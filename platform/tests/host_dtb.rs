//! `host_dtb::write_host_dtb`: the rewritten blob is re-parsed with `fdt` and compared with
//! its input node by node.

mod common;

use common::{FlatNode, cells, fixture, flatten, memreserve, u64_prop};
use platform::fdt_discovery::discover;
use platform::fdt_discovery::dma_masters::DmaPolicy;
use platform::host_dtb::{HostDtbEdits, HostDtbError, write_host_dtb};
use platform::{FdtFormatError, MemRange};

const CARVEOUT: (u64, u64) = (0x7e00_0000, 0x200_0000);

fn rewrite(dtb: &[u8], edits: &HostDtbEdits<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 64 * 1024];
    let len = write_host_dtb(dtb, edits, &mut out).unwrap();
    out.truncate(len);
    out
}

fn node<'n>(tree: &'n [FlatNode], path: &str) -> &'n FlatNode {
    tree.iter()
        .find(|n| n.path == path)
        .unwrap_or_else(|| panic!("no node {path}"))
}

/// The input tree minus what the rewrite is allowed to change: module nodes and the edited
/// `/chosen` properties, and everything under `/reserved-memory`.
fn untouched(tree: &[FlatNode]) -> Vec<FlatNode> {
    tree.iter()
        .filter(|n| {
            !n.path.starts_with("/chosen/module@") && !n.path.starts_with("/reserved-memory")
        })
        .map(|n| {
            let mut n = n.clone();
            if n.path == "/chosen" {
                n.props.retain(|(name, _)| {
                    !matches!(
                        name.as_str(),
                        "bootargs" | "linux,initrd-start" | "linux,initrd-end"
                    )
                });
            }
            n
        })
        .collect()
}

#[test]
fn modules_are_replaced_by_bootargs_initrd_and_reserved_memory() {
    let input = fixture("virt-modules.dtb");
    let info = discover(&input).unwrap();
    let kernel = info.modules.kernel.unwrap();
    let ramdisk = info.modules.ramdisk.unwrap();
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        bootargs: kernel.bootargs,
        initrd: Some((ramdisk.base, ramdisk.end())),
        withhold_dma: None,
    };
    let output = rewrite(&input, &edits);
    let (before, after) = (flatten(&input), flatten(&output));

    let chosen = node(&after, "/chosen");
    assert!(
        after.iter().all(|n| !n.path.starts_with("/chosen/module")),
        "modules removed"
    );
    assert_eq!(
        chosen.prop("bootargs"),
        Some(&b"console=ttyAMA0 earlycon rdinit=/init\0"[..])
    );
    assert_eq!(
        u64_prop(chosen.prop("linux,initrd-start").unwrap()),
        0x5c00_0000
    );
    assert_eq!(
        u64_prop(chosen.prop("linux,initrd-end").unwrap()),
        0x5c40_0000
    );

    let reserved = node(&after, "/reserved-memory");
    assert_eq!(cells(reserved.prop("#address-cells").unwrap()), [2]);
    assert_eq!(cells(reserved.prop("#size-cells").unwrap()), [2]);
    assert_eq!(reserved.prop("ranges"), Some(&[][..]));
    let el2 = node(&after, "/reserved-memory/el2@7e000000");
    assert_eq!(
        cells(el2.prop("reg").unwrap()),
        [0, 0x7e00_0000, 0, 0x200_0000]
    );
    assert_eq!(el2.prop("no-map"), Some(&[][..]));

    // Everything else is byte-identical, in the same order.
    assert_eq!(untouched(&after), untouched(&before));
    assert_eq!(memreserve(&output), memreserve(&input));
    assert_eq!(output[28..32], input[28..32], "boot_cpuid_phys");

    // The host's view: no modules, the carve-out reserved, the same machine otherwise.
    let host = discover(&output).unwrap();
    assert_eq!(host.modules.kernel, None);
    assert_eq!(host.modules.ramdisk, None);
    assert_eq!(
        host.reserved.as_slice(),
        &[MemRange::new(CARVEOUT.0, CARVEOUT.1).unwrap()]
    );
    assert_eq!(host.memory, info.memory);
    assert_eq!(host.mmio, info.mmio);
    assert_eq!(format!("{:?}", host.cpus), format!("{:?}", info.cpus));
    assert_eq!(host.dtb_size, output.len());
}

#[test]
fn existing_chosen_and_reserved_memory_are_edited_in_place() {
    let input = fixture("virt-reserved.dtb");
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT, (0x4000_0000, 0x20_0000)],
        bootargs: Some("console=ttyAMA0"),
        initrd: None,
        withhold_dma: None,
    };
    let output = rewrite(&input, &edits);
    let (before, after) = (flatten(&input), flatten(&output));

    let names = |n: &FlatNode| n.props.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let chosen = node(&after, "/chosen");
    assert_eq!(
        names(chosen),
        ["#address-cells", "#size-cells", "stdout-path", "bootargs"],
        "bootargs replaced where it was, stale initrd dropped"
    );
    assert_eq!(chosen.prop("bootargs"), Some(&b"console=ttyAMA0\0"[..]));

    let children: Vec<&str> = after
        .iter()
        .filter_map(|n| n.path.strip_prefix("/reserved-memory/"))
        .collect();
    assert_eq!(
        children,
        [
            "firmware@7ff00000",
            "dynamic-pool",
            "el2@7e000000",
            "el2@40000000"
        ]
    );
    assert_eq!(
        node(&after, "/reserved-memory"),
        node(&before, "/reserved-memory")
    );
    assert_eq!(
        node(&after, "/reserved-memory/firmware@7ff00000"),
        node(&before, "/reserved-memory/firmware@7ff00000")
    );
    assert_eq!(untouched(&after), untouched(&before));
    assert_eq!(memreserve(&output), [(0x4800_0000, 0x10_0000)]);

    // Without new bootargs the loader's stay.
    let kept = rewrite(
        &input,
        &HostDtbEdits {
            carveouts: &[],
            bootargs: None,
            initrd: Some((1, 2)),
            withhold_dma: None,
        },
    );
    let chosen = node(&flatten(&kept), "/chosen").clone();
    assert_eq!(chosen.prop("bootargs"), Some(&b"loader args\0"[..]));
    assert_eq!(u64_prop(chosen.prop("linux,initrd-start").unwrap()), 1);
    assert_eq!(u64_prop(chosen.prop("linux,initrd-end").unwrap()), 2);
}

#[test]
fn rewriting_twice_with_the_same_carveout_is_refused() {
    let input = fixture("virt-gicv3.dtb");
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        ..HostDtbEdits::default()
    };
    let once = rewrite(&input, &edits);
    let mut out = vec![0u8; 64 * 1024];
    assert!(matches!(
        write_host_dtb(&once, &edits, &mut out),
        Err(HostDtbError::DuplicateCarveoutNode { .. })
    ));
}

#[test]
fn too_small_buffer_is_an_error_and_writes_nothing() {
    let input = fixture("virt-modules.dtb");
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        bootargs: Some("x"),
        initrd: None,
        withhold_dma: None,
    };
    let needed = rewrite(&input, &edits).len();
    let mut out = vec![0u8; needed - 1];
    let e = write_host_dtb(&input, &edits, &mut out).unwrap_err();
    assert_eq!(
        e,
        HostDtbError::BufferTooSmall {
            needed,
            available: needed - 1
        }
    );
    assert_eq!(
        e.to_string(),
        format!("host DTB needs {needed} bytes, buffer holds {}", needed - 1)
    );
    assert!(out.iter().all(|&b| b == 0));
    let mut exact = vec![0u8; needed];
    assert_eq!(write_host_dtb(&input, &edits, &mut exact), Ok(needed));
}

#[test]
fn bad_edits_are_refused() {
    let input = fixture("virt-gicv3.dtb");
    let mut out = vec![0u8; 64 * 1024];
    let mut run = |edits: HostDtbEdits<'_>| write_host_dtb(&input, &edits, &mut out).unwrap_err();
    assert_eq!(
        run(HostDtbEdits {
            carveouts: &[(0x7e00_0000, 0)],
            ..Default::default()
        }),
        HostDtbError::BadCarveout {
            base: 0x7e00_0000,
            size: 0
        }
    );
    assert!(matches!(
        run(HostDtbEdits {
            carveouts: &[(0x1000, 0x2000), (0x2000, 0x1000)],
            ..Default::default()
        }),
        HostDtbError::OverlappingCarveouts { .. }
    ));
    assert_eq!(
        run(HostDtbEdits {
            initrd: Some((2, 1)),
            ..Default::default()
        }),
        HostDtbError::BadInitrd { start: 2, end: 1 }
    );
    assert!(matches!(
        run(HostDtbEdits {
            bootargs: Some("nul\0inside"),
            ..Default::default()
        }),
        HostDtbError::Writer { .. }
    ));
    let mut out = vec![0u8; 64];
    assert_eq!(
        write_host_dtb(&[0u8; 64], &HostDtbEdits::default(), &mut out),
        Err(HostDtbError::Format(FdtFormatError::BadMagic))
    );
}

/// dtc (device-tree-compiler) must accept the rewritten blob.
#[test]
fn dtc_accepts_the_rewritten_blob() {
    if std::process::Command::new("dtc")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("note: dtc not on PATH, skipping the dtc validity check");
        return;
    }
    let input = fixture("virt-modules.dtb");
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        bootargs: Some("console=ttyAMA0"),
        initrd: Some((0x5c00_0000, 0x5c40_0000)),
        withhold_dma: Some(DmaPolicy::default()),
    };
    let output = rewrite(&input, &edits);
    let path = std::env::temp_dir().join(format!("platform-host-dtb-{}.dtb", std::process::id()));
    std::fs::write(&path, &output).unwrap();
    let result = std::process::Command::new("dtc")
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        result.status.success(),
        "dtc: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let dts = String::from_utf8(result.stdout).unwrap();
    assert!(dts.contains("el2@7e000000 {"), "{dts}");
    assert!(dts.contains("no-map;"));
    assert!(dts.contains("bootargs = \"console=ttyAMA0\";"));
    assert!(!dts.contains("multiboot"));
}

/// Node paths of `tree`.
fn node_paths(tree: &[FlatNode]) -> Vec<String> {
    tree.iter().map(|n| n.path.clone()).collect()
}

#[test]
fn withheld_dma_masters_leave_the_host_dtb_and_everything_else_stays() {
    let input = fixture("virt-modules.dtb");
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        withhold_dma: Some(DmaPolicy::default()),
        ..HostDtbEdits::default()
    };
    let output = flatten(&rewrite(&input, &edits));
    let withheld = |path: &str| {
        path.starts_with("/fw-cfg@")
            || path.starts_with("/virtio_mmio@")
            || path.starts_with("/pcie@")
            || path.starts_with("/intc@8000000/its@")
    };
    let expected: Vec<String> = node_paths(&untouched(&flatten(&input)))
        .into_iter()
        .filter(|p| !withheld(p))
        .collect();
    let got: Vec<String> = node_paths(&untouched(&output));
    assert_eq!(got, expected);
    assert!(node(&output, "/intc@8000000").prop("reg").is_some());
    assert!(node(&output, "/pl011@9000000").prop("reg").is_some());
}

#[test]
fn without_withholding_every_dma_master_stays() {
    let input = fixture("virt-modules.dtb");
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        ..HostDtbEdits::default()
    };
    let output = flatten(&rewrite(&input, &edits));
    for path in [
        "/fw-cfg@9020000",
        "/virtio_mmio@a000000",
        "/pcie@10000000",
        "/intc@8000000/its@8080000",
    ] {
        node(&output, path);
    }
    assert!(node(&output, "/pcie@10000000").prop("msi-map").is_some());
}

#[test]
fn references_to_withheld_nodes_are_removed_from_kept_nodes() {
    let input = fixture("board-dma.dtb");
    let smmu = ["arm,smmu-v3"];
    let edits = HostDtbEdits {
        withhold_dma: Some(DmaPolicy { el2_iommus: &smmu }),
        ..HostDtbEdits::default()
    };
    let before = flatten(&input);
    let after = flatten(&rewrite(&input, &edits));
    // The ITS and the PL330 go; the bridge and the MMC behind EL2's SMMU stay, without
    // their MSI routes to the ITS and without their references to the SMMU (EL2 owns it,
    // so the host programs physical addresses); the UART stays without its DMA channels.
    for gone in [
        "/interrupt-controller@f9000000/msi-controller@f9020000",
        "/soc/dma-controller@fd500000",
        "/pcie@c0000000",
        "/iommu@fd900000",
    ] {
        assert!(after.iter().all(|n| n.path != gone), "{gone} kept");
    }
    let pcie = node(&after, "/pcie@e0000000");
    assert!(pcie.prop("msi-map").is_none() && pcie.prop("msi-map-mask").is_none());
    assert!(node(&before, "/pcie@e0000000").prop("iommu-map").is_some());
    assert!(pcie.prop("iommu-map").is_none());
    let mmc = node(&after, "/soc/mmc@ff160000");
    assert!(mmc.prop("msi-parent").is_none());
    assert!(node(&before, "/soc/mmc@ff160000").prop("iommus").is_some());
    assert!(mmc.prop("iommus").is_none());
    let uart = node(&after, "/soc/serial@ff000000");
    assert!(uart.prop("dmas").is_none() && uart.prop("dma-names").is_none());
    assert_eq!(
        uart.props.len(),
        node(&before, "/soc/serial@ff000000").props.len() - 2
    );
    // The GIC keeps everything but its ITS child.
    assert_eq!(
        node(&after, "/interrupt-controller@f9000000").props,
        node(&before, "/interrupt-controller@f9000000").props
    );
}

#[test]
fn real_boards_lose_their_unconfined_masters_and_dangling_dma_references() {
    for name in ["zynqmp-zcu102-rev1.0.dtb", "juno-r2.dtb"] {
        let input = fixture(name);
        let edits = HostDtbEdits {
            withhold_dma: Some(DmaPolicy::default()),
            ..HostDtbEdits::default()
        };
        let mut out = vec![0u8; 256 * 1024];
        let len = write_host_dtb(&input, &edits, &mut out).unwrap();
        let after = flatten(&out[..len]);
        let before = flatten(&input);
        assert!(after.len() < before.len(), "{name}: nothing withheld");
        // Every remaining `dmas` names a DMA controller that is still there.
        let phandles: Vec<u32> = after
            .iter()
            .filter_map(|n| n.prop("phandle").map(|p| cells(p)[0]))
            .collect();
        for node in &after {
            if let Some(dmas) = node.prop("dmas") {
                assert!(
                    phandles.contains(&cells(dmas)[0]),
                    "{name}: {} keeps dmas to a withheld controller",
                    node.path
                );
            }
        }
    }
}

/// The boot option (no withholding) keeps a real board's tree whole, property names longer
/// than the specification's 31 characters included (zcu102's DWC3 USB controllers have
/// `snps,quirk-frame-length-adjustment`, which `vm-fdt` alone refuses to write).
#[test]
fn real_boards_keep_every_node_and_property_when_nothing_is_withheld() {
    for name in ["zynqmp-zcu102-rev1.0.dtb", "juno-r2.dtb"] {
        let input = fixture(name);
        let mut out = vec![0u8; 256 * 1024];
        let len = write_host_dtb(&input, &HostDtbEdits::default(), &mut out)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = flatten(&out[..len]);
        let before = flatten(&input);
        // `/chosen` loses stale initrd properties (no initrd here); all else is the same.
        let outside_chosen = |tree: Vec<FlatNode>| -> Vec<FlatNode> {
            tree.into_iter().filter(|n| n.path != "/chosen").collect()
        };
        assert_eq!(outside_chosen(after), outside_chosen(before), "{name}");
    }
    let zcu102 = flatten(&fixture("zynqmp-zcu102-rev1.0.dtb"));
    assert!(
        zcu102
            .iter()
            .flat_map(|n| &n.props)
            .any(|(name, _)| name.len() > 31),
        "the fixture no longer has a long property name to carry over"
    );
}

fn rewrite_board(board: &common::Board, edits: &HostDtbEdits<'_>) -> Vec<FlatNode> {
    flatten(&rewrite(&board.build(), edits))
}

#[test]
fn adjacent_carveouts_and_an_empty_initrd_are_accepted() {
    let carveouts = [(0x7e00_0000, 0x100_0000), (0x7f00_0000, 0x100_0000)];
    let edits = HostDtbEdits {
        carveouts: &carveouts,
        initrd: Some((0x4800_0000, 0x4800_0000)),
        ..HostDtbEdits::default()
    };
    let after = flatten(&rewrite(&fixture("virt-gicv3.dtb"), &edits));
    node(&after, "/reserved-memory/el2@7e000000");
    node(&after, "/reserved-memory/el2@7f000000");
    let chosen = node(&after, "/chosen");
    assert_eq!(
        u64_prop(chosen.prop("linux,initrd-end").unwrap()),
        0x4800_0000
    );
}

/// A board with no `/chosen`: a root with a memory node and a UART.
fn board_without_chosen() -> Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let mem = w.begin_node("memory@40000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    common::reg2(&mut w, &[(0x4000_0000, 0x4000_0000)]);
    w.end_node(mem).unwrap();
    let uart = w.begin_node("pl011@9000000").unwrap();
    w.property_string("compatible", "arm,pl011").unwrap();
    common::reg2(&mut w, &[(0x900_0000, 0x1000)]);
    w.end_node(uart).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn a_blob_without_chosen_gets_one_for_bootargs_alone() {
    let edits = HostDtbEdits {
        bootargs: Some("console=ttyAMA0"),
        ..HostDtbEdits::default()
    };
    let after = flatten(&rewrite(&board_without_chosen(), &edits));
    assert_eq!(after.iter().filter(|n| n.path == "/chosen").count(), 1);
    assert_eq!(
        node(&after, "/chosen").prop("bootargs"),
        Some(&b"console=ttyAMA0\0"[..])
    );
}

#[test]
fn a_blob_without_chosen_gets_one_for_an_initrd_alone() {
    let edits = HostDtbEdits {
        initrd: Some((0x4800_0000, 0x4900_0000)),
        ..HostDtbEdits::default()
    };
    let after = flatten(&rewrite(&board_without_chosen(), &edits));
    let chosen = node(&after, "/chosen");
    assert_eq!(
        u64_prop(chosen.prop("linux,initrd-start").unwrap()),
        0x4800_0000
    );
    assert_eq!(
        u64_prop(chosen.prop("linux,initrd-end").unwrap()),
        0x4900_0000
    );
}

#[test]
fn chosen_keeps_its_children_that_are_not_modules() {
    let mut board = common::Board::default();
    board.chosen_children.push(common::module(
        "module@48000000",
        &["multiboot,kernel", "multiboot,module"],
        Some((0x4800_0000, 0x10_0000)),
        None,
    ));
    board.chosen_children.push(Box::new(|w| {
        let fb = w.begin_node("framebuffer@50000000").unwrap();
        w.property_string("compatible", "simple-framebuffer")
            .unwrap();
        common::reg2(w, &[(0x5000_0000, 0x10_0000)]);
        w.end_node(fb).unwrap();
    }));
    let after = rewrite_board(&board, &HostDtbEdits::default());
    let paths = node_paths(&after);
    assert!(
        paths.contains(&"/chosen/framebuffer@50000000".to_string()),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("/chosen/module@")),
        "{paths:?}"
    );
}

const SMMU: &[&str] = &["arm,smmu-v3"];

/// Root nodes: EL2's SMMUv3 (phandle 1), an unconfined PL330 (phandle 3), a DMA controller
/// behind the SMMU (phandle 2), and a UART at 0x9100000 whose `dmas` is `dmas`.
fn board_with_dma_clients(dmas: &'static [u32]) -> common::Board {
    let mut board = common::Board::default();
    board.extra.push(Box::new(move |w| {
        let smmu = w.begin_node("iommu@9050000").unwrap();
        w.property_string("compatible", "arm,smmu-v3").unwrap();
        common::reg2(w, &[(0x905_0000, 0x2_0000)]);
        w.property_u32("#iommu-cells", 1).unwrap();
        w.property_u32("phandle", 1).unwrap();
        w.end_node(smmu).unwrap();
        let confined = w.begin_node("dma-controller@9200000").unwrap();
        w.property_string("compatible", "test,dmac").unwrap();
        common::reg2(w, &[(0x920_0000, 0x1000)]);
        w.property("iommus", &common::be_cells(&[1, 0x20])).unwrap();
        w.property_u32("#dma-cells", 1).unwrap();
        w.property_u32("phandle", 2).unwrap();
        w.end_node(confined).unwrap();
        let pl330 = w.begin_node("dma-controller@9300000").unwrap();
        w.property_string("compatible", "arm,pl330").unwrap();
        common::reg2(w, &[(0x930_0000, 0x1000)]);
        w.property_u32("#dma-cells", 1).unwrap();
        w.property_u32("phandle", 3).unwrap();
        w.end_node(pl330).unwrap();
        let uart = w.begin_node("serial@9100000").unwrap();
        w.property_string("compatible", "arm,pl011").unwrap();
        common::reg2(w, &[(0x910_0000, 0x1000)]);
        w.property("dmas", &common::be_cells(dmas)).unwrap();
        w.property_string("dma-names", "tx").unwrap();
        w.end_node(uart).unwrap();
    }));
    board
}

fn uart_after(dmas: &'static [u32]) -> FlatNode {
    let edits = HostDtbEdits {
        withhold_dma: Some(DmaPolicy { el2_iommus: SMMU }),
        ..HostDtbEdits::default()
    };
    let after = rewrite_board(&board_with_dma_clients(dmas), &edits);
    assert!(!node_paths(&after).contains(&"/dma-controller@9300000".to_string()));
    node(&after, "/serial@9100000").clone()
}

#[test]
fn dmas_naming_a_kept_dma_controller_stay() {
    let uart = uart_after(&[2, 0]);
    assert_eq!(uart.prop("dmas").map(cells), Some(vec![2, 0]));
    assert!(uart.prop("dma-names").is_some());
}

#[test]
fn dmas_naming_a_withheld_or_missing_controller_are_dropped() {
    for dmas in [&[3u32, 0][..], &[0x99, 0], &[2]] {
        let dmas: &'static [u32] = Box::leak(dmas.to_vec().into_boxed_slice());
        let uart = uart_after(dmas);
        assert!(uart.prop("dmas").is_none(), "dmas {dmas:x?} kept");
        assert!(
            uart.prop("dma-names").is_none(),
            "dma-names kept for {dmas:x?}"
        );
    }
}

#[test]
fn an_iommu_map_naming_el2s_smmu_in_a_later_entry_is_dropped() {
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        for (name, compatible, phandle) in [
            ("iommu@9050000", "arm,smmu-v3", 1),
            ("iommu@9060000", "arm,mmu-500", 4),
        ] {
            let n = w.begin_node(name).unwrap();
            w.property_string("compatible", compatible).unwrap();
            w.property_u32("#iommu-cells", 1).unwrap();
            w.property_u32("phandle", phandle).unwrap();
            w.end_node(n).unwrap();
        }
        let pcie = w.begin_node("pcie@10000000").unwrap();
        w.property_string("device_type", "pci").unwrap();
        w.property_u32("#address-cells", 3).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        common::reg2(w, &[(0x1000_0000, 0x100_0000)]);
        let map = [0, 4, 0, 0x8000, 0x8000, 1, 0x8000, 0x8000];
        w.property("iommu-map", &common::be_cells(&map)).unwrap();
        w.end_node(pcie).unwrap();
    }));
    let after = rewrite_board(&board, &HostDtbEdits::default());
    assert!(node(&after, "/pcie@10000000").prop("iommu-map").is_none());
}

#[test]
fn a_node_inside_a_withheld_master_goes_with_it_and_references_to_it_are_dropped() {
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        let bridge = w.begin_node("bridge@c000000").unwrap();
        w.property_string("compatible", "test,bridge").unwrap();
        w.property_null("dma-coherent").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        let msi = w.begin_node("msi@c010000").unwrap();
        w.property_string("compatible", "test,msi").unwrap();
        common::reg2(w, &[(0xc01_0000, 0x1000)]);
        w.property_null("msi-controller").unwrap();
        w.property_u32("#msi-cells", 0).unwrap();
        w.property_u32("phandle", 5).unwrap();
        w.end_node(msi).unwrap();
        w.end_node(bridge).unwrap();
        let dev = w.begin_node("dev@d000000").unwrap();
        w.property_string("compatible", "test,dev").unwrap();
        common::reg2(w, &[(0xd00_0000, 0x1000)]);
        w.property_u32("msi-parent", 5).unwrap();
        w.end_node(dev).unwrap();
    }));
    let edits = HostDtbEdits {
        withhold_dma: Some(DmaPolicy::default()),
        ..HostDtbEdits::default()
    };
    let after = rewrite_board(&board, &edits);
    let paths = node_paths(&after);
    assert!(
        !paths.iter().any(|p| p.starts_with("/bridge@")),
        "{paths:?}"
    );
    assert!(node(&after, "/dev@d000000").prop("msi-parent").is_none());
}

/// A board whose `/reserved-memory` has one address and one size cell.
fn board_with_one_cell_reserved_memory() -> Vec<u8> {
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        let resv = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_null("ranges").unwrap();
        w.end_node(resv).unwrap();
    }));
    board.build()
}

#[test]
fn a_carveout_is_written_in_one_cell_reserved_memory_when_it_fits() {
    let edits = HostDtbEdits {
        carveouts: &[CARVEOUT],
        ..HostDtbEdits::default()
    };
    let after = flatten(&rewrite(&board_with_one_cell_reserved_memory(), &edits));
    let carveout = node(&after, "/reserved-memory/el2@7e000000");
    assert_eq!(
        carveout.prop("reg").map(cells),
        Some(vec![0x7e00_0000, 0x200_0000])
    );
}

#[test]
fn a_carveout_above_4_gib_is_refused_by_one_cell_reserved_memory() {
    let edits = HostDtbEdits {
        carveouts: &[(0x1_0000_0000, 0x1000)],
        ..HostDtbEdits::default()
    };
    let mut out = vec![0u8; 64 * 1024];
    assert_eq!(
        write_host_dtb(&board_with_one_cell_reserved_memory(), &edits, &mut out),
        Err(HostDtbError::CarveoutDoesNotFit {
            base: 0x1_0000_0000,
            size: 0x1000,
            address_cells: 1,
            size_cells: 1
        })
    );
}

#[test]
fn reserved_memory_regions_stay_in_the_host_dtb_whatever_they_carry() {
    // dma_masters never lists them (/reserved-memory is not a device): the host DTB must
    // not drop them either, or the host would use memory the firmware reserved.
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        let resv = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        let pool = w.begin_node("pool@50000000").unwrap();
        w.property_string("compatible", "shared-dma-pool").unwrap();
        common::reg2(w, &[(0x5000_0000, 0x10_0000)]);
        w.property_null("dma-coherent").unwrap();
        w.end_node(pool).unwrap();
        w.end_node(resv).unwrap();
    }));
    let edits = HostDtbEdits {
        withhold_dma: Some(DmaPolicy::default()),
        ..HostDtbEdits::default()
    };
    let after = rewrite_board(&board, &edits);
    node(&after, "/reserved-memory/pool@50000000");
}
