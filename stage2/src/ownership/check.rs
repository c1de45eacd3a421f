//! Checks invariants I1-I4 against the real tables: for tests, and for an EL2 self-test.
//! Costs one pass over the record and one walk of every table.

use super::{Ownership, PageState};
use crate::pgtable::{AttrEncoding, Leaf, MemKind};
use crate::pool::PAGE_SIZE;
use core::fmt;

/// A broken invariant.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Violation {
    /// "I1" .. "I4".
    pub invariant: &'static str,
    /// The page or IPA concerned.
    pub address: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} broken at {:#x}: {}",
            self.invariant, self.address, self.what
        )
    }
}

fn violation(invariant: &'static str, address: usize, what: &'static str) -> Result<(), Violation> {
    Err(Violation {
        invariant,
        address,
        what,
    })
}

impl<const MAX_VMS: usize> Ownership<'_, MAX_VMS> {
    /// Checks I1 (host stage-2 maps only host-accessible RAM, identity, normal memory, and its
    /// MMIO ranges as device memory; the host's DMA view, if attached, holds exactly the RAM
    /// the host may access), I2 (each guest maps only pages it owns, and
    /// every such page once: counts agree), I3 (every record entry is a valid state naming
    /// live VMs) and I4 (EL2's fixed ranges are still EL2's; table and pool pages of every
    /// stage-2 are EL2's, a VM's marked as its pool, and not device memory). Returns the first violation found.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        self.check_record()?;
        self.check_host_stage2()?;
        self.check_host_dma()?;
        self.check_guest_stage2s()?;
        self.check_hyp_pages()
    }

    fn check_record(&self) -> Result<(), Violation> {
        if self.n_dying != self.dying.iter().filter(|d| d.is_some()).count() {
            return violation("I3", 0, "the count of dying VMs is wrong");
        }
        for (start, end) in self.ram_banks() {
            for pa in (start..end).step_by(PAGE_SIZE) {
                let Some(i) = self.entry_index(pa) else {
                    return violation("I3", pa, "RAM page without a record entry");
                };
                let Some(state) = PageState::decode(self.meta[i]) else {
                    return violation("I3", pa, "record entry encodes no state");
                };
                let vm = match state {
                    PageState::HypPool(vm) => Some(vm),
                    other => other.guest(),
                };
                if let Some(vm) = vm
                    && self.guest_stage2(vm).is_none()
                {
                    return violation(
                        "I3",
                        pa,
                        "page belongs or is lent to a VM that does not exist",
                    );
                }
            }
        }
        Ok(())
    }

    /// I1 for DMA, exactly (the DMA view is eager): with a [`crate::HostDma`] attached, a RAM
    /// page is granted to the host's devices if and only if the host may access it.
    fn check_host_dma(&self) -> Result<(), Violation> {
        let Some(dma) = self.host_dma() else {
            return Ok(());
        };
        for (start, end) in self.ram_banks() {
            for pa in (start..end).step_by(PAGE_SIZE) {
                let may = self.page_state(pa).is_some_and(PageState::host_may_access);
                match (may, dma.is_granted(pa)) {
                    (false, true) => {
                        return violation(
                            "I1",
                            pa,
                            "the host's devices can reach a page the host neither owns nor borrows",
                        );
                    }
                    (true, false) => {
                        return violation(
                            "I1",
                            pa,
                            "a page the host may access is missing from its DMA view",
                        );
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn check_host_stage2(&self) -> Result<(), Violation> {
        let mut result = Ok(());
        self.host.for_each_leaf(0, self.host.ipa_size(), |leaf| {
            if result.is_ok() {
                result = self.check_host_leaf(leaf);
            }
        });
        result
    }

    fn check_host_leaf(&self, leaf: &Leaf) -> Result<(), Violation> {
        let (s, e) = (leaf.block_ipa, leaf.block_ipa + leaf.size());
        if leaf.block_pa != s {
            return violation("I1", s, "host stage-2 is not an identity map");
        }
        if self.ram_banks().any(|(bs, be)| bs <= s && e <= be) {
            if !leaf.is(MemKind::Normal, AttrEncoding::Combined) {
                return violation("I1", s, "host RAM mapped with other than normal attributes");
            }
            for pa in (s..e).step_by(PAGE_SIZE) {
                if !self.page_state(pa).is_some_and(PageState::host_may_access) {
                    return violation(
                        "I1",
                        pa,
                        "host stage-2 maps a page the host neither owns nor borrows",
                    );
                }
            }
            return Ok(());
        }
        if self
            .mmio_ranges()
            .iter()
            .any(|&(ms, me)| ms <= s && e <= me)
        {
            if !leaf.is(MemKind::Device, AttrEncoding::Combined) {
                return violation(
                    "I1",
                    s,
                    "host MMIO mapped with other than device attributes",
                );
            }
            return Ok(());
        }
        violation(
            "I1",
            s,
            "host stage-2 maps something outside RAM banks and host MMIO",
        )
    }

    fn check_guest_stage2s(&self) -> Result<(), Violation> {
        let mut record_pages = [0usize; MAX_VMS];
        let mut zeroing_pages = [0usize; MAX_VMS];
        for (start, end) in self.ram_banks() {
            for pa in (start..end).step_by(PAGE_SIZE) {
                match self.page_state(pa) {
                    Some(PageState::ZeroingForGuest(vm)) => {
                        zeroing_pages[usize::from(vm.get()) - 1] += 1;
                    }
                    Some(state) => {
                        if let Some(vm) = state.guest() {
                            record_pages[usize::from(vm.get()) - 1] += 1;
                        }
                    }
                    None => {}
                }
            }
        }
        for vm in self.vms() {
            let Some(guest) = self.guest_stage2(vm) else {
                continue;
            };
            let dying = self.dying[usize::from(vm.get()) - 1];
            let mut mapped = 0;
            let mut held = 0;
            let mut result = Ok(());
            let encoding = self.config.encoding_for_vmid(vm.get());
            guest.for_each_leaf(0, guest.ipa_size(), |leaf| {
                if result.is_err() {
                    return;
                }
                // With FEAT_S2FWB on, the forced Write-Back encoding and no other: a guest
                // leaf in the combined encoding would let a guest with its caches off read
                // DRAM under lines the host left dirty, and donation no longer cleans them.
                // A leaf with no access holds a page EL2 is zeroing for this guest (a
                // donation between its begin and its finish) and nothing else.
                if leaf.is_inaccessible(MemKind::Normal, encoding) {
                    for off in (0..leaf.size()).step_by(PAGE_SIZE) {
                        let pa = leaf.block_pa + off;
                        if self.page_state(pa) != Some(PageState::ZeroingForGuest(vm)) {
                            result = violation(
                                "I2",
                                pa,
                                "an inaccessible guest leaf holds a page not being zeroed for it",
                            );
                            return;
                        }
                        held += 1;
                    }
                    return;
                }
                if !leaf.is(MemKind::Normal, encoding) {
                    result = violation("I2", leaf.block_ipa, "guest leaf is not normal memory");
                    return;
                }
                for off in (0..leaf.size()).step_by(PAGE_SIZE) {
                    let pa = leaf.block_pa + off;
                    // A dying VM's teardown has moved exactly the pages it mapped below
                    // the teardown's cursor.
                    if let Some(td) = dying
                        && (td.walked || leaf.block_ipa + off < td.cursor)
                    {
                        if self.page_state(pa) != Some(PageState::PendingReclaim(vm)) {
                            result = violation(
                                "I2",
                                pa,
                                "a dying guest's page behind the teardown is not pending reclaim",
                            );
                            return;
                        }
                        continue;
                    }
                    if !self.page_state(pa).is_some_and(|s| s.guest_may_access(vm)) {
                        result =
                            violation("I2", pa, "guest stage-2 maps a page the guest does not own");
                        return;
                    }
                    mapped += 1;
                }
            });
            result?;
            if mapped != record_pages[usize::from(vm.get()) - 1] {
                return violation(
                    "I2",
                    guest.root_pa(),
                    "pages the guest owns and pages its stage-2 maps differ in number",
                );
            }
            let zeroing = zeroing_pages[usize::from(vm.get()) - 1];
            if held != zeroing || self.zeroing[usize::from(vm.get()) - 1] != zeroing {
                return violation(
                    "I2",
                    guest.root_pa(),
                    "pages being zeroed for the guest, its inaccessible leaves and its count differ",
                );
            }
        }
        Ok(())
    }

    fn check_hyp_pages(&self) -> Result<(), Violation> {
        for &(s, e) in self.hyp_ranges() {
            for pa in (s..e).step_by(PAGE_SIZE) {
                if self
                    .page_state(pa)
                    .is_some_and(|st| st != PageState::Owned(super::Owner::Hyp))
                {
                    return violation("I4", pa, "a page of EL2's fixed ranges is no longer EL2's");
                }
            }
        }
        let mut result = Ok(());
        // Host tables are EL2's own (when they lie in RAM at all); a guest's tables and free
        // pool pages are its pool pages.
        let mut check_page = |pa: usize, owner: PageState| {
            if result.is_err() {
                return;
            }
            if self
                .mmio_ranges()
                .iter()
                .any(|&(ms, me)| ms <= pa && pa < me)
            {
                result = violation("I4", pa, "a table or pool page lies in host MMIO");
            } else if self.page_state(pa).is_some_and(|st| st != owner) {
                result = violation(
                    "I4",
                    pa,
                    "a table or pool page is not EL2's, or not its VM's pool's",
                );
            }
        };
        let hyp = PageState::Owned(super::Owner::Hyp);
        self.host.for_each_table(|pa, _, _| check_page(pa, hyp));
        self.host.for_each_free_pool_page(|pa| check_page(pa, hyp));
        for vm in self.vms() {
            let Some(guest) = self.guest_stage2(vm) else {
                continue;
            };
            let pool = PageState::HypPool(vm);
            if self.vm_dying(vm) {
                // A dying VM's teardown moves its table pages to pending reclaim as it
                // walks (they stay EL2's; `host_reclaim` waits for the teardown).
                let pending = PageState::PendingReclaim(vm);
                guest.for_each_table(|pa, _, _| {
                    if self.page_state(pa) == Some(pending) {
                        check_page(pa, pending);
                    } else {
                        check_page(pa, pool);
                    }
                });
                guest.for_each_free_pool_page(|pa| check_page(pa, pool));
                continue;
            }
            guest.for_each_table(|pa, _, _| check_page(pa, pool));
            guest.for_each_free_pool_page(|pa| check_page(pa, pool));
        }
        result
    }
}
