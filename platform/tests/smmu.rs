//! The SMMUv3 EL2 takes: found with its streams, kept out of the host's MMIO, and removed
//! (with the references to it) from the host's DTB. Fixture: QEMU 7.2 `virt,iommu=smmuv3`.

mod common;

use common::{fixture, flatten};
use platform::MemRange;
use platform::fdt_discovery::discover;
use platform::host_dtb::{HostDtbEdits, write_host_dtb};

#[test]
fn the_smmu_and_the_pcie_streams_behind_it_are_discovered() {
    let dtb = fixture("virt-smmuv3.dtb");
    let info = discover(&dtb).unwrap();
    let smmu = info.smmu.expect("an SMMUv3");
    assert_eq!(smmu.regs, MemRange::new(0x905_0000, 0x2_0000).unwrap());
    assert!(smmu.phandle.is_some());
    // pcie@10000000: iommu-map = <0x0 &smmu 0x0 0x10000>.
    assert_eq!(smmu.stream_id_end, 0x1_0000);
    assert_eq!(smmu.masters, 1);
}

#[test]
fn the_smmu_registers_are_not_host_mmio() {
    let dtb = fixture("virt-smmuv3.dtb");
    let info = discover(&dtb).unwrap();
    let smmu = info.smmu.unwrap().regs;
    for m in info.mmio.as_slice() {
        assert!(!m.overlaps(&smmu), "host MMIO {m} covers the SMMU {smmu}");
    }
    // The neighbours stay: fw-cfg below, the platform bus above are still there.
    assert!(info.mmio.as_slice().iter().any(|m| m.base == 0x903_0000));
}

#[test]
fn a_board_without_an_smmu_has_none() {
    let dtb = fixture("virt-gicv3.dtb");
    assert_eq!(discover(&dtb).unwrap().smmu, None);
}

#[test]
fn the_host_dtb_has_no_smmu_node_and_no_iommu_map() {
    let dtb = fixture("virt-smmuv3.dtb");
    let mut out = vec![0u8; 2 << 20];
    let size = write_host_dtb(&dtb, &HostDtbEdits::default(), &mut out).unwrap();
    let before = flatten(&dtb);
    let after = flatten(&out[..size]);
    assert!(before.iter().any(|n| n.path.contains("smmuv3@")));
    assert!(!after.iter().any(|n| n.path.contains("smmuv3@")));
    let pcie = after
        .iter()
        .find(|n| n.path.ends_with("pcie@10000000"))
        .expect("the PCIe node stays");
    assert_eq!(pcie.prop("iommu-map"), None);
    assert_eq!(pcie.prop("iommu-map-mask"), None);
    // MSIs would be DMA writes through the SMMU to a doorbell EL2's table does not map.
    assert_eq!(pcie.prop("msi-map"), None);
    // Everything else of the PCIe node is copied.
    let old = before
        .iter()
        .find(|n| n.path.ends_with("pcie@10000000"))
        .unwrap();
    assert_eq!(pcie.props.len() + 2, old.props.len());
    // The host's copy still parses as a board without an SMMU.
    assert_eq!(discover(&out[..size]).unwrap().smmu, None);
}
