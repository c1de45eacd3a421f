//! Issue 9's DMA attack on the second SoC (QEMU xlnx-zcu102), with a real DMA engine of
//! that board: a ZDMA channel programmed in simple mode to copy host-chosen bytes over a
//! guest's private page, over the ownership record and over EL2's image. Each must fail at
//! the channel's first register: the payload left every ZDMA channel out of the host
//! stage-2 (they sit behind the SoC's SMMU-500, which EL2 does not drive), so the access is
//! an external abort and nothing is written.

use crate::attacks::{finish, run_to_shared};
use crate::zdma::{self, Maintain, Outcome};
use crate::{debug_calls, virt, zynqmp};
use el1_rt::testing::{TestCtx, TestResult};
use el1_rt::{bail, probe};
use test_guest::{Command, SECRET_GFN};

/// The channel the attacks use: GDMA channel 0.
const CHANNEL: usize = zynqmp::GDMA;
/// What the attacks copy over a guest's page: anything but its secret.
const PATTERN: u8 = 0x5a;

/// The engine must have refused the request at its first register.
fn expect_refused(outcome: Outcome, what: &str) -> TestResult {
    match outcome {
        Outcome::Refused { register, abort } if abort.is_injected_abort_at(register) => Ok(()),
        Outcome::Refused { register, abort } => {
            bail!("{what}: ZDMA register {register:#x} took an unexpected fault: {abort}")
        }
        Outcome::Copied { total_bytes } => bail!(
            "{what}: ZDMA channel {CHANNEL:#x} performed the copy ({total_bytes} bytes moved)"
        ),
        Outcome::Failed {
            why,
            register,
            value,
        } => bail!("{what}: {why} (register {register:#x}, value {value:#x})"),
    }
}

/// A host page filled with `byte`, written back to memory for the engine to read.
fn source_page(ctx: &mut TestCtx, byte: u8) -> Result<usize, el1_rt::testing::Failure> {
    let page = ctx.page()?;
    // SAFETY: a free host page this test owns, identity-mapped Normal memory; no Rust
    // object lives there.
    unsafe { core::ptr::write_bytes(page as *mut u8, byte, 4096) };
    Ok(page)
}

/// Issue 9, attack 1 on zcu102, aimed at the data: ZDMA copies a host page over the
/// guest's private page; the guest then checks its secret.
pub fn zdma_over_a_guest_private_page(ctx: &mut TestCtx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    run_to_shared(&mut guest)?;
    let secret = guest.vm().host_address(SECRET_GFN)?;
    let source = source_page(ctx, PATTERN)?;
    let refused = expect_refused(
        zdma::copy(
            CHANNEL,
            source,
            secret,
            4096,
            Maintain {
                src: true,
                dst: false,
            },
        ),
        "a host page over the guest's private page",
    );
    // The guest checks its secret either way.
    let finished = finish(&mut guest);
    refused.and(finished)
}

/// Issue 9, attack 1 as it was carried out, on zcu102: zero the record entry of the
/// guest's private page ("the host owns it"), then read the page.
pub fn zdma_over_the_ownership_record(ctx: &mut TestCtx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    run_to_shared(&mut guest)?;
    let secret = guest.vm().host_address(SECRET_GFN)?;
    let entry = debug_calls::record_entry_address(secret)?;
    let zeros = source_page(ctx, 0)?;
    let outcome = zdma::copy(
        CHANNEL,
        zeros,
        entry,
        2,
        Maintain {
            src: true,
            dst: false,
        },
    );
    if let Ok(word) = probe::read_u64(secret) {
        bail!(
            "ZDMA zeroed the record entry at {entry:#x} and the host then read the guest's \
             private page {secret:#x}: {word:#x}"
        );
    }
    expect_refused(outcome, "zeros over the ownership record")?;
    debug_calls::check_invariants()?;
    finish(&mut guest)
}

/// Issue 9, attack 1 against EL2 itself, on zcu102: zeros over the first bytes of EL2's
/// image (its arm64 Image header, which nothing runs after boot).
pub fn zdma_over_el2_image(ctx: &mut TestCtx) -> TestResult {
    let Some(image) = ctx.platform.board.carve_outs.iter().next().copied() else {
        bail!("the DTB has no /reserved-memory/el2@... carve-out");
    };
    let zeros = source_page(ctx, 0)?;
    expect_refused(
        zdma::copy(
            CHANNEL,
            zeros,
            image.base,
            8,
            Maintain {
                src: true,
                dst: false,
            },
        ),
        "zeros over EL2's image",
    )?;
    debug_calls::check_invariants()
}

/// None of the 16 channels (GDMA and ADMA) answers the host: a read of each channel's
/// status and a write of its enable bit are refused.
pub fn no_zdma_channel_reachable(_ctx: &mut TestCtx) -> TestResult {
    for channel in zynqmp::channels() {
        let isr = channel + 0x100;
        match probe::read_u32(isr) {
            Err(abort) if abort.is_injected_abort_at(isr) => {}
            Err(abort) => bail!("read of ZDMA ISR at {isr:#x}: unexpected fault {abort}"),
            Ok(value) => bail!("read of ZDMA ISR at {isr:#x} went through: {value:#x}"),
        }
        let ctrl2 = channel + 0x200;
        match probe::write_u32(ctrl2, 0) {
            Err(abort) if abort.is_injected_abort_at(ctrl2) => {}
            Err(abort) => bail!("write of ZDMA CTRL2 at {ctrl2:#x}: unexpected fault {abort}"),
            Ok(()) => bail!("write of ZDMA CTRL2 at {ctrl2:#x} went through"),
        }
    }
    Ok(())
}

/// The host's DTB lists neither the ZDMA channels nor the SMMU-500 in front of them.
pub fn withheld_zynqmp_devices_not_in_the_dtb(ctx: &mut TestCtx) -> TestResult {
    let dtb = ctx.platform.dtb.base;
    for compatible in [zynqmp::ZDMA_COMPATIBLE, zynqmp::SMMU_500_COMPATIBLE] {
        if virt::dtb_has_compatible(dtb, compatible) {
            bail!("the host's DTB still has a {compatible} node");
        }
    }
    Ok(())
}
