//! What every CPU runs during the stress: a bounded, deterministic pseudo-random sequence
//! of operations over the shared page set and the stress VMs, so that CPUs collide on the
//! same pages, the same VMs and the same vCPUs.

use super::calls::{self, Call, Outcome};
use super::events::{self, Event};
use super::slots::{self, SLOTS, Target};
use super::{SharedSet, violations};
use crate::rng::XorShift;
use core::arch::asm;
use el1_rt::exceptions::{self, Abort};
use el1_rt::probe;
use hvc_abi::{AccessSize, Error, Exit, HostCall, MmioAccess};
use test_guest::{
    Command, ENTRY_IPA, PRINT_IPA, REPLY, REPLY_OFFSET, REPORT_IPA, Report, SHARED_GFN, Step,
};

/// Guest frames where the stress maps shared-set pages into a stress VM (donated or lent):
/// inside the guest's 32-bit IPA space, away from its image and data pages, which the guest
/// alone uses. A few frames in each of several 2 MiB regions: each region needs its own
/// last-level table, more than a VM's first top-up holds, so the VMs run out of pool
/// memory (NO_MEMORY) until other CPUs top them up.
const WINDOW_GFN: u64 = 0x5_0000;
const WINDOW_REGIONS: u64 = 12;
const WINDOW_PAGES_PER_REGION: u64 = 3;
/// Pages per 2 MiB.
const REGION_STRIDE: u64 = 0x200;

/// The guest check of SecretAndShare that fails when the guest runs again before the host
/// wrote its reply (test-guest commands.rs: "the host's reply is not in the shared page").
const REPLY_CHECK: u16 = 2;

#[derive(Clone, Copy, Debug)]
pub enum Op {
    ShareHyp,
    UnshareHyp,
    Topup,
    Donate,
    Reclaim,
    Read,
    Build,
    Run,
    Destroy,
    VcpuCreate,
    CheckInvariants,
}

/// How often each operation is drawn, out of the sum. VCPU_RUN is the most frequent so that
/// a guest gets through its share/unshare protocol between two destroys of its VM. The
/// invariant check walks the record of all RAM (about 0.1 s under TCG, with the memory lock
/// held), so it is rare: about one operation in 500.
const WEIGHTS: [(Op, u64); 11] = [
    (Op::ShareHyp, 35),
    (Op::UnshareHyp, 35),
    (Op::Topup, 35),
    (Op::Donate, 45),
    (Op::Reclaim, 45),
    (Op::Read, 20),
    (Op::Build, 40),
    (Op::Run, 120),
    (Op::Destroy, 25),
    (Op::VcpuCreate, 10),
    (Op::CheckInvariants, 1),
];

impl Op {
    /// The operation with discriminant `index`, if any (for reports about a stuck CPU).
    pub fn from_index(index: usize) -> Option<Op> {
        WEIGHTS
            .iter()
            .map(|&(op, _)| op)
            .find(|&op| op as usize == index)
    }
}

pub fn pick(rng: &mut XorShift) -> Op {
    let total: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    for (op, weight) in WEIGHTS {
        if roll < weight {
            return op;
        }
        roll -= weight;
    }
    Op::Run
}

/// One operation of CPU `cpu`.
pub fn step(cpu: usize, rng: &mut XorShift, op: Op, set: &SharedSet) {
    match op {
        Op::ShareHyp => {
            let pfn = set.pfn(rng.below(set.pages));
            calls::make(cpu, Call::ShareHyp, HostCall::HostShareHyp { pfn });
        }
        Op::UnshareHyp => {
            let pfn = set.pfn(rng.below(set.pages));
            calls::make(cpu, Call::UnshareHyp, HostCall::HostUnshareHyp { pfn });
        }
        Op::Topup => {
            let target = slots::target(slot(rng));
            let (pfn, nr) = pages(rng, set);
            let handle = target.handle();
            let outcome = calls::make(cpu, Call::Topup, HostCall::VmTopup { handle, pfn, nr });
            dead_means_not_found(cpu, target, Call::Topup, outcome);
        }
        Op::Donate => {
            let target = slots::target(slot(rng));
            let (pfn, nr) = pages(rng, set);
            let gfn = window_gfn(rng, nr);
            let handle = target.handle();
            let host_call = HostCall::VmDonate {
                handle,
                pfn,
                gfn,
                nr,
            };
            let outcome = calls::make(cpu, Call::Donate, host_call);
            dead_means_not_found(cpu, target, Call::Donate, outcome);
        }
        Op::Reclaim => {
            let (pfn, nr) = pages(rng, set);
            calls::make(cpu, Call::Reclaim, HostCall::VmReclaim { pfn, nr });
        }
        Op::Read => read(cpu, set.address(rng.below(set.pages))),
        Op::Build => {
            // The first empty slot from a random one on; if all are taken, a run instead.
            let first = slot(rng);
            let built = (0..SLOTS)
                .map(|i| (first + i) % SLOTS)
                .any(|index| slots::try_build(cpu, index, set.guest_image));
            if !built {
                run(cpu, first);
            }
        }
        Op::Run => run(cpu, slot(rng)),
        Op::Destroy => destroy(cpu, slot(rng)),
        Op::CheckInvariants => {
            // Every call is atomic (docs/abi.md section 8), so I1-I4 hold at any moment
            // EL2 can take its memory lock, however busy the other CPUs are.
            match crate::invariants::check() {
                Ok(()) => events::count(Event::InvariantsHeld),
                Err(error) => violations::report(cpu, format_args!("{}", error.as_str())),
            }
        }
        Op::VcpuCreate => {
            let target = slots::target(slot(rng));
            let outcome = calls::make(
                cpu,
                Call::VcpuCreate,
                HostCall::VcpuCreate {
                    handle: target.handle(),
                    vcpu: 0,
                    entry_ipa: ENTRY_IPA,
                    x0: Command::SecretAndShare.to_x0(),
                },
            );
            dead_means_not_found(cpu, target, Call::VcpuCreate, outcome);
        }
    }
}

fn slot(rng: &mut XorShift) -> usize {
    rng.below(SLOTS as u64) as usize
}

/// A random range of one or two pages of the shared set.
fn pages(rng: &mut XorShift, set: &SharedSet) -> (u64, u32) {
    let first = rng.below(set.pages);
    let nr = if first + 1 < set.pages && rng.below(4) == 0 {
        2
    } else {
        1
    };
    (set.pfn(first), nr)
}

fn window_gfn(rng: &mut XorShift, nr: u32) -> u64 {
    WINDOW_GFN
        + rng.below(WINDOW_REGIONS) * REGION_STRIDE
        + rng.below(WINDOW_PAGES_PER_REGION - u64::from(nr) + 1)
}

/// A call with a handle that is certainly dead must return NOT_FOUND (docs/abi.md 4.10:
/// "every later call with it: NOT_FOUND"), whatever else the arguments say.
fn dead_means_not_found(cpu: usize, target: Target, call: Call, outcome: Outcome) {
    if target.is_dead() && outcome != Outcome::Err(Error::NotFound) {
        violations::report(
            cpu,
            format_args!(
                "{} with dead handle {:?} returned {outcome:?}, expected NOT_FOUND",
                call.name(),
                target.handle()
            ),
        );
    }
}

/// A host read of a shared-set page: data, or the abort EL2 injects (docs/abi.md 7.4) if
/// the page is not the host's to read right now. Nothing else.
fn read(cpu: usize, address: usize) {
    match probe::read_u64(address) {
        Ok(_) => events::count(Event::ReadOk),
        Err(abort) if abort.is_injected_abort_at(address) => events::count(Event::ReadAborted),
        Err(abort) => violations::report(
            cpu,
            format_args!(
                "host read of {address:#x} took the wrong fault: ESR_EL1={:#x} FAR_EL1={:#x}",
                abort.esr, abort.far
            ),
        ),
    }
}

fn destroy(cpu: usize, index: usize) {
    let target = slots::target(index);
    let outcome = calls::make(
        cpu,
        Call::Destroy,
        HostCall::VmDestroy {
            handle: target.handle(),
        },
    );
    dead_means_not_found(cpu, target, Call::Destroy, outcome);
    if let (Outcome::Ok(_), Target::Live(handle)) = (outcome, target) {
        slots::retire(cpu, index, handle);
    }
}

/// VCPU_RUN of the slot's vCPU 0 (completion 0: the SecretAndShare guest makes no MMIO
/// read and no forwarded HVC), then the host's part of the guest's protocol.
fn run(cpu: usize, index: usize) {
    let target = slots::target(index);
    let handle = target.handle();
    let outcome = calls::make(
        cpu,
        Call::VcpuRun,
        HostCall::VcpuRun {
            handle,
            vcpu: 0,
            completion: 0,
        },
    );
    dead_means_not_found(cpu, target, Call::VcpuRun, outcome);
    let Outcome::Ok(regs) = outcome else {
        return;
    };
    let exit = match Exit::decode(regs) {
        Ok(exit) => exit,
        Err(_) => {
            violations::report(
                cpu,
                format_args!("VCPU_RUN returned an exit the ABI does not define: {regs:#x?}"),
            );
            return;
        }
    };
    events::exit(&exit);
    let shared_ipa = test_guest::ipa(SHARED_GFN);
    match exit {
        Exit::MemShared { ipa, nr: 1 } | Exit::MemUnshared { ipa, nr: 1 } if ipa == shared_ipa => {}
        Exit::SystemOff => {}
        Exit::Mmio {
            ipa: PRINT_IPA,
            size: AccessSize::B1,
            access: MmioAccess::Write { .. },
            ..
        } => {}
        Exit::Mmio {
            ipa: REPORT_IPA,
            size: AccessSize::B8,
            access: MmioAccess::Write { data },
            ..
        } => match Report::decode(data) {
            Some(Report::Reached(Step::Shared)) => reply(cpu, index, handle),
            Some(Report::Reached(Step::Unshared)) => {}
            Some(Report::Reached(Step::Done)) => events::count(Event::GuestDone),
            Some(Report::Failed {
                check: REPLY_CHECK, ..
            }) => events::count(Event::ReplyRace),
            Some(Report::Failed { check, value }) => violations::report(
                cpu,
                format_args!("guest of {handle:?}: check {check:#x} failed with {value:#x}"),
            ),
            _ => violations::report(
                cpu,
                format_args!("guest of {handle:?} stored report {data:#x}"),
            ),
        },
        other => violations::report(
            cpu,
            format_args!("guest of {handle:?}: unexpected exit {other:?}"),
        ),
    }
}

/// The guest has shared its page and waits for the host's reply there. The page is
/// GUEST_SHARED while the VM lives (only the guest unshares it, and only after it saw the
/// reply), so a refused write is allowed only if the VM has been destroyed meanwhile.
fn reply(cpu: usize, index: usize, handle: hvc_abi::VmHandle) {
    let written = slots::with_shared_page(index, handle, write_reply);
    match written {
        None => events::count(Event::ReplyTooLate),
        Some(Ok(())) => events::count(Event::ReplyWritten),
        Some(Err(abort)) => {
            // Liveness probe: VM_TOPUP of page 0 (never RAM on the boards we run) is
            // DENIED for a live VM, NOT_FOUND for a destroyed one, and changes nothing.
            let alive = calls::make(
                cpu,
                Call::Topup,
                HostCall::VmTopup {
                    handle,
                    pfn: 0,
                    nr: 1,
                },
            );
            if alive == Outcome::Err(Error::NotFound) {
                events::count(Event::ReplyTooLate);
            } else {
                violations::report(
                    cpu,
                    format_args!(
                        "host write to the page live {handle:?} shares was refused \
                         (ESR_EL1={:#x} FAR_EL1={:#x}); VM_TOPUP of page 0 for it: {alive:?}",
                        abort.esr, abort.far
                    ),
                );
            }
        }
    }
}

const REPLY_WORDS: usize = 3;
const _: () = assert!(
    REPLY.len() < REPLY_WORDS * 8,
    "the reply and its NUL fit 3 words"
);

/// Writes REPLY (NUL-terminated) at REPLY_OFFSET of `page` with probed stores and cleans it
/// to the point of coherency (the guest reads with its MMU off).
fn write_reply(page: usize) -> Result<(), Abort> {
    let mut bytes = [0u8; REPLY_WORDS * 8];
    bytes[..REPLY.len()].copy_from_slice(REPLY.as_bytes());
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let address = page + REPLY_OFFSET + 8 * i;
        probe::write_u64(address, u64::from_le_bytes(word))?;
        clean_word(address)?;
    }
    Ok(())
}

/// `dc cvac` of the line holding `address`, as a probe: the page may have been taken from
/// the host since the store (VM destroyed), and maintenance of it may then fault.
fn clean_word(address: usize) -> Result<(), Abort> {
    exceptions::expect_data_abort();
    // SAFETY: cleaning a line writes back dirty data and changes no value; if stage 2
    // refuses it, the armed handler steps over the `dc`. The handler is an ordinary Rust
    // call that does not save FP/SIMD registers, hence clobber_abi("C").
    unsafe {
        asm!(
            "dc cvac, x0",
            "dsb sy",
            in("x0") address,
            clobber_abi("C"),
            options(nostack),
        );
    }
    match exceptions::take_data_abort() {
        Some(abort) => Err(abort),
        None => Ok(()),
    }
}
