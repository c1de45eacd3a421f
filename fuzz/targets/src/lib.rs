//! The bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`, as plain functions, so that
//! the committed corpus is replayed by `cargo test` on the stable toolchain
//! (`tests/replay.rs`) and the nightly-only libFuzzer harness stays a two-line wrapper.
//!
//! - [`abi_decode`]: register sets into every decoder of `hvc-abi`, checked against the
//!   stateless rules of `docs/abi.md` (restated in [`abi::spec`]).
//! - [`ownership_ops`]: sequences of calls on `stage2::Ownership`, checked against I1-I7 on
//!   the real tables and against a reference model ([`ownership::model`]).
//!
//! Both panic on the first broken rule; that is how a fuzzer notices. This crate is a test
//! harness for the development machine, not EL2 code: it uses `std` (heap arenas for page
//! tables, hash sets for the checks) and is never built for the bare-metal targets.

pub mod abi;
pub mod bytes;
pub mod ownership;

pub use abi::abi_decode;
pub use ownership::ownership_ops;
