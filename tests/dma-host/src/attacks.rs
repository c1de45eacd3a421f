//! The attacks of issue 9 through DMA masters and GIC tables, each of which must fail: the
//! device's registers abort (the payload left them out of the host stage-2), nothing is
//! written, and the guest finds its secret intact.

use crate::fw_cfg::{self, Outcome};
use crate::{debug_calls, gicr, virt};
use el1_rt::board::GicVersion;
use el1_rt::exceptions::Abort;
use el1_rt::testing::{Failure, TestCtx, TestResult};
use el1_rt::{bail, probe, test_guest_driver};
use hvc_abi::Exit;
use test_guest::{Command, SECRET_GFN, SHARED_GFN, Step, ipa};

/// Runs the guest until it holds its secret and shares its message page.
pub(crate) fn run_to_shared(guest: &mut test_guest_driver::TestGuest) -> TestResult {
    guest.expect_exit(
        0,
        0,
        Exit::MemShared {
            ipa: ipa(SHARED_GFN),
            nr: 1,
        },
        "exit MEM_SHARED of the message page",
    )?;
    guest.expect_step(0, 0, Step::Shared, "the guest's Shared report")?;
    Ok(())
}

/// Lets the guest finish: it unshares its page and checks every word of its secret (a
/// changed word is a failed check in its report).
pub(crate) fn finish(guest: &mut test_guest_driver::TestGuest) -> TestResult {
    guest.reply_and_expect_unshared()?;
    guest.expect_done(0, 0)?;
    Ok(())
}

/// fw_cfg must have refused the request at its register, with nothing written back.
fn expect_refused(outcome: Outcome, what: &str) -> TestResult {
    match outcome {
        Outcome::Refused(abort) if abort.is_injected_abort_at(fw_cfg::DMA_ADDRESS) => Ok(()),
        Outcome::Refused(abort) => {
            bail!("{what}: the fw_cfg register write took an unexpected fault: {abort}")
        }
        Outcome::Performed { control } => {
            bail!("{what}: fw_cfg performed the DMA (descriptor control word now {control:#x})")
        }
        Outcome::Inconsistent { aborted, control } => bail!(
            "{what}: register write aborted={aborted} but descriptor control word {control:#x}"
        ),
    }
}

/// A host access that must be refused with the abort EL2 injects.
fn expect_aborts(access: Result<u64, Abort>, address: usize, what: &str) -> TestResult {
    match access {
        Err(abort) if abort.is_injected_abort_at(address) => Ok(()),
        Err(abort) => bail!("{what} at {address:#x}: unexpected fault {abort}"),
        Ok(value) => bail!("{what} at {address:#x}: went through (read {value:#x})"),
    }
}

/// Issue 9, attack 1, aimed straight at the data: fw_cfg writes zeros over the guest's
/// private page.
pub fn fw_cfg_dma_over_a_guest_private_page(ctx: &mut TestCtx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    run_to_shared(&mut guest)?;
    let secret = guest.vm().host_address(SECRET_GFN)?;
    let descriptor = ctx.page()?;
    let refused = expect_refused(
        fw_cfg::write_zeros(secret, 4096, descriptor),
        "zeros over the guest's private page",
    );
    // The guest checks its secret either way.
    let finished = finish(&mut guest);
    refused.and(finished)
}

/// Issue 9, attack 1 as it was carried out: zero the record entry of the guest's private
/// page ("the host owns it"), then read the page through the host stage-2 fault handler.
pub fn fw_cfg_dma_over_the_ownership_record(ctx: &mut TestCtx) -> TestResult {
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    run_to_shared(&mut guest)?;
    let secret = guest.vm().host_address(SECRET_GFN)?;
    let entry = debug_calls::record_entry_address(secret)?;
    let descriptor = ctx.page()?;
    let outcome = fw_cfg::write_zeros(entry, 2, descriptor);
    if let Ok(word) = probe::read_u64(secret) {
        bail!(
            "fw_cfg zeroed the record entry at {entry:#x} and the host then read the guest's \
             private page {secret:#x}: {word:#x}"
        );
    }
    expect_refused(outcome, "zeros over the ownership record")?;
    debug_calls::check_invariants()?;
    finish(&mut guest)
}

/// Issue 9, attack 1 against EL2 itself: zeros over the first bytes of EL2's image (its
/// arm64 Image header, which nothing runs after boot, so an unprotected payload survives
/// to report it).
pub fn fw_cfg_dma_over_el2_image(ctx: &mut TestCtx) -> TestResult {
    let Some(image) = ctx.platform.board.carve_outs.iter().next().copied() else {
        bail!("the DTB has no /reserved-memory/el2@... carve-out");
    };
    let descriptor = ctx.page()?;
    expect_refused(
        fw_cfg::write_zeros(image.base, 8, descriptor),
        "zeros over EL2's image",
    )?;
    debug_calls::check_invariants()
}

/// The virtio-mmio transports (they DMA their virtqueues) are not the host's.
pub fn virtio_mmio_unreachable(_ctx: &mut TestCtx) -> TestResult {
    let magic = virt::VIRTIO_MMIO;
    expect_aborts(
        probe::read_u64(magic),
        magic,
        "read of virtio-mmio MagicValue",
    )?;
    // Status (offset 0x70): writing 0 would reset the device.
    let status = virt::VIRTIO_MMIO + 0x70;
    expect_aborts(
        probe::write_u32(status, 0).map(|()| 0),
        status,
        "write of virtio-mmio Status",
    )
}

/// The ITS (its command queue and tables live wherever GITS_CBASER/BASER<n> say) is not
/// the host's.
pub fn its_unreachable(_ctx: &mut TestCtx) -> TestResult {
    let ctlr = virt::ITS;
    expect_aborts(
        probe::read_u32(ctlr).map(u64::from),
        ctlr,
        "read of GITS_CTLR",
    )?;
    let cbaser = virt::ITS + 0x80;
    expect_aborts(
        probe::write_u64(cbaser, 0).map(|()| 0),
        cbaser,
        "write of GITS_CBASER",
    )
}

/// The GICR tests need a GICv3: a GICv2 (the GIC-400 of xlnx-zcu102) has no
/// redistributor, hence no PROPBASER/PENDBASER and no LPI tables that write memory.
fn needs_gicv3(ctx: &TestCtx) -> TestResult {
    match ctx.platform.board.gic {
        Some(gic) if gic.version == GicVersion::V3 => Ok(()),
        Some(_) => Err(Failure::not_applicable(format_args!(
            "not applicable: GICv2 (no redistributor, no LPI tables that write memory)"
        ))),
        None => bail!("the host's DTB describes no GIC"),
    }
}

/// The host still reads its redistributor (EL2 emulates the RD_base frame): GICR_TYPER
/// names CPU 0, GICR_IIDR an implementer, GICR_WAKER answers.
pub fn redistributor_reads_are_emulated(ctx: &mut TestCtx) -> TestResult {
    needs_gicv3(ctx)?;
    let typer =
        gicr::read64(gicr::TYPER).map_err(|a| Failure::new(format_args!("GICR_TYPER: {a}")))?;
    if typer >> 32 != 0 {
        bail!("GICR_TYPER {typer:#x}: affinity is not CPU 0's");
    }
    let low =
        gicr::read32(gicr::TYPER).map_err(|a| Failure::new(format_args!("GICR_TYPER low: {a}")))?;
    if u64::from(low) != typer & 0xffff_ffff {
        bail!("GICR_TYPER: 32-bit read {low:#x}, 64-bit read {typer:#x}");
    }
    let iidr =
        gicr::read32(gicr::IIDR).map_err(|a| Failure::new(format_args!("GICR_IIDR: {a}")))?;
    if iidr & 0xfff == 0 {
        bail!("GICR_IIDR {iidr:#x}: no implementer");
    }
    gicr::read32(gicr::WAKER).map_err(|a| Failure::new(format_args!("GICR_WAKER: {a}")))?;
    // Loads into registers the Rust code of EL2 preserves rather than saves (x19-x29).
    let (w20, x29, markers_intact) = gicr::typer_into_high_registers();
    if w20 != typer & 0xffff_ffff || x29 != typer || !markers_intact {
        bail!(
            "GICR_TYPER into w20/x29: {w20:#x}/{x29:#x} (expected {typer:#x}), other registers intact: {markers_intact}"
        );
    }
    Ok(())
}

/// GICR_PROPBASER/PENDBASER aimed at the guest's private page with LPIs enabled: the GIC
/// would read and write the page. EnableLPIs stays 0 and the table registers keep no
/// address; the guest's secret is intact.
pub fn gicr_tables_aimed_at_a_guest_private_page(ctx: &mut TestCtx) -> TestResult {
    needs_gicv3(ctx)?;
    let mut guest = ctx.guest(Command::SecretAndShare, 1)?;
    run_to_shared(&mut guest)?;
    let secret = guest.vm().host_address(SECRET_GFN)? as u64;
    let fault = |what: &'static str| move |a: Abort| Failure::new(format_args!("{what}: {a}"));
    gicr::write64(gicr::PROPBASER, secret | gicr::ID_BITS_13).map_err(fault("PROPBASER write"))?;
    gicr::write64(gicr::PENDBASER, secret).map_err(fault("PENDBASER write"))?;
    let ctlr = gicr::read32(gicr::CTLR).map_err(fault("GICR_CTLR read"))?;
    gicr::write32(gicr::CTLR, ctlr | gicr::CTLR_ENABLE_LPIS).map_err(fault("GICR_CTLR write"))?;
    let ctlr_after = gicr::read32(gicr::CTLR).map_err(fault("GICR_CTLR read"))?;
    let prop = gicr::read64(gicr::PROPBASER).map_err(fault("PROPBASER read"))?;
    let pend = gicr::read64(gicr::PENDBASER).map_err(fault("PENDBASER read"))?;
    // Put things back (an unprotected payload let them through).
    let _ = gicr::write32(gicr::CTLR, ctlr & !gicr::CTLR_ENABLE_LPIS);
    let _ = gicr::write64(gicr::PROPBASER, 0);
    let _ = gicr::write64(gicr::PENDBASER, 0);
    if ctlr_after & gicr::CTLR_ENABLE_LPIS != 0 {
        bail!(
            "GICR_CTLR.EnableLPIs reads 1 with PROPBASER={prop:#x} PENDBASER={pend:#x} \
             naming the guest's private page {secret:#x}"
        );
    }
    if prop & gicr::TABLE_ADDRESS == secret || pend & gicr::TABLE_ADDRESS == secret {
        bail!("PROPBASER={prop:#x} PENDBASER={pend:#x} kept the guest's page {secret:#x}");
    }
    debug_calls::check_invariants()?;
    finish(&mut guest)
}

/// The payload's DTB for the host lists none of them (a PCIe bridge only behind an IOMMU),
/// and no MSI route to the ITS.
pub fn withheld_devices_not_in_the_dtb(ctx: &mut TestCtx) -> TestResult {
    let dtb = ctx.platform.dtb.base;
    for compatible in ["qemu,fw-cfg-mmio", "virtio,mmio", "arm,gic-v3-its"] {
        if virt::dtb_has_compatible(dtb, compatible) {
            bail!("the host's DTB still has a {compatible} node");
        }
    }
    if virt::dtb_has_unconfined_pci_bridge(dtb) {
        bail!("the host's DTB still has a PCI host bridge without an iommu-map");
    }
    if virt::dtb_has_property(dtb, "msi-map") || virt::dtb_has_property(dtb, "msi-parent") {
        bail!("the host's DTB still routes MSIs (msi-map/msi-parent)");
    }
    Ok(())
}
