//! The stress host: a bare-metal EL1 image the EL2 payload starts as its host (arm64 boot
//! protocol, loaded at 0x48400000), built to run on `-smp 4` with the payload's test build
//! (`el2-selftest.bin`, which answers DEBUG_CHECK_INVARIANTS).
//!
//! It runs, as libtest-style tests (`test <name> ... ok|FAILED: why`, then
//! `N passed, M failed` and a semihosting exit with status 0 or 1):
//! - the SMP stress (stress/): every CPU makes a bounded pseudo-random sequence of host
//!   calls on overlapping pages and VMs; every result must be one docs/abi.md allows; then
//!   EL2 proves invariants I1-I4 and no page is lost;
//! - the adversarial host cases (adversarial/): pages the host may not give, pages of
//!   (other) VMs, reclaim from a live VM, one vCPU on two CPUs, unsharing under a reader,
//!   CPU_ON hammered at a running CPU, zeroing donations and a large VM destroyed while
//!   other CPUs make calls;
//! - a last invariant check.
//!
//! A panic at EL2 stops the payload with `[el2] FATAL: ...`; xtask's test case fails on
//! that line, so "no EL2 panic" is checked outside this image.

#![no_std]
#![no_main]
// Test results carry their message in a fixed buffer (`msg::Msg`, no allocator here); they
// are returned once per check, not in hot loops, so their size does not matter.
#![allow(clippy::result_large_err)]

mod adversarial;
mod clock;
mod invariants;
mod msg;
mod pages;
mod rng;
mod runner;
mod smp;
mod stress;

use el1_rt::free_pages::TEST_HOST_PAGES_FLOOR;
use el1_rt::{fail, psci};
use msg::TestResult;
use runner::{Ctx, Test};

/// The protected test guest (tests/test-guest), embedded raw (xtask sets the path).
static TEST_GUEST: &[u8] = include_bytes!(env!("TEST_GUEST_BIN"));

/// CPUs the adversarial cases use (CPU 0 and three secondaries).
const CPUS_NEEDED: usize = 4;

const TESTS: &[Test] = &[
    Test {
        name: "smp_stress",
        run: stress::smp_stress,
    },
    Test {
        name: "invariants_after_stress",
        run: stress::invariants_after_stress,
    },
    Test {
        name: "no_lost_page_after_stress",
        run: stress::no_lost_page,
    },
    Test {
        name: "carve_out_refused",
        run: adversarial::carve_out_refused,
    },
    Test {
        name: "mmio_and_no_ram_refused",
        run: adversarial::mmio_and_no_ram_refused,
    },
    Test {
        name: "donated_page_refused",
        run: adversarial::donated_page_refused,
    },
    Test {
        name: "page_of_another_vm_refused",
        run: adversarial::page_of_another_vm_refused,
    },
    Test {
        name: "reclaim_from_live_vm_refused",
        run: adversarial::reclaim_from_live_vm_refused,
    },
    Test {
        name: "one_vcpu_on_two_cpus",
        run: adversarial::one_vcpu_on_two_cpus,
    },
    Test {
        name: "share_hyp_and_unshare_while_another_cpu_reads",
        run: adversarial::share_hyp_and_unshare_while_another_cpu_reads,
    },
    Test {
        name: "guest_unshare_while_another_cpu_reads",
        run: adversarial::guest_unshare_while_another_cpu_reads,
    },
    Test {
        name: "cpu_on_hammer_on_running_cpu",
        run: adversarial::cpu_on_hammer_on_running_cpu,
    },
    Test {
        name: "cpu_on_of_an_mpidr_outside_the_cpu_list_is_refused",
        run: adversarial::cpu_on_of_an_mpidr_outside_the_cpu_list_is_refused,
    },
    Test {
        name: "donate_after_launch_never_holds_other_cpus_vm_calls_for_its_zeroing",
        run: adversarial::donate_after_launch_never_holds_other_cpus_vm_calls_for_its_zeroing,
    },
    Test {
        name: "destroy_of_a_large_vm_never_holds_other_cpus_calls_for_its_whole_teardown",
        run: adversarial::destroy_of_a_large_vm_never_holds_other_cpus_calls_for_its_whole_teardown,
    },
    Test {
        name: "invariants_hold_at_end",
        run: invariants_hold_at_end,
    },
];

el1_rt::entry!(main);

fn main(dtb_address: usize) -> ! {
    let platform = el1_rt::boot::start(dtb_address, "stress-host: ");
    let Some(conduit) = platform.board.psci else {
        fail!("the DTB has no /psci node with method \"smc\" or \"hvc\"");
    };
    psci::set_conduit(conduit);
    if let Err(error) = smp::init(&platform.board.cpus, &platform.mmu) {
        fail!("{}", error.as_str());
    }
    if smp::count() < CPUS_NEEDED {
        fail!(
            "{} CPUs; the stress host needs {CPUS_NEEDED} (QEMU -smp 4)",
            smp::count()
        );
    }
    let pages = match platform.free_pages(TEST_HOST_PAGES_FLOOR) {
        Ok(pages) => pages,
        Err(_) => fail!("too many reserved regions in the DTB"),
    };
    let mut ctx = Ctx::new(platform, pages, TEST_GUEST);
    let summary = runner::run_all(&mut ctx, TESTS);
    el1_rt::exit::semihosting_exit(u64::from(summary.failed != 0))
}

/// After everything, the record and every stage-2 still satisfy I1-I4.
fn invariants_hold_at_end(_ctx: &mut Ctx) -> TestResult {
    invariants::check()
}
