//! The host's DMA view through every transition that changes what the host may access:
//! with the test's fake (every `World` has one) and with the real stage-1 table an SMMU
//! walks, walked after each step.

extern crate std;

use super::tests::{FAKE_BASE, Memory, World, pfn};
use super::*;
use crate::dma_table::{DmaTable, table_pages};
use crate::host_dma::HostDma;
use crate::pgtable::stage2_config;
use crate::pool::test_memory::Arena;
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

/// A [`HostDma`] over the real [`DmaTable`], logging what it invalidated.
struct TableDma {
    table: DmaTable,
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
        self.table.is_mapped(pa)
    }
}

#[test]
fn the_smmu_table_walked_after_every_step_holds_exactly_the_hosts_pages() {
    // One real 8 MiB bank: VM pools and donated pages are real memory here.
    const RAM: usize = 8 << 20;
    let ram = Arena::new(RAM, 2 << 20);
    let bank = (ram.base(), ram.base() + RAM);
    let cfg = stage2_config(5);
    let host_pool = Arena::new(
        (1 + crate::pool::pages_needed_to_map(bank.0, bank.1, cfg.root_level)) * PAGE_SIZE,
        PAGE_SIZE,
    );
    let dma_pool = Arena::new(table_pages(&[bank]) * PAGE_SIZE, PAGE_SIZE);
    let mut meta = std::vec![0u16; metadata_entries(&[bank])];
    let carve = (bank.0, bank.0 + 16 * PAGE_SIZE);
    // SAFETY: every arena outlives the record and the table; the bank is ours.
    let dma_pages = unsafe { PagePool::new(dma_pool.base(), dma_pool.len()) };
    let mut dma = TableDma {
        table: DmaTable::new(dma_pages, &[bank]).unwrap(),
        invalidated: Vec::new(),
    };
    // SAFETY: as above; RAM is real heap memory mapped at its address.
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
            std::panic!("{v}");
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
    assert_eq!(dma.invalidated, expected);
}
