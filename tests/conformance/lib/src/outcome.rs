//! What a call did, summarised without the values that differ between runs (handles,
//! host addresses), so that the document's promise, the model's answer and the payload's
//! answer compare by equality and print the same way.

use crate::backend::FORWARD_REPLY;
use crate::plan::{FirmwareCall, ReturnKind};
use core::fmt;
use hvc_abi::function_id::is_our_uid;
use hvc_abi::{Error, Exit, MmioAccess};

/// x0..x3 of a return, classified (section 1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// x0 = 0, x1..x3 = 0.
    Ok,
    /// VM_CREATE: x0 = 0, x1 = a nonzero handle, x2 = x3 = 0.
    Handle,
    /// x0 = 0 and these results in x1..x3.
    Values([u64; 3]),
    /// VENDOR_HYP_CALL_UID: exactly our UID, zero-extended.
    Uid,
    /// x0 = the error, sign-extended, x1..x3 = 0.
    Error(Error),
    /// VCPU_RUN: x0 = 0 and a valid exit in x1..x3.
    Exit(Exit),
    /// A forwarded guest HVC: x0 = the host's completion (`FORWARD_REPLY`), x1..x3 = 0.
    Reply,
    /// A firmware call's answer in the form 5.8 allows (the value is the firmware's; see
    /// [`FirmwareCall`]).
    Firmware,
    /// Anything else (an error with a result register set, a 32-bit error, ...).
    Raw([u64; 4]),
}

impl Ret {
    /// Classifies x0..x3 of a call whose successful return is read as `kind`.
    pub fn classify(regs: [u64; 4], kind: ReturnKind) -> Self {
        let [x0, x1, x2, x3] = regs;
        if kind == ReturnKind::Uid {
            // Only an exact, zero-extended UID counts (section 2).
            return if is_our_uid(regs) && regs.iter().all(|r| r >> 32 == 0) {
                Ret::Uid
            } else {
                Ret::Raw(regs)
            };
        }
        if let ReturnKind::Firmware(call) = kind {
            return if firmware_answer(regs, call) {
                Ret::Firmware
            } else {
                Ret::Raw(regs)
            };
        }
        if kind == ReturnKind::Reply {
            return if regs == [FORWARD_REPLY, 0, 0, 0] {
                Ret::Reply
            } else {
                Ret::Raw(regs)
            };
        }
        if x0 != 0 {
            return match Error::from_i64(x0 as i64) {
                Some(error) if [x1, x2, x3] == [0; 3] => Ret::Error(error),
                _ => Ret::Raw(regs),
            };
        }
        match kind {
            ReturnKind::Handle if x1 != 0 && x2 == 0 && x3 == 0 => Ret::Handle,
            ReturnKind::Exit => match Exit::decode([x1, x2, x3]) {
                Ok(exit) => Ret::Exit(exit),
                Err(_) => Ret::Raw(regs),
            },
            _ if [x1, x2, x3] == [0; 3] => Ret::Ok,
            _ => Ret::Values([x1, x2, x3]),
        }
    }
}

/// SMCCC's NOT_SUPPORTED, INVALID_PARAMETERS (TRNG), NOT_REQUIRED and NO_ENTROPY (TRNG).
const SMCCC_NOT_SUPPORTED: u64 = -1i64 as u64;
const SMCCC_MINUS_2: u64 = -2i64 as u64;
const TRNG_NO_ENTROPY: u64 = -3i64 as u64;

/// Whether x0..x3 are an answer the firmware call `call` may give (5.8, and the
/// specifications [`FirmwareCall`] names).
fn firmware_answer(regs: [u64; 4], call: FirmwareCall) -> bool {
    let [x0, x1, x2, x3] = regs;
    let results_clear = [x1, x2, x3] == [0; 3];
    match call {
        FirmwareCall::WorkaroundFeatures => {
            results_clear && matches!(x0, 0 | 1 | SMCCC_NOT_SUPPORTED | SMCCC_MINUS_2)
        }
        FirmwareCall::Workaround => results_clear,
        FirmwareCall::TrngVersion => {
            results_clear && (x0 == SMCCC_NOT_SUPPORTED || (x0 != 0 && x0 >> 31 == 0))
        }
        FirmwareCall::TrngFeatures => results_clear && matches!(x0, 0 | SMCCC_NOT_SUPPORTED),
        FirmwareCall::TrngUuid => {
            (x0 == SMCCC_NOT_SUPPORTED && results_clear)
                || (x0 != SMCCC_NOT_SUPPORTED && regs.iter().all(|r| r >> 32 == 0))
        }
        FirmwareCall::TrngRnd => {
            x0 == 0
                || (results_clear
                    && matches!(x0, SMCCC_NOT_SUPPORTED | SMCCC_MINUS_2 | TRNG_NO_ENTROPY))
        }
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Ok => f.write_str("OK"),
            Ret::Handle => f.write_str("OK handle"),
            Ret::Values([x1, x2, x3]) => write!(f, "OK x1={x1:#x} x2={x2:#x} x3={x3:#x}"),
            Ret::Uid => f.write_str("UID"),
            Ret::Error(error) => f.write_str(error.name()),
            Ret::Exit(exit) => write!(f, "exit {}", ExitText(exit)),
            Ret::Reply => f.write_str("the host's reply"),
            Ret::Firmware => f.write_str("a firmware answer"),
            Ret::Raw([x0, x1, x2, x3]) => {
                write!(f, "x0={x0:#x} x1={x1:#x} x2={x2:#x} x3={x3:#x}")
            }
        }
    }
}

/// An exit as the suite prints it: its document name and fields.
pub struct ExitText<'a>(pub &'a Exit);

impl fmt::Display for ExitText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.reason().name();
        match *self.0 {
            Exit::Irq | Exit::SystemOff | Exit::SystemReset | Exit::VcpuOff => f.write_str(name),
            Exit::VcpuStarted { vcpu } => write!(f, "{name} vcpu={vcpu}"),
            Exit::Mmio {
                ipa,
                size,
                register,
                access,
            } => {
                write!(
                    f,
                    "{name} ipa={ipa:#x} size={} rt={register} ",
                    size.bytes()
                )?;
                match access {
                    MmioAccess::Read => f.write_str("read"),
                    MmioAccess::Write { data } => write!(f, "write {data:#x}"),
                }
            }
            Exit::GuestHvc { function_id, x1 } => {
                write!(f, "{name} w0={function_id:#x} x1={x1:#x}")
            }
            Exit::MemShared { ipa, nr }
            | Exit::MemUnshared { ipa, nr }
            | Exit::MemRelinquished { ipa, nr } => write!(f, "{name} ipa={ipa:#x} nr={nr}"),
            Exit::MemFault { ipa } => write!(f, "{name} ipa={ipa:#x}"),
        }
    }
}

/// How a guest's call ended, as its host saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestEnd {
    /// The guest got these x0..x3 back and carried on.
    Returned(Ret),
    /// No return to the guest: the VM stopped (SYSTEM_OFF, SYSTEM_RESET) or the vCPU
    /// powered off (CPU_OFF).
    Stopped,
    /// A VCPU_RUN that should have run the guest returned this instead.
    RunFailed(Ret),
    /// The vCPU exited in a way the conformance guest never causes.
    Unexpected(Exit),
}

/// The outcome of the call under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Summary {
    /// A host call's return.
    Host(Ret),
    /// A guest call: the exit it caused (if any), then how it ended.
    Guest { exit: Option<Exit>, end: GuestEnd },
}

impl Summary {
    /// A guest call that returned `ret` without an exit.
    pub const fn guest(ret: Ret) -> Self {
        Summary::Guest {
            exit: None,
            end: GuestEnd::Returned(ret),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Summary::Host(ret) => write!(f, "{ret}"),
            Summary::Guest { exit, end } => {
                if let Some(exit) = exit {
                    write!(f, "exit {}, ", ExitText(exit))?;
                }
                match end {
                    GuestEnd::Returned(ret) => write!(f, "guest gets {ret}"),
                    GuestEnd::Stopped => f.write_str("no return"),
                    GuestEnd::RunFailed(ret) => write!(f, "VCPU_RUN gave {ret}"),
                    GuestEnd::Unexpected(exit) => write!(f, "unexpected exit {}", ExitText(exit)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_must_clear_the_result_registers() {
        let denied = Error::Denied.as_x0();
        assert_eq!(
            Ret::classify([denied, 0, 0, 0], ReturnKind::Status),
            Ret::Error(Error::Denied)
        );
        assert_eq!(
            Ret::classify([denied, 1, 0, 0], ReturnKind::Status),
            Ret::Raw([denied, 1, 0, 0])
        );
    }

    #[test]
    fn a_32_bit_error_is_not_an_error() {
        let regs = [0xFFFF_FFFF, 0, 0, 0];
        assert_eq!(Ret::classify(regs, ReturnKind::Status), Ret::Raw(regs));
    }

    #[test]
    fn handles_and_exits_are_summarised_without_their_values() {
        assert_eq!(
            Ret::classify([0, 0x1_0003, 0, 0], ReturnKind::Handle),
            Ret::Handle
        );
        assert_eq!(
            Ret::classify([0, 8, 0, 0], ReturnKind::Exit),
            Ret::Exit(Exit::SystemOff)
        );
        assert_eq!(Ret::classify([0, 0, 0, 0], ReturnKind::Handle), Ret::Ok);
    }

    #[test]
    fn a_firmware_answer_is_judged_by_its_form_only() {
        let features = ReturnKind::Firmware(FirmwareCall::WorkaroundFeatures);
        for x0 in [0, 1, -1i64 as u64, -2i64 as u64] {
            assert_eq!(Ret::classify([x0, 0, 0, 0], features), Ret::Firmware);
        }
        assert_eq!(
            Ret::classify([2, 0, 0, 0], features),
            Ret::Raw([2, 0, 0, 0])
        );
        let rnd = ReturnKind::Firmware(FirmwareCall::TrngRnd);
        assert_eq!(Ret::classify([0, 7, 8, 9], rnd), Ret::Firmware);
        assert_eq!(
            Ret::classify([-3i64 as u64, 1, 0, 0], rnd),
            Ret::Raw([-3i64 as u64, 1, 0, 0])
        );
        // A forwarded call's reply is no firmware answer.
        let workaround = ReturnKind::Firmware(FirmwareCall::Workaround);
        assert_eq!(
            Ret::classify([FORWARD_REPLY, 1, 0, 0], workaround),
            Ret::Raw([FORWARD_REPLY, 1, 0, 0])
        );
    }

    #[test]
    fn summaries_print_in_the_documents_words() {
        let shared = Summary::Guest {
            exit: Some(Exit::MemShared {
                ipa: 0x4020_0000,
                nr: 1,
            }),
            end: GuestEnd::Returned(Ret::Ok),
        };
        assert_eq!(
            shared.to_string(),
            "exit MEM_SHARED ipa=0x40200000 nr=1, guest gets OK"
        );
        assert_eq!(Summary::Host(Ret::Error(Error::Range)).to_string(), "RANGE");
    }
}
