//! The hypercall ABI between the host, protected guests and the EL2 payload.
//!
//! `docs/abi.md` is the contract; this crate is its executable form, shared by both sides:
//! the payload decodes calls and encodes returns and exits, host and guest code encodes
//! calls and decodes returns and exits. Decoding performs every check that needs no state
//! (MBZ registers, zero counts, alignment, count limits, address limits, wraps), so the
//! payload and any reference model answer the same arguments with the same error.
//!
//! No allocation, no panics on any input: decoders are a `match` on the function id
//! followed by checked arithmetic.
#![cfg_attr(not(test), no_std)]

mod args;
pub mod error;
pub mod exit;
pub mod function_id;
pub mod guest_call;
pub mod handle;
pub mod host_call;
pub mod limits;
pub mod psci;
pub mod ret;
pub mod smccc;

pub use error::Error;
pub use exit::{AccessSize, Exit, ExitReason, MmioAccess};
pub use function_id::{FunctionId, Version};
pub use guest_call::{GuestCall, GuestRoute, IpaState, route_guest_hvc};
pub use handle::VmHandle;
pub use host_call::HostCall;
pub use psci::{GuestPsci, PsciError};
pub use ret::{Return, ReturnError};
pub use smccc::GuestSmccc;

/// `VENDOR_HYP_CALL_UID` as a raw W0 value, for `match`es on a `u32` function id.
pub const VENDOR_HYP_CALL_UID: u32 = FunctionId::VENDOR_HYP_CALL_UID.0;
/// The `VENDOR_HYP_CALL_UID` results w0..w3 (zero-extend each into x0..x3).
pub const VENDOR_HYP_UID_REGS: [u32; 4] = function_id::UID;
