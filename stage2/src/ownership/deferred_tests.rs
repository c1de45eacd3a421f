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
