//! A one-line message in a fixed buffer (the image has no allocator): why a test failed,
//! or what a stress operation saw that the document does not allow. The shared
//! `el1_rt::testing::Failure`, under the name this image uses.

pub use el1_rt::testing::{Failure as Msg, TestResult};
pub(crate) use el1_rt::{bail, ensure};
