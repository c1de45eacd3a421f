//! Tables 7.1 and 7.2 of `docs/abi.md`, cell by cell. The case generator reads the
//! outcome of a call on a page or IPA state from here; `tests/doc_tables.rs` checks every
//! cell against the document's text.

use crate::states::{IpaState, PageState};

/// A cell of table 7.1: the call is refused, or the page ends in a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageCell {
    Denied,
    To(PageState),
    /// `→ HOST (zeroed)`.
    ToZeroed(PageState),
}

/// The columns of table 7.1, in the document's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageColumn {
    HostShareHyp,
    HostUnshareHyp,
    VmTopup,
    VmDonate,
    VmReclaim,
}

impl PageColumn {
    pub const ALL: [PageColumn; 5] = [
        PageColumn::HostShareHyp,
        PageColumn::HostUnshareHyp,
        PageColumn::VmTopup,
        PageColumn::VmDonate,
        PageColumn::VmReclaim,
    ];

    /// The column header in the document.
    pub const fn doc_name(self) -> &'static str {
        match self {
            PageColumn::HostShareHyp => "HOST_SHARE_HYP",
            PageColumn::HostUnshareHyp => "HOST_UNSHARE_HYP",
            PageColumn::VmTopup => "VM_TOPUP",
            PageColumn::VmDonate => "VM_DONATE",
            PageColumn::VmReclaim => "VM_RECLAIM",
        }
    }
}

use PageCell::{Denied as D, To, ToZeroed};

/// Table 7.1: rows in the order of [`PageState::ALL`], columns in the order of
/// [`PageColumn::ALL`].
pub const TABLE_7_1: [[PageCell; 5]; 9] = [
    // HOST
    [
        To(PageState::SharedHyp),
        D,
        To(PageState::VmPool),
        To(PageState::GuestOwned),
        D,
    ],
    // HOST_SHARED_HYP
    [D, To(PageState::Host), D, D, D],
    // GUEST_OWNED
    [D, D, D, D, D],
    // GUEST_SHARED
    [D, D, D, D, D],
    // VM_POOL
    [D, D, D, D, D],
    // RECLAIMABLE
    [D, D, D, D, ToZeroed(PageState::Host)],
    // HYP
    [D, D, D, D, D],
    // MMIO
    [D, D, D, D, D],
    // NO_RAM
    [D, D, D, D, D],
];

/// The cell of table 7.1 for `state` and `column`.
pub fn page_cell(state: PageState, column: PageColumn) -> PageCell {
    let row = PageState::ALL.iter().position(|&s| s == state).unwrap_or(0);
    let col = PageColumn::ALL
        .iter()
        .position(|&c| c == column)
        .unwrap_or(0);
    TABLE_7_1[row][col]
}

/// A cell of table 7.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpaCell {
    Denied,
    NotFound,
    To(IpaState),
    /// `→ UNMAPPED (page → HOST, zeroed)` or `(page → HOST[, contents kept])`.
    Unmapped {
        zeroed: bool,
    },
}

/// The columns of table 7.2, in the document's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpaColumn {
    VmDonate,
    MemShare,
    MemUnshare,
    MemRelinquish,
}

impl IpaColumn {
    pub const ALL: [IpaColumn; 4] = [
        IpaColumn::VmDonate,
        IpaColumn::MemShare,
        IpaColumn::MemUnshare,
        IpaColumn::MemRelinquish,
    ];

    pub const fn doc_name(self) -> &'static str {
        match self {
            IpaColumn::VmDonate => "VM_DONATE",
            IpaColumn::MemShare => "MEM_SHARE",
            IpaColumn::MemUnshare => "MEM_UNSHARE",
            IpaColumn::MemRelinquish => "MEM_RELINQUISH",
        }
    }
}

const ID: IpaCell = IpaCell::Denied;
const NF: IpaCell = IpaCell::NotFound;

/// Table 7.2: rows in the order of [`IpaState::ALL`], columns in the order of
/// [`IpaColumn::ALL`].
pub const TABLE_7_2: [[IpaCell; 4]; 3] = [
    // UNMAPPED
    [IpaCell::To(IpaState::GuestOwned), NF, NF, NF],
    // GUEST_OWNED
    [
        ID,
        IpaCell::To(IpaState::GuestShared),
        ID,
        IpaCell::Unmapped { zeroed: true },
    ],
    // GUEST_SHARED
    [ID, ID, IpaCell::To(IpaState::GuestOwned), ID],
];

/// The cell of table 7.2 for `state` and `column`.
pub fn ipa_cell(state: IpaState, column: IpaColumn) -> IpaCell {
    let row = IpaState::ALL.iter().position(|&s| s == state).unwrap_or(0);
    let col = IpaColumn::ALL
        .iter()
        .position(|&c| c == column)
        .unwrap_or(0);
    TABLE_7_2[row][col]
}
