//! A launched VM is locked (docs/abi.md 4.8, 4.9, 5.5): once a vCPU has entered the guest,
//! the host can no longer add a vCPU or choose where one starts. Secondary vCPUs start
//! only at the guest's own PSCI CPU_ON.

use crate::runner::{Ctx, TestResult, bail};
use crate::tests::sharing::run_to_shared;
use el1_rt::guest_vm::VmError;
use el1_rt::test_guest_driver::{Event, TestGuest};
use hvc_abi::{Error, Exit};
use test_guest::{Command, DATA_GFN, Report, SECRET_GFN, Step, ipa, secret_word};

/// Where the attacker's code goes: a guest frame the test guest never uses.
const INJECTED_GFN: u64 = DATA_GFN + 0x10;

/// The attacker's code, as the host would write it (A64, little-endian words):
/// `ldr x1, [x0]` (the word at the IPA the host passes in x0), `mov x0, #0xC2000000` (a SiP
/// call, which the payload forwards to the host as GUEST_HVC with the guest's x1),
/// `hvc #0`, `b .`.
const INJECTED_CODE: [u32; 4] = [0xf940_0001, 0xd2b8_4000, 0xd400_0002, 0x1400_0000];

/// Attack 2 of issue 9: a VM with two vCPUs runs vCPU 0 until the guest holds its secret;
/// the host donates a page of its own code at an unused IPA and creates vCPU 1 there with
/// x0 = the secret's IPA. VCPU_CREATE must be refused (only vCPU 0 takes an entry point,
/// and the VM is launched) and VCPU_RUN of vCPU 1 must run nothing: no exit may carry
/// the secret.
pub fn host_cannot_add_a_vcpu_to_a_launched_vm(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 2)?;
    run_to_shared(&mut guest)?;
    let code: [u8; 16] = {
        let mut bytes = [0u8; 16];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(INJECTED_CODE) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    };
    guest
        .vm_mut()
        .load_page(&mut ctx.pages, &code, INJECTED_GFN)?;
    let created = guest
        .vm()
        .vcpu_create(1, ipa(INJECTED_GFN), ipa(SECRET_GFN));
    let run = guest.vm().run(1, 0);
    if let Ok(Exit::GuestHvc { x1, .. }) = run
        && x1 == secret_word(0)
    {
        bail!("VCPU_RUN of the injected vCPU 1 leaked the guest's secret word {x1:#x}");
    }
    // No vCPU but 0 ever takes a host entry point (a malformed call), and no vCPU at all
    // can be added once the VM is launched.
    expect_refused(
        created,
        Error::InvalidParameter,
        "VCPU_CREATE(1) at the host's code",
    )?;
    match run {
        Err(e) if e.abi_error() == Some(Error::NotFound) => {}
        other => bail!("VCPU_RUN of the never-created vCPU 1 gave {other:?}, not NOT_FOUND"),
    }
    let powered_off = guest.vm().vcpu_create(1, 0, 0);
    expect_refused(powered_off, Error::Denied, "VCPU_CREATE(1) after launch")?;
    Ok(())
}

fn expect_refused(result: Result<(), VmError>, error: Error, what: &str) -> TestResult {
    match result {
        Err(VmError::Call(e)) if e.abi_error() == Some(error) => Ok(()),
        other => bail!("{what} gave {other:?}, not {error}"),
    }
}

/// vCPU 1, created powered off, runs nothing until the guest's own CPU_ON starts it at the
/// guest's entry with the guest's context id (the guest checks both, and its MPIDR); its
/// CPU_OFF powers it off again. The host only learns of it through exits.
pub fn guest_cpu_on_starts_vcpu_1_at_the_guest_entry(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::CpuOn, 2)?;
    match guest.vm().run(1, 0) {
        Err(e) if e.abi_error() == Some(Error::NotFound) => {}
        other => bail!("VCPU_RUN of the uncreated vCPU 1 gave {other:?}, not NOT_FOUND"),
    }
    guest.vm().vcpu_create(1, 0, 0)?;
    // Before launch, a powered-off vCPU runs nothing and does not launch the VM.
    expect_vcpu_off(&mut guest, "VCPU_RUN of vCPU 1 before the guest started it")?;
    guest.expect_exit(
        0,
        0,
        Exit::VcpuStarted { vcpu: 1 },
        "exit VCPU_STARTED for vCPU 1",
    )?;
    guest.expect_step(0, 0, Step::SecondaryOn, "vCPU 0's SecondaryOn report")?;
    guest.expect_step(1, 0, Step::SecondaryRan, "vCPU 1's SecondaryRan report")?;
    guest.expect_exit(1, 0, Exit::VcpuOff, "VCPU_OFF after vCPU 1's CPU_OFF")?;
    expect_vcpu_off(&mut guest, "VCPU_RUN of vCPU 1 after its CPU_OFF")?;
    guest.expect_done(0, 0)?;
    Ok(())
}

fn expect_vcpu_off(guest: &mut TestGuest, what: &str) -> TestResult {
    match guest.vm().run(1, 0) {
        Ok(Exit::VcpuOff) => Ok(()),
        other => bail!("{what} gave {other:?}, not the VCPU_OFF exit"),
    }
}

/// The guest's SMCCC architecture and TRNG queries (SMCCC_VERSION, ARCH_FEATURES of the
/// workarounds, TRNG_VERSION, TRNG_RND64) never reach the host, which could lie about
/// mitigations or hand out chosen "entropy" (docs/abi.md 5.8): the guest runs to its end
/// without a single GUEST_HVC exit.
pub fn guest_smccc_and_trng_queries_never_reach_the_host(ctx: &mut Ctx) -> TestResult {
    let mut guest = ctx.guest(Command::SmcccQueries, 1)?;
    match guest.next_event(0, 0)? {
        Event::Exit(Exit::GuestHvc { function_id, .. }) => {
            bail!("the host was asked to answer the guest's call {function_id:#x} (it could lie)")
        }
        Event::Report(Report::Reached(Step::Done)) => {}
        other => return Err(guest.unexpected("the guest's Done report", other).into()),
    }
    guest.expect_exit(0, 0, Exit::SystemOff, "SYSTEM_OFF after Done")?;
    Ok(())
}
