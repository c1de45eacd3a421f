//! The shared libtest-style runner (`el1_rt::testing`), under the names this image's tests
//! use.

pub use el1_rt::testing::{Test, TestCtx as Ctx, run_all};
