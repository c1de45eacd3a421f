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
    assert_eq!(host.cpus, info.cpus);
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
