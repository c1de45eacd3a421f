//! The unconfined-DMA-master rules (platform::fdt_discovery::dma_masters) on QEMU virt's own
//! DTB and on a small SoC-shaped board.

mod common;

use common::fixture;
use platform::MemRange;
use platform::fdt_discovery::discover;
use platform::fdt_discovery::dma_masters::{
    DmaMaster, DmaPolicy, DmaReason, UNCONFINED_DMA_OPTION, host_mmio, unconfined_dma_masters,
    unconfined_dma_requested,
};
use platform::fixed_list::FixedList;

const NO_IOMMU: DmaPolicy<'static> = DmaPolicy { el2_iommus: &[] };
const SMMU_V3: DmaPolicy<'static> = DmaPolicy {
    el2_iommus: &["arm,smmu-v3"],
};

fn r(base: u64, size: u64) -> MemRange {
    MemRange { base, size }
}

fn masters(dtb: &[u8], policy: &DmaPolicy<'_>) -> Vec<DmaMaster> {
    unconfined_dma_masters(dtb, policy)
        .expect("classification succeeds")
        .as_slice()
        .to_vec()
}

fn find<'m>(list: &'m [DmaMaster], path: &str) -> Option<&'m DmaMaster> {
    list.iter().find(|m| m.path.as_str() == path)
}

fn paths(list: &[DmaMaster]) -> Vec<String> {
    list.iter().map(|m| m.path.to_string()).collect()
}

#[test]
fn qemu_virt_fw_cfg_is_an_unconfined_dma_master_with_its_registers() {
    let list = masters(&fixture("virt-gicv3.dtb"), &NO_IOMMU);
    let fw_cfg = find(&list, "/fw-cfg@9020000").expect("fw_cfg listed");
    assert_eq!(fw_cfg.reason, DmaReason::FwCfgDma);
    assert_eq!(fw_cfg.compatible.as_str(), "qemu,fw-cfg-mmio");
    assert_eq!(fw_cfg.regs.as_slice(), &[r(0x902_0000, 0x1000)]);
}

#[test]
fn qemu_virt_every_virtio_mmio_transport_is_listed() {
    let list = masters(&fixture("virt-gicv3.dtb"), &NO_IOMMU);
    let virtio: Vec<_> = list
        .iter()
        .filter(|m| m.reason == DmaReason::VirtioMmio)
        .collect();
    assert_eq!(virtio.len(), 32);
    for m in &virtio {
        assert_eq!(m.compatible.as_str(), "virtio,mmio");
        assert_eq!(m.regs.as_slice().len(), 1);
        let reg = m.regs.as_slice()[0];
        assert!(
            (0xa00_0000..0xa00_4000).contains(&reg.base) && reg.size == 0x1000,
            "{reg}"
        );
    }
}

#[test]
fn qemu_virt_its_is_listed_but_not_the_gic_itself() {
    let list = masters(&fixture("virt-gicv3.dtb"), &NO_IOMMU);
    let its = find(&list, "/intc@8000000/its@8080000").expect("ITS listed");
    assert_eq!(its.reason, DmaReason::GicIts);
    assert_eq!(its.regs.as_slice(), &[r(0x808_0000, 0x2_0000)]);
    assert!(find(&list, "/intc@8000000").is_none());
}

#[test]
fn qemu_virt_pcie_without_an_iommu_map_is_unconfined_with_its_windows() {
    let list = masters(&fixture("virt-gicv3.dtb"), &NO_IOMMU);
    let pcie = find(&list, "/pcie@10000000").expect("PCIe listed");
    assert_eq!(pcie.reason, DmaReason::PciHostNotBehindEl2Iommu);
    // The I/O window follows the 32-bit window directly: they merge.
    assert_eq!(
        pcie.regs.as_slice(),
        &[
            r(0x1000_0000, 0x2f00_0000),
            r(0x40_1000_0000, 0x1000_0000),
            r(0x80_0000_0000, 0x80_0000_0000),
        ]
    );
    // Driving an SMMU changes nothing for a bridge that has no iommu-map.
    let list = masters(&fixture("virt-gicv3.dtb"), &SMMU_V3);
    assert!(find(&list, "/pcie@10000000").is_some());
}

#[test]
fn qemu_virt_console_rtc_gpio_flash_and_gic_are_not_dma_masters() {
    let list = masters(&fixture("virt-gicv3.dtb"), &NO_IOMMU);
    for path in [
        "/pl011@9000000",
        "/pl031@9010000",
        "/pl061@9030000",
        "/flash@0",
        "/intc@8000000",
        "/memory@40000000",
    ] {
        assert!(
            find(&list, path).is_none(),
            "{path} listed: {:?}",
            paths(&list)
        );
    }
    // fw_cfg, 32 transports, the ITS and the PCIe bridge. The platform bus (an empty
    // window for devices QEMU adds at run time, each with a node of its own) is not.
    assert_eq!(list.len(), 35, "{:?}", paths(&list));
    assert!(find(&list, "/platform-bus@c000000").is_none());
}

#[test]
fn qemu_virt_gicv2_has_no_its_and_the_rest_is_the_same() {
    let list = masters(&fixture("virt-gicv2.dtb"), &NO_IOMMU);
    assert!(list.iter().all(|m| m.reason != DmaReason::GicIts));
    assert!(find(&list, "/fw-cfg@9020000").is_some());
}

#[test]
fn board_dma_controller_is_listed_and_its_client_uart_is_not() {
    let list = masters(&fixture("board-dma.dtb"), &NO_IOMMU);
    let pl330 = find(&list, "/soc/dma-controller@fd500000").expect("pl330 listed");
    assert_eq!(pl330.reason, DmaReason::DmaController);
    assert_eq!(pl330.regs.as_slice(), &[r(0xfd50_0000, 0x1000)]);
    assert!(find(&list, "/soc/serial@ff000000").is_none());
    assert!(find(&list, "/soc/gpio@ff0a0000").is_none());
    assert!(find(&list, "/soc").is_none());
}

#[test]
fn board_coherent_known_and_disabled_masters_are_listed() {
    let list = masters(&fixture("board-dma.dtb"), &NO_IOMMU);
    let reason = |path| find(&list, path).map(|m| m.reason);
    assert_eq!(reason("/soc/usb@fe200000"), Some(DmaReason::DmaCoherent));
    assert_eq!(
        reason("/soc/ethernet@ff0b0000"),
        Some(DmaReason::KnownDmaMaster)
    );
    // Disabled for the host's OS, but its registers would still be the host's to program.
    assert_eq!(
        reason("/soc/xhci@fe300000"),
        Some(DmaReason::KnownDmaMaster)
    );
}

#[test]
fn board_devices_behind_an_smmu_el2_does_not_drive_are_unconfined() {
    let list = masters(&fixture("board-dma.dtb"), &NO_IOMMU);
    let reason = |path| find(&list, path).map(|m| m.reason);
    assert_eq!(
        reason("/iommu@fd800000"),
        Some(DmaReason::IommuNotDrivenByEl2)
    );
    assert_eq!(
        reason("/soc/mmc@ff160000"),
        Some(DmaReason::BehindIommuNotDrivenByEl2)
    );
    assert_eq!(
        reason("/pcie@e0000000"),
        Some(DmaReason::PciHostNotBehindEl2Iommu)
    );
}

#[test]
fn board_devices_behind_the_smmu_el2_drives_are_confined() {
    let list = masters(&fixture("board-dma.dtb"), &SMMU_V3);
    assert!(find(&list, "/iommu@fd800000").is_none(), "EL2's own SMMU");
    assert!(find(&list, "/soc/mmc@ff160000").is_none());
    assert!(find(&list, "/pcie@e0000000").is_none());
    // The MMU-500 is not driven: it and the bridge behind it stay unconfined.
    let reason = |path| find(&list, path).map(|m| m.reason);
    assert_eq!(
        reason("/iommu@fd900000"),
        Some(DmaReason::IommuNotDrivenByEl2)
    );
    assert_eq!(
        reason("/pcie@c0000000"),
        Some(DmaReason::PciHostNotBehindEl2Iommu)
    );
    let bridge = find(&list, "/pcie@c0000000").unwrap();
    assert_eq!(
        bridge.regs.as_slice(),
        &[r(0xc000_0000, 0x200_0000)],
        "ECAM and window, merged"
    );
}

#[test]
fn the_boot_option_is_read_from_chosen() {
    assert!(!unconfined_dma_requested(&fixture("virt-modules.dtb")));
    assert!(!unconfined_dma_requested(b"not a device tree"));
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        let chosen = w.begin_node("chosen").unwrap();
        w.property_null(UNCONFINED_DMA_OPTION).unwrap();
        w.end_node(chosen).unwrap();
    }));
    assert!(unconfined_dma_requested(&board.build()));
}

#[test]
fn removing_a_hole_splits_a_range_and_keeps_the_rest() {
    let mut list = FixedList::<MemRange, 4>::new();
    list.insert_merged(r(0x1000, 0x9000)).unwrap();
    list.insert_merged(r(0x20000, 0x1000)).unwrap();
    list.remove(r(0x3000, 0x2000)).unwrap();
    assert_eq!(
        list.as_slice(),
        &[r(0x1000, 0x2000), r(0x5000, 0x5000), r(0x20000, 0x1000)]
    );
    list.remove(r(0x0, 0x4000)).unwrap();
    list.remove(r(0x20000, 0x1000)).unwrap();
    assert_eq!(list.as_slice(), &[r(0x5000, 0x5000)]);
}

#[test]
fn removing_a_hole_from_a_full_list_that_would_need_a_split_fails_unchanged() {
    let mut list = FixedList::<MemRange, 1>::new();
    list.insert_merged(r(0x1000, 0x3000)).unwrap();
    assert!(list.remove(r(0x2000, 0x1000)).is_err());
    assert_eq!(list.as_slice(), &[r(0x1000, 0x3000)]);
}

fn covered(list: &[MemRange], base: u64, size: u64) -> bool {
    list.iter()
        .any(|r| r.base <= base && base + size <= r.end())
}

fn touched(list: &[MemRange], base: u64, size: u64) -> bool {
    list.iter().any(|r| r.overlaps(&MemRange { base, size }))
}

#[test]
fn host_mmio_leaves_out_withheld_devices_and_redistributor_rd_frames() {
    let dtb = fixture("virt-gicv3.dtb");
    let info = discover(&dtb).unwrap();
    let masters = masters(&dtb, &NO_IOMMU);
    let gicr = info.gic.redistributors.as_slice();
    // QEMU virt with 4 CPUs: four redistributors of two 64 KiB frames.
    let sgi = (0..4).map(|i| r(0x80a_0000 + i * 0x2_0000 + 0x1_0000, 0x1_0000));
    let host = host_mmio(info.mmio.as_slice(), &masters, gicr, sgi).unwrap();
    let host = host.as_slice();
    for (base, size, what) in [
        (0x902_0000, 0x1000, "fw_cfg"),
        (0xa00_0000, 0x4000, "virtio-mmio"),
        (0x808_0000, 0x2_0000, "ITS"),
        (0x1000_0000, 0x2f00_0000, "PCIe windows"),
        (0x40_1000_0000, 0x1000_0000, "PCIe ECAM"),
        (0x80a_0000, 0x1_0000, "CPU 0's RD_base"),
        (0x810_0000, 0x1_0000, "CPU 3's RD_base"),
        (
            0x812_0000,
            0xee_0000,
            "GICR space past the last redistributor",
        ),
    ] {
        assert!(!touched(host, base, size), "{what} mapped: {host:x?}");
    }
    for (base, size, what) in [
        (0x800_0000, 0x1_0000, "GICD"),
        (0x80b_0000, 0x1_0000, "CPU 0's SGI_base"),
        (0x811_0000, 0x1_0000, "CPU 3's SGI_base"),
        (0x900_0000, 0x1000, "PL011"),
        (0x901_0000, 0x1000, "PL031"),
        (0x903_0000, 0x1000, "PL061"),
        (0x0, 0x800_0000, "flash"),
    ] {
        assert!(covered(host, base, size), "{what} not mapped: {host:x?}");
    }
}

#[test]
fn host_mmio_keeps_everything_when_nothing_is_withheld() {
    let dtb = fixture("virt-gicv3.dtb");
    let info = discover(&dtb).unwrap();
    let host = host_mmio(info.mmio.as_slice(), &[], &[], core::iter::empty()).unwrap();
    assert_eq!(host.as_slice(), info.mmio.as_slice());
}

#[test]
fn zcu102_devices_behind_its_mmu_500_and_its_dma_engines_are_unconfined() {
    let list = masters(&fixture("zynqmp-zcu102-rev1.0.dtb"), &SMMU_V3);
    let reason = |path| find(&list, path).map(|m| m.reason);
    assert_eq!(
        reason("/axi/iommu@fd800000"),
        Some(DmaReason::IommuNotDrivenByEl2)
    );
    for path in [
        "/axi/dma-controller@fd500000",
        "/axi/ethernet@ff0e0000",
        "/axi/mmc@ff170000",
        "/axi/ahci@fd0c0000",
        "/axi/usb@ff9d0000/usb@fe200000",
    ] {
        assert_eq!(
            reason(path),
            Some(DmaReason::BehindIommuNotDrivenByEl2),
            "{path}"
        );
    }
    assert_eq!(
        reason("/axi/pcie@fd0e0000"),
        Some(DmaReason::PciHostNotBehindEl2Iommu)
    );
    assert_eq!(
        reason("/axi/dma-controller@fd4c0000"),
        Some(DmaReason::DmaController)
    );
    for path in [
        "/axi/serial@ff000000",
        "/axi/gpio@ff0a0000",
        "/axi/i2c@ff020000",
    ] {
        assert!(find(&list, path).is_none(), "{path} listed");
    }
    assert_eq!(list.len(), 30, "{:?}", paths(&list));
}

#[test]
fn juno_iommus_gpu_pcie_and_masters_behind_mmu_401s_are_unconfined() {
    let list = masters(&fixture("juno-r2.dtb"), &NO_IOMMU);
    let reason = |path| find(&list, path).map(|m| m.reason);
    assert_eq!(reason("/gpu@2d000000"), Some(DmaReason::DmaCoherent));
    assert_eq!(
        reason("/pcie@40000000"),
        Some(DmaReason::PciHostNotBehindEl2Iommu)
    );
    assert_eq!(
        reason("/dma-controller@7ff00000"),
        Some(DmaReason::BehindIommuNotDrivenByEl2)
    );
    assert_eq!(
        reason("/iommu@7fb00000"),
        Some(DmaReason::IommuNotDrivenByEl2)
    );
    assert_eq!(list.len(), 15, "{:?}", paths(&list));
    // The console and the GIC stay the host's.
    assert!(
        list.iter().all(|m| !m.path.as_str().contains("uart")
            && !m.path.as_str().contains("interrupt-controller"))
    );
}

/// A board whose SMMUv3 (phandle 1, `#iommu-cells = cells`) EL2 drives, with `extra`
/// written after it.
fn board_with_smmu(cells: u32, extra: common::NodeWriter) -> Vec<u8> {
    let mut board = common::Board::default();
    board.extra.push(Box::new(move |w| {
        let smmu = w.begin_node("iommu@9050000").unwrap();
        w.property_string("compatible", "arm,smmu-v3").unwrap();
        common::reg2(w, &[(0x905_0000, 0x2_0000)]);
        w.property_u32("#iommu-cells", cells).unwrap();
        w.property_u32("phandle", 1).unwrap();
        w.end_node(smmu).unwrap();
    }));
    board.extra.push(extra);
    board.build()
}

/// A device at 0xa000000 behind the SMMU of [`board_with_smmu`], with `specifier` cells.
fn device_behind_smmu(specifier: usize) -> common::NodeWriter {
    Box::new(move |w| {
        let dev = w.begin_node("dev@a000000").unwrap();
        w.property_string("compatible", "test,dev").unwrap();
        common::reg2(w, &[(0xa00_0000, 0x1000)]);
        let mut iommus = vec![1u32];
        iommus.extend((0..specifier as u32).map(|i| 0x10 + i));
        w.property("iommus", &common::be_cells(&iommus)).unwrap();
        w.end_node(dev).unwrap();
    })
}

#[test]
fn a_device_behind_the_smmu_with_a_four_cell_specifier_is_confined() {
    let list = masters(&board_with_smmu(4, device_behind_smmu(4)), &SMMU_V3);
    assert_eq!(paths(&list), Vec::<String>::new());
}

#[test]
fn an_iommus_specifier_longer_than_four_cells_counts_as_not_driven() {
    let list = masters(&board_with_smmu(5, device_behind_smmu(5)), &SMMU_V3);
    let reason = find(&list, "/dev@a000000").map(|m| m.reason);
    assert_eq!(reason, Some(DmaReason::BehindIommuNotDrivenByEl2));
}

#[test]
fn a_pci_device_node_under_a_bridge_behind_the_smmu_is_confined_with_its_bridge() {
    // PCI device nodes have 3-cell bus addresses (no CPU address to withhold) and sit
    // behind the bridge's iommu-map: the bridge's verdict covers them.
    let dtb = board_with_smmu(
        1,
        Box::new(|w| {
            let pcie = w.begin_node("pcie@10000000").unwrap();
            w.property_string("compatible", "pci-host-ecam-generic")
                .unwrap();
            w.property_string("device_type", "pci").unwrap();
            w.property_u32("#address-cells", 3).unwrap();
            w.property_u32("#size-cells", 2).unwrap();
            common::reg2(w, &[(0x1000_0000, 0x100_0000)]);
            w.property("iommu-map", &common::be_cells(&[0, 1, 0, 0x1_0000]))
                .unwrap();
            let nic = w.begin_node("ethernet@0,0").unwrap();
            w.property("reg", &common::be_cells(&[0, 0, 0, 0, 0]))
                .unwrap();
            w.property_null("dma-coherent").unwrap();
            w.end_node(nic).unwrap();
            w.end_node(pcie).unwrap();
        }),
    );
    assert_eq!(paths(&masters(&dtb, &SMMU_V3)), Vec::<String>::new());
}

#[test]
fn memory_and_reserved_memory_nodes_are_never_dma_masters_whatever_they_carry() {
    // Listing them would drop them from the host's DTB: the host would lose its RAM, or
    // use memory the firmware reserved.
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        let mem = w.begin_node("memory@c0000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        common::reg2(w, &[(0xc000_0000, 0x1000_0000)]);
        w.property_null("dma-coherent").unwrap();
        w.end_node(mem).unwrap();
        let resv = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        let pool = w.begin_node("pool@d0000000").unwrap();
        w.property_string("compatible", "shared-dma-pool").unwrap();
        common::reg2(w, &[(0xd000_0000, 0x10_0000)]);
        w.property_null("dma-coherent").unwrap();
        w.end_node(pool).unwrap();
        w.end_node(resv).unwrap();
    }));
    assert_eq!(
        paths(&masters(&board.build(), &NO_IOMMU)),
        Vec::<String>::new()
    );
}

#[test]
fn every_reason_has_its_own_boot_log_description() {
    let all = [
        DmaReason::IommuNotDrivenByEl2,
        DmaReason::FwCfgDma,
        DmaReason::VirtioMmio,
        DmaReason::GicIts,
        DmaReason::PciHostNotBehindEl2Iommu,
        DmaReason::BehindIommuNotDrivenByEl2,
        DmaReason::DmaController,
        DmaReason::DmaCoherent,
        DmaReason::KnownDmaMaster,
    ];
    let words: std::collections::BTreeSet<&str> = all.iter().map(|r| r.describe()).collect();
    assert_eq!(words.len(), all.len(), "{words:?}");
    assert_eq!(DmaReason::VirtioMmio.describe(), "virtio-mmio transport");
}

/// A `dma-coherent` bus at 0xc000000 with a 32 MiB window, and one child: with a `reg`
/// if `described`.
fn coherent_bus(described: bool) -> Vec<u8> {
    let mut board = common::Board::default();
    board.extra.push(Box::new(move |w| {
        let bus = w.begin_node("bus@c000000").unwrap();
        w.property_string("compatible", "test,coherent-bus")
            .unwrap();
        w.property_null("dma-coherent").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property("ranges", &common::be_cells(&[0, 0, 0xc00_0000, 0x200_0000]))
            .unwrap();
        let dev = w.begin_node("dev@10000").unwrap();
        w.property_string("compatible", "test,dev").unwrap();
        if described {
            w.property("reg", &common::be_cells(&[0x1_0000, 0x1000]))
                .unwrap();
        }
        w.end_node(dev).unwrap();
        w.end_node(bus).unwrap();
    }));
    board.build()
}

#[test]
fn a_withheld_bus_whose_devices_are_not_described_takes_its_whole_window() {
    // mmio maps such a bus's windows to the host: leaving them would hand the host the
    // registers of the devices on it.
    let list = masters(&coherent_bus(false), &NO_IOMMU);
    let bus = find(&list, "/bus@c000000").expect("the bus is listed");
    assert_eq!(bus.regs.as_slice(), &[r(0xc00_0000, 0x200_0000)]);
}

#[test]
fn a_withheld_bus_whose_devices_are_described_takes_their_registers_only() {
    let list = masters(&coherent_bus(true), &NO_IOMMU);
    let bus = find(&list, "/bus@c000000").expect("the bus is listed");
    assert_eq!(bus.regs.as_slice(), &[r(0xc01_0000, 0x1000)]);
}

#[test]
fn a_withheld_controller_keeps_its_registers_and_its_unmapped_children_add_none() {
    // An I2C-like controller: its children's `reg` are bus addresses (#size-cells = 0),
    // not memory, and must neither be withheld nor make the walk fail.
    let mut board = common::Board::default();
    board.extra.push(Box::new(|w| {
        let i2c = w.begin_node("i2c@b000000").unwrap();
        w.property_string("compatible", "test,i2c").unwrap();
        w.property_null("dma-coherent").unwrap();
        common::reg2(w, &[(0xb00_0000, 0x1000)]);
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let eeprom = w.begin_node("eeprom@50").unwrap();
        w.property_string("compatible", "test,eeprom").unwrap();
        w.property_u32("reg", 0x50).unwrap();
        w.end_node(eeprom).unwrap();
        w.end_node(i2c).unwrap();
    }));
    let list = masters(&board.build(), &NO_IOMMU);
    let i2c = find(&list, "/i2c@b000000").expect("the controller is listed");
    assert_eq!(i2c.regs.as_slice(), &[r(0xb00_0000, 0x1000)]);
}

#[test]
fn a_path_cut_inside_a_multibyte_character_is_cut_before_it() {
    // Node names are ASCII by the specification; a blob with a UTF-8 name straddling the
    // path buffer's end must still give a valid (cut) name, not a panic or a hang.
    // "/" + 30 + "/" + 30 + "/" is 63 bytes: the third name's first character straddles
    // the 64-byte path buffer's end (node names are at most 31 characters).
    let bus_a = format!("a{}", "b".repeat(29));
    let bus_b = format!("c{}", "d".repeat(29));
    let placeholder = "XYdev@a000000";
    let mut board = common::Board::default();
    board.extra.push(Box::new(move |w| {
        let a = w.begin_node(&bus_a).unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        let b = w.begin_node(&bus_b).unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        let dev = w.begin_node(placeholder).unwrap();
        w.property_null("dma-coherent").unwrap();
        common::reg2(w, &[(0xa00_0000, 0x1000)]);
        w.end_node(dev).unwrap();
        w.end_node(b).unwrap();
        w.end_node(a).unwrap();
    }));
    let mut dtb = board.build();
    let at = dtb
        .windows(placeholder.len())
        .position(|w| w == placeholder.as_bytes())
        .expect("the name is in the blob");
    dtb[at..at + 2].copy_from_slice("é".as_bytes());
    let list = masters(&dtb, &NO_IOMMU);
    assert_eq!(list.len(), 1, "{:?}", paths(&list));
    let path = list[0].path.to_string();
    assert!(path.starts_with("/abbb"), "{path}");
    assert_eq!(list[0].regs.as_slice(), &[r(0xa00_0000, 0x1000)]);
}
