//! A launched VM is locked (docs/abi.md 4.8, 4.9, 5.5): once a vCPU has entered the guest,
//! the host can no longer add a vCPU or choose where one starts. Secondary vCPUs start
//! only at the guest's own PSCI CPU_ON.

use crate::runner::{Ctx, TestResult, bail};
use crate::tests::sharing::run_to_shared;
use el1_rt::guest_vm::VmError;
use hvc_abi::{Error, Exit};
use test_guest::{Command, DATA_GFN, SECRET_GFN, ipa, secret_word};

/// Where the attacker's code goes: a guest frame the test guest never uses.
const INJECTED_GFN: u64 = DATA_GFN + 0x10;

/// The attacker's code, as the host would write it (A64, little-endian words):
/// `ldr x1, [x0]` (the word at the IPA the host passes in x0), `mov x0, #0xC2000000` (a SiP
/// call, which the payload forwards to the host as GUEST_HVC with the guest's x1),
/// `hvc #0`, `b .`.
const INJECTED_CODE: [u32; 4] = [0xf940_0001, 0xd2b8_4000, 0xd400_0002, 0x1400_0000];

/// Attack 2 of issue 9: a VM with two vCPUs runs vCPU 0 until the guest holds its secret;
/// the host donates a page of its own code at an unused IPA and creates vCPU 1 there with
/// x0 = the secret's IPA. VCPU_CREATE must be refused (the VM is launched) and VCPU_RUN
/// of vCPU 1 must run nothing: no exit may carry the secret.
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
    guest.vm_mut().load_page(&mut ctx.pages, &code, INJECTED_GFN)?;
    let created = guest
        .vm()
        .vcpu_create(1, ipa(INJECTED_GFN), ipa(SECRET_GFN));
    let run = guest.vm().run(1, 0);
    if let Ok(Exit::GuestHvc { x1, .. }) = run
        && x1 == secret_word(0)
    {
        bail!("VCPU_RUN of the injected vCPU 1 leaked the guest's secret word {x1:#x}");
    }
    match created {
        Err(VmError::Call(e)) if e.abi_error() == Some(Error::Denied) => {}
        other => bail!("VCPU_CREATE after launch gave {other:?}, not DENIED"),
    }
    match run {
        Err(e) if e.abi_error() == Some(Error::NotFound) => {}
        other => bail!("VCPU_RUN of the never-created vCPU 1 gave {other:?}, not NOT_FOUND"),
    }
    Ok(())
}
