//! A reference model of the ownership record: one state per RAM page and, per VM, a map from
//! guest frame to page, with the transitions and the error order of the `stage2::ownership`
//! documentation written out plainly (no page tables, no blocks, exact arithmetic).
//!
//! The harness runs every call on the model and on the real record and requires the same
//! outcome and, afterwards, the same page states and guest mappings. The model does not
//! count table pages, so where the real record may answer `NoMemory` (donating
//! pages into a guest stage-2, docs/abi.md 7.3) the model accepts that answer in place of
//! success, and then expects nothing to have changed; the harness bounds the pool use
//! separately (at most `MAX_POOL_PAGES_PER_CALL` per call).

use super::world::{CARVE_OUT, MAX_VMS, QEMU_MMIO};
use stage2::{Borrower, Owner, OwnershipError, PAGE_SIZE, PageState, VmId};
use std::collections::BTreeMap;
use std::vec::Vec;

use OwnershipError::{Busy, Denied, InvalidParameter, NoMemory, NotFound, Range};

/// Most pages one call may move (stage2's `MAX_PAGES_PER_CALL`, restated).
const MAX_PAGES: usize = 512;
/// The world's IPA size: 48 bits.
const IPA_SIZE: u128 = 1 << 48;

/// A call on the record, with every argument resolved.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Call {
    HostShareHyp {
        pfn: usize,
        nr: usize,
    },
    HostUnshareHyp {
        pfn: usize,
        nr: usize,
    },
    HostDonateHyp {
        pfn: usize,
        nr: usize,
    },
    HypDonateHost {
        pfn: usize,
        nr: usize,
    },
    VmCreate {
        pfn: usize,
        nr: usize,
    },
    VmTopup {
        vm: u16,
        pfn: usize,
        nr: usize,
    },
    HostDonateGuest {
        vm: u16,
        pfn: usize,
        gfn: usize,
        nr: usize,
    },
    /// `host_donate_guest_zeroed` (a donation after launch, docs/abi.md 4.5): the same
    /// states as `HostDonateGuest`.
    HostDonateGuestZeroed {
        vm: u16,
        pfn: usize,
        gfn: usize,
        nr: usize,
    },
    GuestShareHost {
        vm: u16,
        gfn: usize,
        nr: usize,
    },
    GuestUnshareHost {
        vm: u16,
        gfn: usize,
        nr: usize,
    },
    GuestRelinquish {
        vm: u16,
        gfn: usize,
        nr: usize,
    },
    VmTeardown {
        vm: u16,
    },
    HostReclaim {
        pfn: usize,
        nr: usize,
    },
    HostFault {
        ipa: usize,
    },
    ToggleActive {
        vm: u16,
    },
    HostMapAll,
}

impl Call {
    /// Whether the real record may answer `NoMemory` where the model succeeds: the call
    /// adds to a guest stage-2 and may need table pages from the VM's pool. Only donating
    /// does (docs/abi.md 7.3); removing a guest mapping never needs memory.
    pub fn may_need_tables(&self) -> bool {
        matches!(
            self,
            Call::HostDonateGuest { .. } | Call::HostDonateGuestZeroed { .. }
        )
    }

    /// The VM whose pool the call may take table pages from.
    pub fn pool_vm(&self) -> Option<u16> {
        match *self {
            Call::HostDonateGuest { vm, .. } | Call::HostDonateGuestZeroed { vm, .. } => Some(vm),
            _ => None,
        }
    }
}

/// A VM as the model sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Guest {
    /// Guest frame -> page (physical address).
    pub map: BTreeMap<usize, usize>,
    /// A vCPU is loaded: teardown is refused.
    pub active: bool,
}

/// The model's state.
#[derive(Clone, Debug)]
pub struct Model {
    /// RAM banks as `(start, end)`, in record order.
    banks: Vec<(usize, usize)>,
    /// One state per RAM page, banks in order.
    pub record: Vec<PageState>,
    /// VM slots.
    pub guests: [Option<Guest>; MAX_VMS],
}

/// What a successful call gives back.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Answer {
    /// Nothing.
    Done,
    /// The new VM's id.
    Vm(u16),
    /// Whether the host may access the faulting address.
    HostMayAccess(bool),
}

impl Model {
    /// All RAM the host's except the carve-out, which is EL2's.
    pub fn new(banks: &[(usize, usize)]) -> Self {
        let mut m = Model {
            banks: banks.to_vec(),
            record: Vec::new(),
            guests: Default::default(),
        };
        for &(s, e) in banks {
            for pa in (s..e).step_by(PAGE_SIZE) {
                let carve = CARVE_OUT.0 <= pa && pa < CARVE_OUT.1;
                m.record.push(PageState::Owned(if carve {
                    Owner::Hyp
                } else {
                    Owner::Host
                }));
            }
        }
        m
    }

    fn index(&self, pa: usize) -> Option<usize> {
        let mut first = 0;
        for &(s, e) in &self.banks {
            if s <= pa && pa < e {
                return Some(first + (pa - s) / PAGE_SIZE);
            }
            first += (e - s) / PAGE_SIZE;
        }
        None
    }

    /// The state of the page holding `pa`, if it is RAM.
    pub fn state(&self, pa: usize) -> Option<PageState> {
        self.index(pa).map(|i| self.record[i])
    }

    fn set(&mut self, pa: usize, s: PageState) {
        if let Some(i) = self.index(pa) {
            self.record[i] = s;
        }
    }

    fn count(nr: usize) -> Result<(), OwnershipError> {
        if nr == 0 || nr > MAX_PAGES {
            Err(InvalidParameter)
        } else {
            Ok(())
        }
    }

    /// Pages `pfn..pfn + nr` as page addresses, inside one bank.
    fn ram_pages(&self, pfn: usize, nr: usize) -> Result<Vec<usize>, OwnershipError> {
        Self::count(nr)?;
        let start = pfn as u128 * PAGE_SIZE as u128;
        let end = (pfn as u128 + nr as u128) * PAGE_SIZE as u128;
        if end > usize::MAX as u128 {
            return Err(Range);
        }
        let (start, end) = (start as usize, end as usize);
        if !self.banks.iter().any(|&(s, e)| s <= start && end <= e) {
            return Err(Range);
        }
        Ok((start..end).step_by(PAGE_SIZE).collect())
    }

    /// Guest frames `gfn..gfn + nr`, inside the IPA space.
    fn frames(gfn: usize, nr: usize) -> Result<std::ops::Range<usize>, OwnershipError> {
        Self::count(nr)?;
        if (gfn as u128 + nr as u128) * PAGE_SIZE as u128 > IPA_SIZE {
            return Err(Range);
        }
        Ok(gfn..gfn + nr)
    }

    fn slot(&self, vm: u16) -> Result<usize, OwnershipError> {
        let i = usize::from(vm).wrapping_sub(1);
        match self.guests.get(i) {
            Some(Some(_)) => Ok(i),
            _ => Err(NotFound),
        }
    }

    fn require(
        &self,
        pages: &[usize],
        want: impl Fn(PageState) -> bool,
    ) -> Result<(), OwnershipError> {
        if pages.iter().all(|&pa| self.state(pa).is_some_and(&want)) {
            Ok(())
        } else {
            Err(Denied)
        }
    }

    /// The pages behind guest frames, in frame order: `NotFound` if any frame of the range
    /// is unmapped, then `Denied` if any page is in another state (docs/abi.md 1.6, phase 5:
    /// each over the whole range).
    fn gather(
        &self,
        slot: usize,
        frames: std::ops::Range<usize>,
        want: impl Fn(PageState) -> bool,
    ) -> Result<Vec<(usize, usize)>, OwnershipError> {
        let g = self.guests[slot].as_ref().ok_or(NotFound)?;
        let pages = frames
            .map(|gfn| g.map.get(&gfn).map(|&pa| (gfn, pa)).ok_or(NotFound))
            .collect::<Result<Vec<_>, _>>()?;
        if pages
            .iter()
            .all(|&(_, pa)| self.state(pa).is_some_and(&want))
        {
            Ok(pages)
        } else {
            Err(Denied)
        }
    }

    fn vm_id(vm: u16) -> VmId {
        VmId::new(vm).expect("the harness only passes ids VmId accepts")
    }

    /// Whether the host may access `ipa`: RAM it owns or borrows, or one of its MMIO ranges.
    pub fn host_may_access(&self, ipa: usize) -> bool {
        match self.state(ipa) {
            Some(s) => matches!(
                s,
                PageState::Owned(Owner::Host)
                    | PageState::HostSharedWith(_)
                    | PageState::SharedWithHost(_)
            ),
            None => QEMU_MMIO.iter().any(|&(s, e)| s <= ipa && ipa < e),
        }
    }

    /// The outcome of `call` and the state after it (on success).
    pub fn call(&self, call: Call) -> Result<(Answer, Model), OwnershipError> {
        let mut m = self.clone();
        let host = PageState::Owned(Owner::Host);
        let answer = match call {
            Call::HostShareHyp { pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                self.require(&pages, |s| s == host)?;
                for pa in pages {
                    m.set(pa, PageState::HostSharedWith(Borrower::Hyp));
                }
                Answer::Done
            }
            Call::HostUnshareHyp { pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                self.require(&pages, |s| s == PageState::HostSharedWith(Borrower::Hyp))?;
                for pa in pages {
                    m.set(pa, host);
                }
                Answer::Done
            }
            Call::HostDonateHyp { pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                self.require(&pages, |s| s == host)?;
                for pa in pages {
                    m.set(pa, PageState::Owned(Owner::Hyp));
                }
                Answer::Done
            }
            Call::HypDonateHost { pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                if pages
                    .iter()
                    .any(|&pa| CARVE_OUT.0 <= pa && pa < CARVE_OUT.1)
                {
                    return Err(Denied);
                }
                self.require(&pages, |s| s == PageState::Owned(Owner::Hyp))?;
                for pa in pages {
                    m.set(pa, host);
                }
                Answer::Done
            }
            Call::VmCreate { pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                self.require(&pages, |s| s == host)?;
                let slot = self
                    .guests
                    .iter()
                    .position(Option::is_none)
                    .ok_or(NoMemory)?;
                let vm = slot as u16 + 1;
                for pa in pages {
                    m.set(pa, PageState::HypPool(Self::vm_id(vm)));
                }
                m.guests[slot] = Some(Guest::default());
                Answer::Vm(vm)
            }
            Call::VmTopup { vm, pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                self.slot(vm)?;
                self.require(&pages, |s| s == host)?;
                for pa in pages {
                    m.set(pa, PageState::HypPool(Self::vm_id(vm)));
                }
                Answer::Done
            }
            Call::HostDonateGuest { vm, pfn, gfn, nr }
            | Call::HostDonateGuestZeroed { vm, pfn, gfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                let frames = Self::frames(gfn, nr)?;
                let slot = self.slot(vm)?;
                self.require(&pages, |s| s == host)?;
                let g = m.guests[slot].as_mut().ok_or(NotFound)?;
                if frames.clone().any(|f| g.map.contains_key(&f)) {
                    return Err(Busy);
                }
                let state = PageState::Owned(Owner::Guest(Self::vm_id(vm)));
                for (f, &pa) in frames.zip(&pages) {
                    g.map.insert(f, pa);
                }
                for pa in pages {
                    m.set(pa, state);
                }
                Answer::Done
            }
            Call::GuestShareHost { vm, gfn, nr }
            | Call::GuestUnshareHost { vm, gfn, nr }
            | Call::GuestRelinquish { vm, gfn, nr } => {
                let frames = Self::frames(gfn, nr)?;
                let slot = self.slot(vm)?;
                let id = Self::vm_id(vm);
                let owned = PageState::Owned(Owner::Guest(id));
                let shared = PageState::SharedWithHost(id);
                // docs/abi.md 7.2: the state each call accepts, the state the page ends in,
                // and whether the IPA becomes UNMAPPED.
                let (from, to, unmap) = match call {
                    Call::GuestShareHost { .. } => (owned, shared, false),
                    Call::GuestUnshareHost { .. } => (shared, owned, false),
                    // Relinquish: the page goes back to the host, zeroed.
                    _ => (owned, host, true),
                };
                let pages = self.gather(slot, frames, |s| s == from)?;
                for (f, pa) in pages {
                    m.set(pa, to);
                    if unmap && let Some(g) = m.guests[slot].as_mut() {
                        g.map.remove(&f);
                    }
                }
                Answer::Done
            }
            Call::VmTeardown { vm } => {
                let slot = self.slot(vm)?;
                if self.guests[slot].as_ref().is_some_and(|g| g.active) {
                    return Err(Busy);
                }
                let id = Self::vm_id(vm);
                for s in &mut m.record {
                    *s = match *s {
                        PageState::Owned(Owner::Guest(g))
                        | PageState::SharedWithHost(g)
                        | PageState::HypPool(g)
                            if g == id =>
                        {
                            PageState::PendingReclaim(id)
                        }
                        other => other,
                    };
                }
                m.guests[slot] = None;
                Answer::Done
            }
            Call::HostReclaim { pfn, nr } => {
                let pages = self.ram_pages(pfn, nr)?;
                self.require(&pages, |s| matches!(s, PageState::PendingReclaim(_)))?;
                for pa in pages {
                    m.set(pa, host);
                }
                Answer::Done
            }
            Call::HostFault { ipa } => Answer::HostMayAccess(self.host_may_access(ipa)),
            Call::ToggleActive { vm } => {
                if let Ok(slot) = self.slot(vm)
                    && let Some(g) = m.guests[slot].as_mut()
                {
                    g.active = !g.active;
                }
                Answer::Done
            }
            Call::HostMapAll => Answer::Done,
        };
        Ok((answer, m))
    }
}
