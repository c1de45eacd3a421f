//! The shared libtest-style runner (`el1_rt::testing`), under the names this image's tests
//! use.

pub(crate) use el1_rt::bail;
pub use el1_rt::testing::{Failure, Test, TestCtx as Ctx, TestResult, run_all};
