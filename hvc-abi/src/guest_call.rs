//! Calls a protected guest makes (HVC #0 from its EL1), and which of its HVCs the payload
//! answers versus forwards to the host.

use crate::args::{check_mbz, pack};
use crate::exit::Exit;
use crate::limits::{
    MAX_IPA_BITS, check_ipa_range, check_nr_limit, check_nr_nonzero, check_page_aligned,
};
use crate::psci::{GuestPsci, is_psci};
use crate::smccc::{GuestSmccc, is_arch, is_trng};
use crate::{Error, FunctionId};

/// A decoded guest call. `ipa` is a byte address, page aligned; `nr` a page count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestCall {
    /// SMCCC `VENDOR_HYP_CALL_UID`: x0..x3 = our UID. Arguments ignored.
    CallUid,
    /// FEATURES: x1 = version, x2 = the guest call bitmap.
    Features,
    /// HYP_MEMINFO: x1 = the protection granule in bytes (4096).
    HypMeminfo,
    /// MEM_SHARE(ipa, nr): guest-owned pages become accessible to the host too.
    MemShare {
        /// First byte of the range, page aligned.
        ipa: u64,
        /// Page count.
        nr: u32,
    },
    /// MEM_UNSHARE(ipa, nr): ends a MEM_SHARE.
    MemUnshare {
        /// First byte of the range, page aligned.
        ipa: u64,
        /// Page count.
        nr: u32,
    },
    /// MEM_RELINQUISH(ipa, nr): the guest gives pages back to the host.
    MemRelinquish {
        /// First byte of the range, page aligned.
        ipa: u64,
        /// Page count.
        nr: u32,
    },
    /// MMIO_GUARD_MAP(ipa): a guest access to this page, which has none, may exit as MMIO.
    MmioGuardMap {
        /// The page, page aligned.
        ipa: u64,
    },
    /// MMIO_GUARD_UNMAP(ipa): ends an MMIO_GUARD_MAP.
    MmioGuardUnmap {
        /// The page, page aligned.
        ipa: u64,
    },
    /// IPA_STATE(ipa): x1 = the page's [`IpaState`].
    IpaState {
        /// The page, page aligned.
        ipa: u64,
    },
    /// PSCI SYSTEM_OFF: the vCPU exits with SYSTEM_OFF. Arguments ignored.
    SystemOff,
    /// PSCI SYSTEM_RESET: the vCPU exits with SYSTEM_RESET. Arguments ignored.
    SystemReset,
    /// Any other PSCI call the payload serves for guests (docs/abi.md 5.5).
    Psci(GuestPsci),
    /// An SMCCC architecture or TRNG call (docs/abi.md 5.8).
    Smccc(GuestSmccc),
}

impl GuestCall {
    /// Decodes x0..x7 of a guest HVC that [`route_guest_hvc`] gives to the payload.
    ///
    /// Errors: NOT_SUPPORTED for ids that are not guest calls (including host calls,
    /// SMC32 and yielding forms of our numbers); INVALID_PARAMETER, then RANGE, as
    /// `docs/abi.md` lists them. The range is checked against the largest IPA space;
    /// the check against the VM's own `ipa_bits` is the payload's.
    pub fn decode(regs: &[u64; 8]) -> Result<Self, Error> {
        match FunctionId::from_x0(regs[0]) {
            FunctionId::VENDOR_HYP_CALL_UID => Ok(Self::CallUid),
            FunctionId::PSCI_SYSTEM_OFF => Ok(Self::SystemOff),
            FunctionId::PSCI_SYSTEM_RESET => Ok(Self::SystemReset),
            FunctionId::FEATURES => {
                check_mbz(regs, 1)?;
                Ok(Self::Features)
            }
            FunctionId::HYP_MEMINFO => {
                check_mbz(regs, 1)?;
                Ok(Self::HypMeminfo)
            }
            FunctionId::MEM_SHARE => {
                let (ipa, nr) = decode_ipa_nr(regs)?;
                Ok(Self::MemShare { ipa, nr })
            }
            FunctionId::MEM_UNSHARE => {
                let (ipa, nr) = decode_ipa_nr(regs)?;
                Ok(Self::MemUnshare { ipa, nr })
            }
            FunctionId::MEM_RELINQUISH => {
                let (ipa, nr) = decode_ipa_nr(regs)?;
                Ok(Self::MemRelinquish { ipa, nr })
            }
            FunctionId::MMIO_GUARD_MAP => Ok(Self::MmioGuardMap {
                ipa: decode_ipa(regs)?,
            }),
            FunctionId::MMIO_GUARD_UNMAP => Ok(Self::MmioGuardUnmap {
                ipa: decode_ipa(regs)?,
            }),
            FunctionId::IPA_STATE => Ok(Self::IpaState {
                ipa: decode_ipa(regs)?,
            }),
            FunctionId(id) if is_psci(id) => match GuestPsci::decode(id, regs) {
                Some(psci) => Ok(Self::Psci(psci)),
                None => Err(Error::NotSupported),
            },
            FunctionId(id) if is_arch(id) || is_trng(id) => match GuestSmccc::decode(id, regs) {
                Some(smccc) => Ok(Self::Smccc(smccc)),
                None => Err(Error::NotSupported),
            },
            _ => Err(Error::NotSupported),
        }
    }

    /// The function id of this call.
    pub const fn function_id(&self) -> FunctionId {
        match self {
            Self::CallUid => FunctionId::VENDOR_HYP_CALL_UID,
            Self::Features => FunctionId::FEATURES,
            Self::HypMeminfo => FunctionId::HYP_MEMINFO,
            Self::MemShare { .. } => FunctionId::MEM_SHARE,
            Self::MemUnshare { .. } => FunctionId::MEM_UNSHARE,
            Self::MemRelinquish { .. } => FunctionId::MEM_RELINQUISH,
            Self::MmioGuardMap { .. } => FunctionId::MMIO_GUARD_MAP,
            Self::MmioGuardUnmap { .. } => FunctionId::MMIO_GUARD_UNMAP,
            Self::IpaState { .. } => FunctionId::IPA_STATE,
            Self::SystemOff => FunctionId::PSCI_SYSTEM_OFF,
            Self::SystemReset => FunctionId::PSCI_SYSTEM_RESET,
            Self::Psci(psci) => FunctionId(psci.function_id()),
            Self::Smccc(smccc) => FunctionId(smccc.function_id()),
        }
    }

    /// x0..x7 for the HVC: id in x0, arguments from x1, every other register zero.
    pub fn encode(&self) -> [u64; 8] {
        let id = self.function_id();
        match *self {
            Self::CallUid
            | Self::Features
            | Self::HypMeminfo
            | Self::SystemOff
            | Self::SystemReset => pack(id, &[]),
            Self::MemShare { ipa, nr }
            | Self::MemUnshare { ipa, nr }
            | Self::MemRelinquish { ipa, nr } => pack(id, &[ipa, nr.into()]),
            Self::MmioGuardMap { ipa } | Self::MmioGuardUnmap { ipa } | Self::IpaState { ipa } => {
                pack(id, &[ipa])
            }
            Self::Psci(psci) => psci.encode(),
            Self::Smccc(smccc) => smccc.encode(),
        }
    }
}

/// The arguments of MEM_SHARE, MEM_UNSHARE and MEM_RELINQUISH: (ipa, nr), x3..x7 MBZ.
fn decode_ipa_nr(regs: &[u64; 8]) -> Result<(u64, u32), Error> {
    let [_, ipa, nr, _, _, _, _, _] = *regs;
    check_mbz(regs, 3)?;
    check_page_aligned(ipa)?;
    check_nr_nonzero(nr)?;
    let nr = check_nr_limit(nr)?;
    check_ipa_range(ipa, nr, MAX_IPA_BITS)?;
    Ok((ipa, nr))
}

/// The state of a guest IPA page as IPA_STATE returns it in x1 (docs/abi.md 5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum IpaState {
    /// No page, not registered as MMIO.
    Unmapped = 0,
    /// A page only the guest can access (VM_DONATE).
    Owned = 1,
    /// A page of the guest's that the host can access too (MEM_SHARE).
    Shared = 2,
    /// No page; registered as MMIO (MMIO_GUARD_MAP).
    Mmio = 3,
}

impl IpaState {
    /// The state x1 holds, if any.
    pub const fn from_x1(x1: u64) -> Option<Self> {
        Some(match x1 {
            0 => Self::Unmapped,
            1 => Self::Owned,
            2 => Self::Shared,
            3 => Self::Mmio,
            _ => return None,
        })
    }
}

/// The argument of MMIO_GUARD_MAP, MMIO_GUARD_UNMAP and IPA_STATE: one page `ipa`, x2..x7
/// MBZ.
fn decode_ipa(regs: &[u64; 8]) -> Result<u64, Error> {
    let ipa = regs[1];
    check_mbz(regs, 2)?;
    check_page_aligned(ipa)?;
    check_ipa_range(ipa, 1, MAX_IPA_BITS)?;
    Ok(ipa)
}

/// Who answers a guest HVC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestRoute {
    /// The payload answers: a guest call, or the error to return in the guest's x0.
    Payload(Result<GuestCall, Error>),
    /// Not the payload's: the vCPU exits to the host with this `Exit::GuestHvc`.
    Forward(Exit),
}

/// Sorts a guest HVC: ids in the Vendor Specific Hypervisor Service range (owner 6, any
/// call type), every PSCI id (owner 4, functions 0x00..=0x1F), every SMCCC architecture
/// call (owner 0) and every TRNG id (owner 4, functions 0x50..=0x5F) are the payload's;
/// every other id is forwarded with the guest's W0 as passed and its x1.
pub fn route_guest_hvc(regs: &[u64; 8]) -> GuestRoute {
    let id = FunctionId::from_x0(regs[0]);
    if id.is_vendor_hyp_service() || is_psci(id.0) || is_arch(id.0) || is_trng(id.0) {
        GuestRoute::Payload(GuestCall::decode(regs))
    } else {
        GuestRoute::Forward(Exit::GuestHvc {
            function_id: regs[0] as u32,
            x1: regs[1],
        })
    }
}
