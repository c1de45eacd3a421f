//! The host's DMA view through every transition that changes what the host may access:
//! with the test's fake (every `World` has one) and with the real stage-1 and stage-2 tables
//! an SMMU walks, walked after each step (stage 2 by a model of the SMMU's walk).

extern crate std;

use super::tests::{FAKE_BASE, Memory, World, pfn};
use super::*;
use crate::dma_table::{DmaTable, table_pages, table_pages_stage2};
use crate::host_dma::HostDma;
use crate::pgtable::stage2_config;
use crate::pool::test_memory::Arena;
use crate::smmuv3::s2_walk::{self, S2Config};
use crate::smmuv3::tables::host_ste_s2;
use crate::tlb::RecordingTlb;
use std::vec::Vec;

const GIB: usize = 1 << 30;

fn granted(w: &World<'_>, pa: usize) -> bool {
    w.own.host_dma().unwrap().is_granted(pa)
}

#[test]
fn pages_the_host_gives_away_leave_its_dma_view_in_the_call() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let page = FAKE_BASE + (8 << 20);
    assert!(granted(&w, page));
    let a = w.create_vm(0, 8);
    assert!(
        !granted(&w, w.real.0),
        "VM_CREATE's pool page stays DMA-reachable"
    );
    let p = w.real_pfn(20);
    w.step(|w| w.own.vm_topup(a, p, 2, &mut w.tlb)).unwrap();
    assert!(!granted(&w, w.real.0 + 21 * PAGE_SIZE));
    w.step(|w| w.own.host_donate_guest(a, pfn(page), 0x100, 3, &mut w.tlb))
        .unwrap();
    assert!(!granted(&w, page) && !granted(&w, page + 2 * PAGE_SIZE));
    assert!(granted(&w, page + 3 * PAGE_SIZE), "a neighbour lost DMA");
    w.step(|w| w.own.host_donate_hyp(pfn(page) + 8, 1, &mut w.tlb))
        .unwrap();
    assert!(!granted(&w, page + 8 * PAGE_SIZE));
}

#[test]
fn pages_the_host_gets_back_are_in_its_dma_view_when_the_call_returns() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let page = FAKE_BASE + (8 << 20);
    w.step(|w| w.own.host_donate_hyp(pfn(page), 1, &mut w.tlb))
        .unwrap();
    w.step(|w| w.own.hyp_donate_host(pfn(page), 1)).unwrap();
    assert!(granted(&w, page));
    let a = w.create_vm(0, 8);
    w.step(|w| w.own.host_donate_guest(a, pfn(page), 0x100, 4, &mut w.tlb))
        .unwrap();
    // Shared by the guest: the host's devices may use it (bounce buffers); unshared: gone.
    w.step(|w| w.own.guest_share_host(a, 0x100, 2)).unwrap();
    assert!(granted(&w, page) && granted(&w, page + PAGE_SIZE));
    w.step(|w| w.own.guest_unshare_host(a, 0x101, 1, &mut w.tlb))
        .unwrap();
    assert!(!granted(&w, page + PAGE_SIZE));
    // Relinquished (zeroed first): back.
    w.step(|w| w.own.guest_relinquish(a, 0x102, 1, &mut w.tlb, &mut w.san))
        .unwrap();
    assert!(granted(&w, page + 2 * PAGE_SIZE));
    // Teardown: the shared page leaves the host; reclaim (zeroed) brings pages back.
    w.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
    assert!(!granted(&w, page));
    w.step(|w| w.own.host_reclaim(pfn(page), 2, &mut w.san))
        .unwrap();
    assert!(granted(&w, page) && granted(&w, page + PAGE_SIZE));
}

/// A [`HostDma`] over the real [`DmaTable`], logging what it invalidated. With `smmu`, the
/// invariant checks ask the SMMU model instead of the table: the stage-2 table walked from
/// the STE EL2 writes for it, as the SMMU would (`smmuv3::s2_walk`).
struct TableDma {
    table: DmaTable,
    smmu: Option<S2Config>,
    invalidated: Vec<(usize, usize)>,
}

impl HostDma for TableDma {
    fn grant(&mut self, start: usize, end: usize) {
        self.table.map(start, end).unwrap();
    }

    fn revoke(&mut self, start: usize, end: usize) {
        self.table.unmap(start, end).unwrap();
        self.invalidated.push((start, end));
    }

    fn is_granted(&self, pa: usize) -> bool {
        match &self.smmu {
            Some(cfg) => s2_walk::reaches_itself(cfg, pa as u64),
            None => self.table.is_mapped(pa),
        }
    }
}

/// The SMMU format under test: stage 1 (QEMU 7.2's), or stage 2 for an SMMU with this
/// IDR5.OAS.
#[derive(Clone, Copy, Debug)]
enum Format {
    Stage1,
    Stage2 { oas: u64 },
}

/// Every transition that moves pages in or out of the host, with the record's invariant
/// checks (I1 for DMA walks the table for every RAM page) after each step.
fn every_step_keeps_the_smmu_table_exact(format: Format) {
    // One real 8 MiB bank: VM pools and donated pages are real memory here. For stage 2 it
    // lies below 4 GiB (inside every output size), and so does the table.
    const RAM: usize = 8 << 20;
    let ram = match format {
        Format::Stage1 => Arena::new(RAM, 2 << 20),
        Format::Stage2 { .. } => Arena::fixed_at(0x3000_0000, RAM),
    };
    let bank = (ram.base(), ram.base() + RAM);
    let cfg = stage2_config(5);
    let host_pool = Arena::new(
        (1 + crate::pool::pages_needed_to_map(bank.0, bank.1, cfg.root_level)) * PAGE_SIZE,
        PAGE_SIZE,
    );
    let mut meta = std::vec![0u16; metadata_entries(&[bank])];
    let carve = (bank.0, bank.0 + 16 * PAGE_SIZE);
    // The pool arena outlives `dma` (declared before it): dropping the table frees its
    // pages into it.
    let (_dma_pool, table, smmu) = match format {
        Format::Stage1 => {
            let arena = Arena::new(table_pages(&[bank]) * PAGE_SIZE, PAGE_SIZE);
            // SAFETY: the arena outlives the table.
            let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
            (arena, DmaTable::new(pool, &[bank]).unwrap(), None)
        }
        Format::Stage2 { oas } => {
            let s2 = stage2_config(oas);
            let arena = Arena::fixed_at(0x3100_0000, table_pages_stage2(&[bank], &s2) * PAGE_SIZE);
            // SAFETY: the arena outlives the table.
            let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
            let table = DmaTable::new_stage2(pool, &[bank], &s2).unwrap();
            let ste = host_ste_s2(table.root_pa(), &s2);
            let smmu = s2_walk::decode(&ste, oas).unwrap();
            (arena, table, Some(smmu))
        }
    };
    let mut dma = TableDma {
        table,
        smmu,
        invalidated: Vec::new(),
    };
    // SAFETY: as above; RAM is real memory mapped at its address.
    let mut own = unsafe {
        Ownership::<'_, 2>::new(
            &cfg,
            PagePool::new(host_pool.base(), host_pool.len()),
            &[bank],
            &[],
            &[carve],
            &mut meta,
        )
    }
    .unwrap();
    own.attach_host_dma(&mut dma);
    let mut tlb = RecordingTlb::default();
    let mut san = super::tests::RecordingSanitizer::default();
    let check = |own: &Ownership<'_, 2>| {
        if let Err(v) = own.check_invariants() {
            std::panic!("{format:?}: {v}");
        }
    };
    check(&own);
    let page = |i: usize| bank.0 + i * PAGE_SIZE;
    assert!(
        !own.host_dma().unwrap().is_granted(carve.0),
        "EL2's carve-out is DMA-reachable"
    );
    let a = own.vm_create(pfn(page(16)), 8, &mut tlb).unwrap();
    check(&own);
    own.host_donate_guest(a, pfn(page(32)), 0x100, 4, &mut tlb)
        .unwrap();
    check(&own);
    own.guest_share_host(a, 0x100, 1).unwrap();
    check(&own);
    own.guest_unshare_host(a, 0x100, 1, &mut tlb).unwrap();
    check(&own);
    own.guest_relinquish(a, 0x101, 1, &mut tlb, &mut san)
        .unwrap();
    check(&own);
    own.guest_share_host(a, 0x102, 1).unwrap();
    own.vm_teardown(a, &mut tlb).unwrap();
    check(&own);
    own.host_reclaim(pfn(page(16)), 8, &mut san).unwrap();
    check(&own);
    drop(own);
    // Every revoke was an invalidation of exactly the pages that left the host.
    let expected = [
        (page(16), page(24)), // VM_CREATE's pool
        (page(32), page(36)), // donated to the guest
        (page(32), page(33)), // unshared by the guest
        (page(34), page(35)), // the shared page at teardown
    ];
    assert_eq!(dma.invalidated, expected, "{format:?}");
}

#[test]
fn the_smmu_table_walked_after_every_step_holds_exactly_the_hosts_pages() {
    every_step_keeps_the_smmu_table_exact(Format::Stage1);
}

#[test]
fn the_smmu_stage_2_table_walked_as_the_smmu_would_holds_exactly_the_hosts_pages() {
    // Every output size: 32..39-bit inputs from level 1, 40 and 42 bits from 2 and 8
    // concatenated level-1 tables, 44 and 48 bits from level 0.
    for oas in 0..=6 {
        every_step_keeps_the_smmu_table_exact(Format::Stage2 { oas });
    }
}

/// A real SMMU stage-2 table (48-bit output: level-0 start) kept in step with the test
/// worlds' fake DMA view, and the STE EL2 would write for it, decoded as the SMMU would: the
/// record's checks after every step of every World (the property tests included) walk it.
pub(super) struct SmmuShadow {
    table: DmaTable,
    smmu: S2Config,
}

impl core::fmt::Debug for SmmuShadow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SmmuShadow({:?})", self.smmu)
    }
}

impl SmmuShadow {
    /// The shadow over `banks`, and the arena its pages come from (which must outlive it).
    pub(super) fn new(banks: &[(usize, usize)]) -> (Self, Arena) {
        const OAS: u64 = 5;
        let config = stage2_config(OAS);
        let arena = Arena::new(table_pages_stage2(banks, &config) * PAGE_SIZE, PAGE_SIZE);
        // SAFETY: the caller keeps the arena alive longer than the table.
        let pool = unsafe { PagePool::new(arena.base(), arena.len()) };
        let table = DmaTable::new_stage2(pool, banks, &config).unwrap();
        let smmu = s2_walk::decode(&host_ste_s2(table.root_pa(), &config), OAS).unwrap();
        (Self { table, smmu }, arena)
    }

    pub(super) fn set(&mut self, start: usize, end: usize, granted: bool) {
        if granted {
            self.table.map(start, end).unwrap();
        } else {
            self.table.unmap(start, end).unwrap();
        }
    }

    pub(super) fn reaches(&self, pa: usize) -> bool {
        s2_walk::reaches_itself(&self.smmu, pa as u64)
    }
}
