//! The page states of `docs/abi.md` section 7, as the suite names them.

use core::fmt;

/// A physical page's state (section 7.1). Every 4 KiB page of the PA space is in exactly
/// one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// Owned by the host, exclusively.
    Host,
    /// Owned by the host, shared with EL2 (HOST_SHARE_HYP).
    SharedHyp,
    /// Donated to a live guest, private (VM_DONATE).
    GuestOwned,
    /// Owned by a live guest, shared with the host (MEM_SHARE).
    GuestShared,
    /// Topped up to a live VM (VM_TOPUP).
    VmPool,
    /// Was guest memory or pool of a VM now destroyed.
    Reclaimable,
    /// The payload's carve-out.
    Hyp,
    /// A device region of the platform.
    Mmio,
    /// Neither RAM nor a device region.
    NoRam,
}

impl PageState {
    /// Every state, in the order of the document's table 7.1.
    pub const ALL: [PageState; 9] = [
        PageState::Host,
        PageState::SharedHyp,
        PageState::GuestOwned,
        PageState::GuestShared,
        PageState::VmPool,
        PageState::Reclaimable,
        PageState::Hyp,
        PageState::Mmio,
        PageState::NoRam,
    ];

    /// The name in case names (`host`, `shared_hyp`, ...).
    pub const fn case_name(self) -> &'static str {
        match self {
            PageState::Host => "host",
            PageState::SharedHyp => "shared_hyp",
            PageState::GuestOwned => "guest_owned",
            PageState::GuestShared => "guest_shared",
            PageState::VmPool => "vm_pool",
            PageState::Reclaimable => "reclaimable",
            PageState::Hyp => "hyp",
            PageState::Mmio => "mmio",
            PageState::NoRam => "no_ram",
        }
    }

    /// The name the document uses (`HOST`, `HOST_SHARED_HYP`, ...).
    pub const fn doc_name(self) -> &'static str {
        match self {
            PageState::Host => "HOST",
            PageState::SharedHyp => "HOST_SHARED_HYP",
            PageState::GuestOwned => "GUEST_OWNED",
            PageState::GuestShared => "GUEST_SHARED",
            PageState::VmPool => "VM_POOL",
            PageState::Reclaimable => "RECLAIMABLE",
            PageState::Hyp => "HYP",
            PageState::Mmio => "MMIO",
            PageState::NoRam => "NO_RAM",
        }
    }

    /// Whether the host may access a page in this state (table 7.1, "Host access"). `None`
    /// for MMIO, which the host accesses "as the platform maps it".
    pub const fn host_access(self) -> Option<bool> {
        match self {
            PageState::Host | PageState::SharedHyp | PageState::GuestShared => Some(true),
            PageState::GuestOwned
            | PageState::VmPool
            | PageState::Reclaimable
            | PageState::Hyp
            | PageState::NoRam => Some(false),
            PageState::Mmio => None,
        }
    }

    /// The IPA state a page in this state gives the IPA that maps it (section 7.2).
    pub const fn as_ipa_state(self) -> Option<IpaState> {
        match self {
            PageState::GuestOwned => Some(IpaState::GuestOwned),
            PageState::GuestShared => Some(IpaState::GuestShared),
            _ => None,
        }
    }
}

impl fmt::Display for PageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.doc_name())
    }
}

/// A guest IPA page's state (section 7.2): unmapped, or the state of the page it maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpaState {
    Unmapped,
    GuestOwned,
    GuestShared,
}

impl IpaState {
    /// Every state, in the order of the document's table 7.2.
    pub const ALL: [IpaState; 3] = [
        IpaState::Unmapped,
        IpaState::GuestOwned,
        IpaState::GuestShared,
    ];

    /// The name in case names (`ipa_unmapped`, ...).
    pub const fn case_name(self) -> &'static str {
        match self {
            IpaState::Unmapped => "ipa_unmapped",
            IpaState::GuestOwned => "ipa_guest_owned",
            IpaState::GuestShared => "ipa_guest_shared",
        }
    }

    /// The name the document uses.
    pub const fn doc_name(self) -> &'static str {
        match self {
            IpaState::Unmapped => "UNMAPPED",
            IpaState::GuestOwned => "GUEST_OWNED",
            IpaState::GuestShared => "GUEST_SHARED",
        }
    }

    /// The physical page state of the page behind an IPA in this state.
    pub const fn page_state(self) -> Option<PageState> {
        match self {
            IpaState::Unmapped => None,
            IpaState::GuestOwned => Some(PageState::GuestOwned),
            IpaState::GuestShared => Some(PageState::GuestShared),
        }
    }
}

impl fmt::Display for IpaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.doc_name())
    }
}

/// What the first word of a test page holds, as far as the suite knows: the page's
/// marker (written by the host before the page is given away), zero (the payload zeroed
/// it), or anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Content {
    Marker,
    Zero,
    Other,
}

impl Content {
    /// Classifies a word read from page `pfn`.
    pub const fn of(value: u64, pfn: u64) -> Self {
        if value == marker(pfn) {
            Content::Marker
        } else if value == 0 {
            Content::Zero
        } else {
            Content::Other
        }
    }
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Content::Marker => "marker",
            Content::Zero => "zero",
            Content::Other => "other data",
        })
    }
}

/// The marker the host writes into the first word of test page `pfn`: unique per page,
/// never zero.
pub const fn marker(pfn: u64) -> u64 {
    0xC0FE_0000_0000_0000 | (pfn & 0x0000_FFFF_FFFF_FFFF)
}
