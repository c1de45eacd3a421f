//! The per-page entry of the ownership record: who owns a page and who else may use it.
//!
//! # Layout (one `u16` per 4 KiB page)
//!
//! ```text
//!   15   |  14  | 13 12 | 11 ........ 0
//!  rsvd  | pool | kind  | id
//! ```
//!
//! - `id` (12 bits) names a component: 0 = host, 0xfff = hyp (EL2), 1..=0xffe = a guest by
//!   its [`VmId`].
//! - `kind` (2 bits) says how to read `id`:
//!   - 0 `Owned`: `id` owns the page exclusively.
//!   - 1 `SharedWithHost`: guest `id` owns the page (shared-owned) and the host borrows it.
//!   - 2 `HostSharedWith`: the host owns the page (shared-owned) and `id` (hyp) borrows it.
//!     (ABI 1.0 also let a guest borrow a host page; 2.0 retired that, docs/abi.md 4.6, so
//!     an entry of kind 2 with a guest `id` is invalid.)
//!   - 3 `PendingReclaim`: guest `id` was torn down; EL2 holds the page until the host
//!     reclaims it (it is zeroed then). With `id` 0 (the host): `Sanitizing`, EL2 zeroes the
//!     page for the host outside the memory lock (see `PageSanitizer::defers`).
//! - `pool` (bit 14), only with a guest `id`: EL2 owns the page for that guest. With kind
//!   0 it is part of the guest's page-table pool (`HypPool`); it goes to reclaim with the
//!   guest, and EL2 can never hand it to the host directly. With kind 1 (`ZeroingForGuest`)
//!   it has left the host for the guest and EL2 zeroes it outside the memory lock before
//!   the guest may use it (a VM_DONATE after launch).
//! - bit 15 is reserved and zero (room for a pin flag).
//!
//! Entry 0 means "host owns it exclusively", so a zeroed record hands all RAM to the host.
//! Every encoding names exactly one owner and at most one borrower, and a borrower only
//! together with the owner's shared-owned state: invariant I3 holds by construction.

/// A guest VM's identifier, also its stage-2 VMID (1..=[`VmId::MAX`]; 0 is the host's).
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct VmId(u16);

impl VmId {
    /// Largest identifier the record can hold.
    pub const MAX: u16 = 0xffe;

    /// `Some` for 1..=[`MAX`](Self::MAX).
    pub const fn new(id: u16) -> Option<VmId> {
        if id >= 1 && id <= Self::MAX {
            Some(VmId(id))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// The component that owns a page.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Owner {
    /// The host kernel at EL1.
    Host,
    /// EL2 itself (its image, stacks, pools, page tables, VM state, pages held for reclaim).
    Hyp,
    /// A guest.
    Guest(VmId),
}

/// The owner's side of a page's sharing state.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum OwnerState {
    /// Nobody else may use the page.
    Exclusive,
    /// The owner shares the page with one borrower (whose state is shared-borrowed).
    SharedOwned,
}

/// A component that borrows a page the host shares: only EL2 (the host never lends a page
/// to a guest, docs/abi.md 4.6).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Borrower {
    /// EL2.
    Hyp,
}

/// Everything the record says about one page.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum PageState {
    /// Owned exclusively.
    Owned(Owner),
    /// Owned by the guest, shared with the host (guest_share_host).
    SharedWithHost(VmId),
    /// Owned by the host, shared with a borrower (host_share_hyp).
    HostSharedWith(Borrower),
    /// Held by EL2 after the guest's teardown until host_reclaim zeroes it for the host.
    PendingReclaim(VmId),
    /// Owned by EL2 as part of the guest's page-table pool (vm_create, vm_topup).
    HypPool(VmId),
    /// Held by EL2 while it zeroes the page for the host after the memory lock was released
    /// (a reclaimed or relinquished page); in no stage-2. Only
    /// [`Ownership::sanitized_to_host`](super::Ownership::sanitized_to_host) leaves it.
    Sanitizing,
    /// Held by EL2 while it zeroes the page for guest `vm` after the memory lock was
    /// released (a VM_DONATE after launch): in no host stage-2 nor DMA view, and in the
    /// guest's stage-2 only with no access. Only
    /// [`Ownership::host_donate_guest_finish`](super::Ownership::host_donate_guest_finish)
    /// leaves it.
    ZeroingForGuest(VmId),
}

const ID_HOST: u16 = 0;
const ID_HYP: u16 = 0xfff;
const ID_MASK: u16 = 0x0fff;
const KIND_SHIFT: u32 = 12;
const KIND_OWNED: u16 = 0;
const KIND_SHARED_WITH_HOST: u16 = 1;
const KIND_HOST_SHARED_WITH: u16 = 2;
const KIND_PENDING_RECLAIM: u16 = 3;
const POOL_BIT: u16 = 0x4000;
/// Kind of a pool-bit entry that is `ZeroingForGuest` (kind 0 with the pool bit: `HypPool`).
const KIND_POOL_ZEROING: u16 = 1;
const RESERVED_MASK: u16 = 0x8000;

impl PageState {
    /// The page's owner. Pages pending reclaim are owned by EL2.
    pub fn owner(self) -> Owner {
        match self {
            PageState::Owned(o) => o,
            PageState::SharedWithHost(vm) => Owner::Guest(vm),
            PageState::HostSharedWith(_) => Owner::Host,
            PageState::PendingReclaim(_)
            | PageState::HypPool(_)
            | PageState::Sanitizing
            | PageState::ZeroingForGuest(_) => Owner::Hyp,
        }
    }

    /// The owner's sharing state.
    pub fn owner_state(self) -> OwnerState {
        match self {
            PageState::Owned(_)
            | PageState::PendingReclaim(_)
            | PageState::HypPool(_)
            | PageState::Sanitizing
            | PageState::ZeroingForGuest(_) => OwnerState::Exclusive,
            PageState::SharedWithHost(_) | PageState::HostSharedWith(_) => OwnerState::SharedOwned,
        }
    }

    /// The borrower, if the page is shared. Its state is shared-borrowed.
    pub fn borrower(self) -> Option<Owner> {
        match self {
            PageState::SharedWithHost(_) => Some(Owner::Host),
            PageState::HostSharedWith(Borrower::Hyp) => Some(Owner::Hyp),
            PageState::Owned(_)
            | PageState::PendingReclaim(_)
            | PageState::HypPool(_)
            | PageState::Sanitizing
            | PageState::ZeroingForGuest(_) => None,
        }
    }

    /// Whether the host may have the page in its stage-2 (it owns or borrows it).
    pub fn host_may_access(self) -> bool {
        matches!(
            self,
            PageState::Owned(Owner::Host)
                | PageState::HostSharedWith(_)
                | PageState::SharedWithHost(_)
        )
    }

    /// Whether guest `vm` may have the page in its stage-2 (it owns or borrows it).
    pub fn guest_may_access(self, vm: VmId) -> bool {
        match self {
            PageState::Owned(Owner::Guest(g)) | PageState::SharedWithHost(g) => g == vm,
            _ => false,
        }
    }

    /// Whether EL2 may use the page's contents (it owns or borrows it).
    pub fn hyp_may_access(self) -> bool {
        matches!(
            self,
            PageState::Owned(Owner::Hyp)
                | PageState::HostSharedWith(Borrower::Hyp)
                | PageState::PendingReclaim(_)
                | PageState::HypPool(_)
                | PageState::Sanitizing
                | PageState::ZeroingForGuest(_)
        )
    }

    /// The guest this page belongs to, if any (its pool pages, and pages pending reclaim,
    /// excluded).
    pub fn guest(self) -> Option<VmId> {
        match self {
            PageState::Owned(Owner::Guest(g)) | PageState::SharedWithHost(g) => Some(g),
            _ => None,
        }
    }

    /// The record entry for this state.
    pub const fn encode(self) -> u16 {
        let (kind, id) = match self {
            PageState::Owned(Owner::Host) => (KIND_OWNED, ID_HOST),
            PageState::Owned(Owner::Hyp) => (KIND_OWNED, ID_HYP),
            PageState::Owned(Owner::Guest(vm)) => (KIND_OWNED, vm.0),
            PageState::SharedWithHost(vm) => (KIND_SHARED_WITH_HOST, vm.0),
            PageState::HostSharedWith(Borrower::Hyp) => (KIND_HOST_SHARED_WITH, ID_HYP),
            PageState::PendingReclaim(vm) => (KIND_PENDING_RECLAIM, vm.0),
            PageState::Sanitizing => (KIND_PENDING_RECLAIM, ID_HOST),
            PageState::HypPool(vm) => return POOL_BIT | vm.0,
            PageState::ZeroingForGuest(vm) => {
                return POOL_BIT | (KIND_POOL_ZEROING << KIND_SHIFT) | vm.0;
            }
        };
        (kind << KIND_SHIFT) | id
    }

    /// The state a record entry encodes, or `None` for an entry no state encodes (reserved
    /// bits set, or an id that does not fit the kind). Such an entry is never written.
    pub const fn decode(entry: u16) -> Option<PageState> {
        if entry & RESERVED_MASK != 0 {
            return None;
        }
        let id = entry & ID_MASK;
        if entry & POOL_BIT != 0 {
            return match (entry >> KIND_SHIFT & 3, VmId::new(id)) {
                (KIND_OWNED, Some(vm)) => Some(PageState::HypPool(vm)),
                (KIND_POOL_ZEROING, Some(vm)) => Some(PageState::ZeroingForGuest(vm)),
                _ => None,
            };
        }
        let guest = VmId::new(id);
        let kind = entry >> KIND_SHIFT;
        Some(match (kind, id, guest) {
            (KIND_OWNED, ID_HOST, _) => PageState::Owned(Owner::Host),
            (KIND_OWNED, ID_HYP, _) => PageState::Owned(Owner::Hyp),
            (KIND_OWNED, _, Some(vm)) => PageState::Owned(Owner::Guest(vm)),
            (KIND_SHARED_WITH_HOST, _, Some(vm)) => PageState::SharedWithHost(vm),
            (KIND_HOST_SHARED_WITH, ID_HYP, _) => PageState::HostSharedWith(Borrower::Hyp),
            (KIND_PENDING_RECLAIM, _, Some(vm)) => PageState::PendingReclaim(vm),
            (KIND_PENDING_RECLAIM, ID_HOST, _) => PageState::Sanitizing,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_entry_round_trips_and_nothing_else_decodes() {
        let mut valid = 0;
        for entry in 0..=u16::MAX {
            if let Some(state) = PageState::decode(entry) {
                assert_eq!(state.encode(), entry, "{state:?}");
                valid += 1;
            }
        }
        // Owned: host, hyp, 0xffe guests; shared-with-host: guests; host-shared-with: hyp;
        // pending reclaim: guests, and sanitizing; pool: guests; zeroing for: guests.
        let g = usize::from(VmId::MAX);
        assert_eq!(valid, (2 + g) + g + 1 + (g + 1) + g + g);
    }

    #[test]
    fn zero_entry_is_host_owned() {
        assert_eq!(PageState::decode(0), Some(PageState::Owned(Owner::Host)));
    }

    #[test]
    fn owner_state_and_borrower_agree() {
        let vm = VmId::new(3).unwrap();
        let other = VmId::new(4).unwrap();
        let s = PageState::SharedWithHost(vm);
        assert_eq!(
            (s.owner(), s.owner_state(), s.borrower()),
            (Owner::Guest(vm), OwnerState::SharedOwned, Some(Owner::Host))
        );
        assert!(s.host_may_access() && s.guest_may_access(vm) && !s.guest_may_access(other));
        let s = PageState::HostSharedWith(Borrower::Hyp);
        assert_eq!((s.owner(), s.borrower()), (Owner::Host, Some(Owner::Hyp)));
        assert!(s.host_may_access() && !s.guest_may_access(vm) && s.hyp_may_access());
        let s = PageState::PendingReclaim(vm);
        assert_eq!(
            (s.owner(), s.owner_state(), s.borrower()),
            (Owner::Hyp, OwnerState::Exclusive, None)
        );
        assert!(!s.host_may_access() && !s.guest_may_access(vm));
        assert!(PageState::HostSharedWith(Borrower::Hyp).hyp_may_access());
        let s = PageState::HypPool(vm);
        assert_eq!((s.owner(), s.guest()), (Owner::Hyp, None));
        assert!(!s.host_may_access() && !s.guest_may_access(vm) && s.hyp_may_access());
        let s = PageState::Sanitizing;
        assert_eq!(
            (s.owner(), s.borrower(), s.guest()),
            (Owner::Hyp, None, None)
        );
        assert!(!s.host_may_access() && !s.guest_may_access(vm) && s.hyp_may_access());
        let s = PageState::ZeroingForGuest(vm);
        assert_eq!(
            (s.owner(), s.owner_state(), s.borrower(), s.guest()),
            (Owner::Hyp, OwnerState::Exclusive, None, None)
        );
        assert!(!s.host_may_access() && !s.guest_may_access(vm) && s.hyp_may_access());
        assert_eq!(VmId::new(0), None);
        assert_eq!(VmId::new(0xfff), None);
    }
}
