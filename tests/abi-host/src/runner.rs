//! The shared libtest-style runner (`el1_rt::testing`), under the names this image's tests
//! use.

pub(crate) use el1_rt::bail;
pub use el1_rt::testing::{Failure, Test, TestCtx as Ctx, TestResult, run_all};

/// The first CPU other than the calling one, as (index, MPIDR), for tests that run
/// something on a second CPU.
pub fn another_cpu(ctx: &Ctx) -> Result<(usize, u64), Failure> {
    let own = el1_rt::cpus::own_mpidr();
    let Some(found) = ctx
        .platform
        .board
        .cpus
        .iter()
        .find(|&(_, mpidr)| mpidr != own)
    else {
        bail!("needs a second CPU (-smp 2 or more)");
    };
    Ok(found)
}
