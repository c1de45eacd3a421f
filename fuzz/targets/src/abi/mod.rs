//! The `abi_decode` target: register sets from the input go through every decoder of
//! `hvc-abi`, and each answer is checked against `docs/abi.md` ([`spec`]).
//!
//! For every register set:
//! - `HostCall::decode` and `GuestCall::decode` return exactly the error the document's
//!   stateless rows give (so errors come only from the documented set, in the documented
//!   order), or a call whose `encode` gives back the registers (x0 reduced to the function
//!   id; UID and PSCI calls ignore their arguments) and decodes to the same call;
//! - `route_guest_hvc` keeps owner-6 and PSCI SYSTEM_OFF/RESET ids for the payload (with
//!   `GuestCall::decode`'s answer) and forwards every other id as a GUEST_HVC exit that
//!   round-trips;
//! - `Return` reads x0..x3 as the document says (0, one of the seven errors, or a protocol
//!   violation) and round-trips;
//! - `Exit::decode` accepts exactly the exits section 6 allows, only ever fails with
//!   INVALID_PARAMETER, and `encode` gives back the registers; `encode` of any exit the
//!   payload might build decodes back to it (register index and write data reduced as
//!   documented) or is refused;
//! - handle and version encodings round-trip.
//!
//! A failed check panics with the registers and both answers.

mod inputs;
pub mod spec;

use crate::bytes::Bytes;
use hvc_abi::function_id::{GUEST_CALLS, HOST_CALLS, Version};
use hvc_abi::{
    Error, Exit, ExitReason, FunctionId, GuestCall, GuestRoute, HostCall, MmioAccess, Return,
    ReturnError, VmHandle, route_guest_hvc,
};

/// Most register sets one input is read as (more bytes are ignored).
const MAX_ROUNDS: usize = 8;

/// Runs the checks on every register set `data` holds (at least one: the empty input is
/// all-zero registers).
pub fn abi_decode(data: &[u8]) {
    let mut b = Bytes::new(data);
    for round in 0..MAX_ROUNDS {
        if round > 0 && b.is_empty() {
            break;
        }
        let regs = inputs::registers(&mut b);
        check_function_id(regs[0]);
        check_host_call(&regs);
        check_guest_call(&regs);
        check_route(&regs);
        check_return(&regs);
        check_handle_and_version(&regs);
        check_exit_decode(inputs::exit_registers(&mut b));
        check_exit_encode(inputs::exit(&mut b));
    }
}

fn check_function_id(x0: u64) {
    let id = FunctionId::from_x0(x0);
    assert_eq!(id.0, spec::function_id(x0), "FunctionId::from_x0({x0:#x})");
    assert_eq!(id.to_x0(), u64::from(id.0));
    let mut regs = [0; 8];
    regs[0] = x0;
    let host = spec::host_call(&regs) != Err(Error::NotSupported);
    let guest = spec::guest_call(&regs) != Err(Error::NotSupported);
    assert_eq!(HOST_CALLS.contains(&id), host, "{id:x?} in HOST_CALLS");
    assert_eq!(GUEST_CALLS.contains(&id), guest, "{id:x?} in GUEST_CALLS");
    assert_eq!(id.name().is_some(), host || guest, "{id:x?} has a name");
}

/// x0 as `encode` writes it: the function id, zero-extended.
fn canonical(regs: &[u64; 8]) -> [u64; 8] {
    let mut c = *regs;
    c[0] = u64::from(spec::function_id(regs[0]));
    c
}

fn check_host_call(regs: &[u64; 8]) {
    let got = HostCall::decode(regs);
    let want = spec::host_call(regs);
    assert_eq!(
        got.err(),
        want.err(),
        "HostCall::decode({regs:#x?}) = {got:?}; docs/abi.md gives {want:?}"
    );
    let Ok(call) = got else { return };
    assert_eq!(call.function_id().0, spec::function_id(regs[0]));
    let encoded = call.encode();
    assert_eq!(
        HostCall::decode(&encoded),
        Ok(call),
        "{call:?} does not survive encode/decode"
    );
    if call != HostCall::CallUid {
        assert_eq!(
            encoded,
            canonical(regs),
            "{call:?} encodes to other registers than it was decoded from"
        );
    }
}

fn check_guest_call(regs: &[u64; 8]) {
    let got = GuestCall::decode(regs);
    let want = spec::guest_call(regs);
    assert_eq!(
        got.err(),
        want.err(),
        "GuestCall::decode({regs:#x?}) = {got:?}; docs/abi.md gives {want:?}"
    );
    let Ok(call) = got else { return };
    // A PSCI call names its SMC64 form (AFFINITY_INFO has two) and ignores the registers
    // beyond its arguments (5.5); so do the SMCCC architecture and TRNG calls (5.8).
    let psci = matches!(call, GuestCall::Psci(_) | GuestCall::Smccc(_));
    if !psci {
        assert_eq!(call.function_id().0, spec::function_id(regs[0]));
    }
    let encoded = call.encode();
    assert_eq!(
        GuestCall::decode(&encoded),
        Ok(call),
        "{call:?} does not survive encode/decode"
    );
    let ignores_arguments = psci
        || matches!(
            call,
            GuestCall::CallUid | GuestCall::SystemOff | GuestCall::SystemReset
        );
    if !ignores_arguments {
        assert_eq!(
            encoded,
            canonical(regs),
            "{call:?} encodes to other registers than it was decoded from"
        );
    }
}

fn check_route(regs: &[u64; 8]) {
    let payloads = spec::guest_hvc_is_payloads(regs[0]);
    match route_guest_hvc(regs) {
        GuestRoute::Payload(answer) => {
            assert!(payloads, "{:#x} kept by the payload", regs[0]);
            assert_eq!(answer, GuestCall::decode(regs));
        }
        GuestRoute::Forward(exit) => {
            assert!(!payloads, "{:#x} forwarded to the host", regs[0]);
            assert_eq!(
                exit,
                Exit::GuestHvc {
                    function_id: regs[0] as u32,
                    x1: regs[1],
                }
            );
            assert_eq!(Exit::decode(exit.encode()), Ok(exit));
        }
    }
}

fn check_return(regs: &[u64; 8]) {
    let four = [regs[0], regs[1], regs[2], regs[3]];
    let r = Return::from_regs(four);
    assert_eq!(r.to_regs(), four);
    let documented_error = matches!(regs[0] as i64, -1 | -8..=-3);
    match r.into_result() {
        Ok(results) => {
            assert_eq!(regs[0], 0);
            assert_eq!(results, [regs[1], regs[2], regs[3]]);
        }
        Err(ReturnError::Abi(e)) => {
            assert!(documented_error, "{:#x} read as {e:?}", regs[0]);
            assert_eq!(e.as_x0(), regs[0]);
            assert_eq!(Error::from_i64(e.as_i64()), Some(e));
        }
        Err(ReturnError::Unknown(x0)) => {
            assert!(!documented_error && x0 != 0, "{x0:#x} read as unknown");
            assert_eq!(x0, regs[0]);
        }
    }
    for e in Error::ALL {
        assert_eq!(Return::err(e).to_regs(), [e.as_x0(), 0, 0, 0]);
        assert_eq!(Return::err(e).into_result(), Err(ReturnError::Abi(e)));
    }
    let ok = Return::from_result(Ok([regs[1], regs[2], regs[3]]));
    assert_eq!(ok.to_regs(), [0, regs[1], regs[2], regs[3]]);
}

fn check_handle_and_version(regs: &[u64; 8]) {
    let raw = regs[1];
    let issuable = raw >> 48 == 0 && (raw >> 16) as u32 != 0 && (raw as u16) < 16;
    match VmHandle(raw).parts() {
        Some((slot, generation)) => {
            assert!(issuable, "{raw:#x} has parts");
            assert_eq!(VmHandle::new(slot, generation), Some(VmHandle(raw)));
        }
        None => assert!(!issuable, "{raw:#x} has no parts"),
    }
    let x1 = regs[2];
    match Version::from_x1(x1) {
        Some(v) => assert_eq!(v.to_x1(), x1),
        None => assert_ne!(x1 >> 32, 0),
    }
}

fn check_exit_decode(regs: [u64; 3]) {
    let got = Exit::decode(regs);
    assert_eq!(
        got.is_ok(),
        spec::exit_is_valid(regs),
        "Exit::decode({regs:#x?}) = {got:?}"
    );
    match got {
        Ok(exit) => {
            assert_eq!(exit.encode(), regs, "{exit:?} encodes to other registers");
            assert_eq!(ExitReason::from_u8(regs[0] as u8), Some(exit.reason()));
            let [x1, x2, x3] = regs;
            assert_eq!(Return::exit(exit).to_regs(), [0, x1, x2, x3]);
        }
        Err(e) => assert_eq!(e, Error::InvalidParameter, "Exit::decode({regs:#x?})"),
    }
}

/// What `Exit::encode` documents it keeps of an MMIO exit: the register index modulo 32 and
/// the write data cut to the access size.
fn as_encoded(exit: Exit) -> Exit {
    match exit {
        Exit::Mmio {
            ipa,
            size,
            register,
            access,
        } => Exit::Mmio {
            ipa,
            size,
            register: register & 0x1F,
            access: match access {
                MmioAccess::Read => MmioAccess::Read,
                MmioAccess::Write { data } => MmioAccess::Write {
                    data: data & size.mask(),
                },
            },
        },
        other => other,
    }
}

fn check_exit_encode(exit: Exit) {
    let regs = exit.encode();
    check_exit_decode(regs);
    if let Ok(decoded) = Exit::decode(regs) {
        assert_eq!(decoded, as_encoded(exit), "{exit:?} -> {regs:#x?}");
    }
}
