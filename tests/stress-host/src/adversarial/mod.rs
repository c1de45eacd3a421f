//! The adversarial host cases: calls that try to take what the host may not give, or that
//! race another CPU on purpose. Each must get its documented error, and the system must keep
//! running (the next test, and DEBUG_CHECK_INVARIANTS at the end, prove it did).

mod cpu_on;
mod destroy_latency;
mod donate_zeroing;
mod host_calls;
mod owned_pages;
mod refused_pages;
mod two_cpus;
mod unshare_reads;

pub use cpu_on::{
    cpu_on_hammer_on_running_cpu, cpu_on_of_an_mpidr_outside_the_cpu_list_is_refused,
};
pub use destroy_latency::destroy_of_a_large_vm_never_holds_other_cpus_calls_for_its_whole_teardown;
pub use donate_zeroing::donate_after_launch_never_holds_other_cpus_vm_calls_for_its_zeroing;
pub use owned_pages::{
    donated_page_refused, page_of_another_vm_refused, reclaim_from_live_vm_refused,
};
pub use refused_pages::{carve_out_refused, mmio_and_no_ram_refused};
pub use two_cpus::one_vcpu_on_two_cpus;
pub use unshare_reads::{
    guest_unshare_while_another_cpu_reads, share_hyp_and_unshare_while_another_cpu_reads,
};

/// `expect_err!(result, Denied, "what {}", x)`: the call must have failed with that error.
macro_rules! expect_err {
    ($result:expr, $error:ident, $($what:tt)*) => {
        crate::pages::expect_error($result, hvc_abi::Error::$error, format_args!($($what)*))?
    };
}
pub(crate) use expect_err;

/// `expect_ok!(result, "what {}", x)`: the call must have succeeded; gives its value.
macro_rules! expect_ok {
    ($result:expr, $($what:tt)*) => {
        crate::pages::expect_ok($result, format_args!($($what)*))?
    };
}
pub(crate) use expect_ok;

/// Guest frame the cases map pages at (inside the test guest's 32-bit IPA space).
const GFN: u64 = 0x5_0000;

/// Destroys `vm` and reclaims every page its builder gave it; they must come back zeroed.
fn retire(vm: &mut el1_rt::guest_vm::GuestVm) -> crate::msg::TestResult {
    expect_ok!(vm.destroy(), "VM_DESTROY of {:?}", vm.handle());
    let reclaimed = vm.reclaim_all()?;
    if let Some(address) = reclaimed.first_nonzero {
        crate::msg::bail!("reclaimed page {address:#x} is not zeroed");
    }
    Ok(())
}
