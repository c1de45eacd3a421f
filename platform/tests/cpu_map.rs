//! The CPU count and the MPIDR -> logical CPU mapping, on a 256-CPU server-shaped DTB with
//! sparse affinities (4 sockets x 16 clusters x 4 cores), as the payload builds them at boot.

mod common;

use common::Board;
use platform::cpu_map::{CpuMap, CpuMapError, SortedEntry, cpu_count};
use platform::fdt_discovery::{DiscoveryError, MAX_CPUS, discover};

/// Aff2 = socket, Aff1 = cluster, Aff0 = core: the numbering of multi-cluster servers.
fn server_mpidrs() -> Vec<u32> {
    let mut v = vec![];
    for socket in 0..4u32 {
        for cluster in 0..16u32 {
            for core in 0..4u32 {
                v.push((socket << 16) | (cluster << 8) | core);
            }
        }
    }
    v
}

fn server_dtb() -> Vec<u8> {
    Board {
        cpus: server_mpidrs(),
        ..Board::default()
    }
    .build()
}

fn dtb_mpidrs(blob: &[u8]) -> Vec<u64> {
    let info = discover(blob).unwrap();
    let mut v = vec![];
    info.cpus.for_each(|m| v.push(m));
    assert_eq!(v.len(), info.cpus.len());
    v
}

/// The MPIDRs as `CpuMap` takes them (the payload passes `Cpus::for_each`).
fn each(list: &[u64]) -> impl FnOnce(&mut dyn FnMut(u64)) + '_ {
    move |f| list.iter().for_each(|&m| f(m))
}

/// Builds the map over storage sized from `cpu_count`, as the payload does.
fn with_map<R>(boot: u64, dtb: &[u64], f: impl FnOnce(&CpuMap) -> R) -> R {
    let n = cpu_count(boot, each(dtb));
    let mut by_index = vec![0u64; n];
    let mut by_mpidr = vec![SortedEntry::default(); n];
    let map = CpuMap::build(boot, each(dtb), &mut by_index, &mut by_mpidr).unwrap();
    f(&map)
}

#[test]
fn a_256_cpu_dtb_is_discovered_with_every_cpu() {
    let mpidrs = dtb_mpidrs(&server_dtb());
    assert_eq!(mpidrs.len(), 256);
    let expected: Vec<u64> = server_mpidrs().into_iter().map(u64::from).collect();
    assert_eq!(mpidrs, expected, "DTB order, nothing dropped");
}

#[test]
fn sparse_cluster_mpidrs_map_to_their_logical_cpus() {
    let dtb = dtb_mpidrs(&server_dtb());
    // Booted on socket 2, cluster 7, core 3: it is CPU 0; the others keep DTB order.
    let boot = 0x2_07_03;
    with_map(boot, &dtb, |map| {
        assert_eq!(map.len(), 256);
        assert_eq!(map.mpidr_of(0), Some(boot));
        assert_eq!(map.logical_id(boot), Some(0));
        let mut next = 1;
        for &m in &dtb {
            if m == boot {
                continue;
            }
            assert_eq!(map.logical_id(m), Some(next), "MPIDR {m:#x}");
            assert_eq!(map.mpidr_of(next), Some(m));
            next += 1;
        }
        assert_eq!(map.mpidr_of(256), None);
    });
}

#[test]
fn mpidrs_not_in_the_dtb_have_no_logical_cpu() {
    let dtb = dtb_mpidrs(&server_dtb());
    with_map(0, &dtb, |map| {
        // Core 4 of a 4-core cluster, cluster 16, socket 4, and Aff3 = 1.
        for absent in [0x4, 0x10_00, 0x4_00_00, 0x1_0000_0000, 0x7_0f_04] {
            assert_eq!(map.logical_id(absent), None, "{absent:#x}");
        }
    });
}

#[test]
fn mpidr_bits_outside_the_affinity_fields_are_ignored() {
    let dtb = dtb_mpidrs(&server_dtb());
    with_map(0x8000_0000, &dtb, |map| {
        // MPIDR_EL1 as read: RES1 bit 31, U (bit 30), MT (bit 24).
        assert_eq!(map.logical_id(0x8000_0000 | 0x3_0f_03), Some(255));
        assert_eq!(map.logical_id(0xc100_0000 | 0x1_00_02), Some(66));
        assert_eq!(map.mpidr_of(0), Some(0));
    });
}

#[test]
fn a_boot_cpu_the_dtb_does_not_list_is_counted_and_numbered_0() {
    let dtb: Vec<u64> = vec![0x100, 0x101];
    assert_eq!(cpu_count(0x0, each(&dtb)), 3);
    assert_eq!(cpu_count(0x8000_0101, each(&dtb)), 2);
    with_map(0x0, &dtb, |map| {
        assert_eq!(map.len(), 3);
        assert_eq!(map.logical_id(0x101), Some(2));
    });
}

#[test]
fn duplicate_mpidrs_are_refused() {
    let dtb: Vec<u64> = vec![0, 0x100, 0x1, 0x100];
    let mut by_index = vec![0u64; 4];
    let mut by_mpidr = vec![SortedEntry::default(); 4];
    let e = CpuMap::build(0, each(&dtb), &mut by_index, &mut by_mpidr).err();
    assert_eq!(e, Some(CpuMapError::DuplicateMpidr(0x100)));
    assert_eq!(e.unwrap().to_string(), "two CPU nodes have MPIDR 0x100");
}

#[test]
fn storage_smaller_than_the_dtb_is_an_error_not_a_dropped_cpu() {
    let dtb: Vec<u64> = (0..10).collect();
    let mut by_index = vec![0u64; 9];
    let mut by_mpidr = vec![SortedEntry::default(); 9];
    let e = CpuMap::build(0, each(&dtb), &mut by_index, &mut by_mpidr).err();
    assert_eq!(e, Some(CpuMapError::StorageTooSmall { cpus: 9 }));
}

#[test]
fn more_cpus_than_the_sanity_bound_are_refused_by_discovery() {
    assert_eq!(
        MAX_CPUS, 4096,
        "the bound is Linux's largest NR_CPUS, not a table size"
    );
    let too_many = Board {
        cpus: (0..=MAX_CPUS as u32).collect(),
        ..Board::default()
    };
    let e = discover(&too_many.build()).unwrap_err();
    assert_eq!(e, DiscoveryError::TooManyCpus { max: MAX_CPUS });
}
