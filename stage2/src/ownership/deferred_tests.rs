//! Zeroing outside the memory lock: with a deferring `PageSanitizer`, pages that leave a
//! guest (relinquish) or EL2's reclaim list wait in `Sanitizing`, reachable by nobody, until
//! `sanitized_to_host`.

extern crate std;

use super::tests::{Memory, World, pfn};
use super::{FaultAction, Owner, OwnershipError, PageSanitizer, PageState};
use crate::pool::PAGE_SIZE;
use std::vec::Vec;

const GIB: usize = 1 << 30;

#[derive(Default)]
struct Deferring(Vec<usize>);

impl PageSanitizer for Deferring {
    fn zero_and_clean(&mut self, pa: usize) {
        self.0.push(pa);
    }

    fn defers(&self) -> bool {
        true
    }
}

fn assert_out_of_everyones_reach(w: &mut World, pages: &[usize]) {
    for &pa in pages {
        assert_eq!(w.own.page_state(pa), Some(PageState::Sanitizing), "{pa:#x}");
        assert_eq!(
            w.own.host_handle_fault(pa),
            FaultAction::InjectAbort,
            "{pa:#x}"
        );
        assert_eq!(
            w.own.host_share_hyp(pfn(pa), 1),
            Err(OwnershipError::Denied),
            "{pa:#x}"
        );
        assert_eq!(
            w.own.host_reclaim(pfn(pa), 1, &mut Deferring::default()),
            Err(OwnershipError::Denied),
            "{pa:#x}"
        );
    }
    w.own.check_invariants().unwrap();
}

#[test]
fn deferred_zeroing_keeps_pages_from_everyone_until_they_are_handed_to_the_host() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    let a = w.create_vm(0, 4);
    let q = pfn(0x4a00_0000);
    w.step(|w| w.own.host_donate_guest(a, q, 0x200, 4, &mut w.tlb))
        .unwrap();

    // A guest's MEM_RELINQUISH of two pages.
    let mut zeroing = Deferring::default();
    w.own
        .guest_relinquish(a, 0x200, 2, &mut w.tlb, &mut zeroing)
        .unwrap();
    let relinquished = [q * PAGE_SIZE, (q + 1) * PAGE_SIZE];
    assert_eq!(zeroing.0, relinquished);
    assert_out_of_everyones_reach(&mut w, &relinquished);
    w.own.sanitized_to_host(&zeroing.0).unwrap();
    for pa in relinquished {
        assert_eq!(w.own.page_state(pa), Some(PageState::Owned(Owner::Host)));
    }
    assert_eq!(
        w.own.sanitized_to_host(&zeroing.0),
        Err(OwnershipError::Denied),
        "a page handed over once cannot be handed over again"
    );

    // VM_RECLAIM of the other two after teardown.
    w.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
    let mut zeroing = Deferring::default();
    w.own.host_reclaim(q + 2, 2, &mut zeroing).unwrap();
    let reclaimed = [(q + 2) * PAGE_SIZE, (q + 3) * PAGE_SIZE];
    assert_eq!(zeroing.0, reclaimed);
    assert_out_of_everyones_reach(&mut w, &reclaimed);
    // All or nothing: one page that is not Sanitizing refuses the whole hand-over.
    let mixed = [reclaimed[0], 0x4b00_0000];
    assert_eq!(w.own.sanitized_to_host(&mixed), Err(OwnershipError::Denied));
    assert_eq!(w.own.page_state(reclaimed[0]), Some(PageState::Sanitizing));
    w.own.sanitized_to_host(&zeroing.0).unwrap();
    w.own.check_invariants().unwrap();
}

/// Nobody can reach a page EL2 is zeroing for guest `a` at guest frame `gfn`: the host
/// neither maps nor shares nor reclaims nor donates it again; the guest's leaf gives no
/// access and none of the guest's calls accepts the frame; the VM cannot be torn down.
fn assert_zeroing_for_guest(w: &mut World, a: super::VmId, pa: usize, gfn: usize) {
    use crate::pgtable::MemKind;
    assert_eq!(
        w.own.page_state(pa),
        Some(PageState::ZeroingForGuest(a)),
        "{pa:#x}"
    );
    assert_eq!(
        w.step(|w| Ok(w.own.host_handle_fault(pa))),
        Ok(FaultAction::InjectAbort)
    );
    let denied = Err(OwnershipError::Denied);
    assert_eq!(w.step(|w| w.own.host_share_hyp(pfn(pa), 1)), denied);
    assert_eq!(
        w.step(|w| w.own.host_reclaim(pfn(pa), 1, &mut Deferring::default())),
        denied
    );
    assert_eq!(
        w.step(|w| w.own.host_donate_guest(a, pfn(pa), 0x7000, 1, &mut w.tlb)),
        denied
    );
    let g = w.own.guest_stage2(a).unwrap();
    let leaf = g.translate(gfn * PAGE_SIZE).unwrap();
    assert!(
        leaf.is_inaccessible(MemKind::Normal, g.encoding()),
        "{leaf:?}"
    );
    assert_eq!(
        w.step(|w| w
            .own
            .guest_relinquish(a, gfn, 1, &mut w.tlb, &mut Deferring::default())),
        denied
    );
    assert_eq!(w.step(|w| w.own.guest_share_host(a, gfn, 1)), denied);
    assert_eq!(
        w.step(|w| w.own.guest_unshare_host(a, gfn, 1, &mut w.tlb)),
        denied
    );
    // The same guest frame for another page: taken.
    assert_eq!(
        w.step(|w| w
            .own
            .host_donate_guest(a, pfn(0x4c00_0000), gfn, 1, &mut w.tlb)),
        Err(OwnershipError::Busy)
    );
    assert_eq!(
        w.step(|w| w.own.vm_teardown(a, &mut w.tlb)),
        Err(OwnershipError::Busy)
    );
}

#[test]
fn a_donation_after_launch_keeps_its_pages_from_host_and_guest_until_they_are_zeroed() {
    use crate::pgtable::MemKind;
    use crate::tlb::TlbOp;
    for fwb in [false, true] {
        let mut mem = Memory::new(GIB);
        let config = crate::pgtable::stage2_config(5).with_guest_fwb(fwb);
        let mut w = World::with_config(&mut mem, config);
        w.step(|w| w.own.host_map_all()).unwrap();
        let a = w.create_vm(0, 4);
        let q = pfn(0x4a00_0000);
        // Begin: `step` checks I1-I7 (the pages left the host stage-2 and DMA view, every
        // removed host leaf was invalidated; the inaccessible leaves match the record).
        w.step(|w| w.own.host_donate_guest_begin(a, q, 0x200, 4, &mut w.tlb))
            .unwrap();
        for i in 0..4 {
            assert_zeroing_for_guest(&mut w, a, (q + i) * PAGE_SIZE, 0x200 + i);
        }
        // The wrong arguments finish nothing.
        for (p, g, n) in [(q, 0x201, 4), (q + 1, 0x200, 4), (q, 0x200, 5)] {
            assert_eq!(
                w.step(|w| w.own.host_donate_guest_finish(a, p, g, n, &mut w.tlb)),
                Err(OwnershipError::Denied),
                "{p:#x} {g:#x} {n}"
            );
        }
        // (The caller zeroes the pages here, with the lock released.)
        let ops = w.tlb.ops.len();
        w.step(|w| w.own.host_donate_guest_finish(a, q, 0x200, 4, &mut w.tlb))
            .unwrap();
        // The faulting entries a guest vCPU may have cached are gone.
        for i in 0..4 {
            let ipa = (0x200 + i) * PAGE_SIZE;
            assert!(w.tlb.ops[ops..].contains(&TlbOp::Ipa {
                vmid: a.get(),
                ipa,
                level: 3
            }));
        }
        assert_eq!(w.tlb.ops.last(), Some(&TlbOp::Stage1 { vmid: a.get() }));
        let g = w.own.guest_stage2(a).unwrap();
        for i in 0..4 {
            let pa = (q + i) * PAGE_SIZE;
            assert_eq!(
                w.own.page_state(pa),
                Some(PageState::Owned(super::Owner::Guest(a)))
            );
            let leaf = g.translate((0x200 + i) * PAGE_SIZE).unwrap();
            assert_eq!(leaf.pa, pa);
            assert!(leaf.is(MemKind::Normal, config.encoding_for_vmid(a.get())));
        }
        assert_eq!(
            w.step(|w| w.own.host_donate_guest_finish(a, q, 0x200, 4, &mut w.tlb)),
            Err(OwnershipError::Denied),
            "finished once"
        );
        // The guest can use them like any page of its own; the VM can go.
        w.step(|w| w.own.guest_share_host(a, 0x201, 1)).unwrap();
        w.step(|w| w.own.vm_teardown(a, &mut w.tlb)).unwrap();
    }
}

#[test]
fn a_donation_after_launch_decides_every_refusal_before_anything_changes() {
    let mut mem = Memory::new(GIB);
    let mut w = World::new(&mut mem);
    w.step(|w| w.own.host_map_all()).unwrap();
    // The VM's pool is only its root: the first mapping needs tables.
    let a = w.create_vm(0, 1);
    let q = pfn(0x4a00_0000);
    // `step` checks that each refusal left record, tables, pools, TLB log and DMA view
    // exactly as they were (I7): the pages are still the host's, mapped and DMA-reachable.
    assert_eq!(
        w.step(|w| w.own.host_donate_guest_begin(a, q, 0x200, 4, &mut w.tlb)),
        Err(OwnershipError::NoMemory)
    );
    let t = w.real_pfn(1);
    w.step(|w| w.own.vm_topup(a, t, 3, &mut w.tlb)).unwrap();
    w.step(|w| w.own.host_donate_guest(a, q, 0x200, 1, &mut w.tlb))
        .unwrap();
    assert_eq!(
        w.step(|w| w
            .own
            .host_donate_guest_begin(a, q + 1, 0x1ff, 2, &mut w.tlb)),
        Err(OwnershipError::Busy)
    );
    assert_eq!(
        w.step(|w| w.own.host_donate_guest_begin(a, q, 0x300, 2, &mut w.tlb)),
        Err(OwnershipError::Denied)
    );
    assert_eq!(
        w.step(|w| w
            .own
            .host_donate_guest_begin(super::tests::vm(2), q + 1, 0, 1, &mut w.tlb)),
        Err(OwnershipError::NotFound)
    );
    assert_eq!(
        w.own.page_state((q + 1) * PAGE_SIZE),
        Some(PageState::Owned(super::Owner::Host))
    );
}
