//! The conformance suite of the hypercall ABI (`docs/abi.md`).
//!
//! It speaks only the ABI: function ids, registers, errors and exits (`hvc-abi`), page
//! states and their tables (the document). Nothing here knows how a payload is built.
//!
//! - [`model`]: an executable model of the ABI in plain data (page states per pfn, VMs,
//!   vCPUs, handles), written from sections 4 to 7 of the document, precedence included.
//! - [`cases`]: the case matrix, generated from transcriptions of the document's tables:
//!   every call x the page or IPA states it can meet x the argument classes of its error
//!   table, plus the pairs of error rows that check precedence. Each case has a stable
//!   name `call/state/argclass`.
//! - [`plan`]: the symbolic world a case is written in (VMs, pages and guest frames by
//!   role, setup steps that are ABI calls, the call, what to observe).
//! - [`backend`]: what the runner needs from the thing under test: raw host calls, host
//!   reads that may abort, a guest that makes calls, a vCPU kept running on another CPU.
//! - [`runner`]: runs one case against a backend: setup, "before" observation, the call,
//!   "after" observation, teardown; and the TAP line of the result.
//! - [`model_backend`]: the model as a backend, so the same cases run on the x86 machine.
//! - [`observe`]: what is read to check a page, guest frame, VM or vCPU from both sides,
//!   and what the document says must be read in each state ([`states`]).
//! - [`outcome`]: a call's result summarised without run-specific values (handles), so
//!   that the document, the model and the payload compare by equality.
//! - [`tap`]: the TAP 14 lines both runs print, and their parser (used by `cargo xtask
//!   conformance` to compare the payload's results with the model's).
#![cfg_attr(not(test), no_std)]

pub mod backend;
pub mod cases;
pub mod model;
pub mod model_backend;
pub mod observe;
pub mod outcome;
pub mod plan;
pub mod runner;
pub mod states;
pub mod tap;

pub use backend::Backend;
pub use cases::{Boot, Case, all_cases, boot_cases};
pub use runner::{CaseResult, run_case};
