//! A zcu102 boot with `/chosen/el2,unconfined-dma`: the ZDMA channels are the host's, and
//! this is the positive control of `zynqmp_attacks`. The same engine, programmed the same
//! way, really moves data: between two host pages, and, past the stage 2 that still stops
//! the host's own loads, out of and into EL2's image. That is why such a boot refuses
//! protected VMs (`option::vm_create_denied`).

use crate::zdma::{self, Maintain, Outcome};
use crate::{virt, zynqmp};
use el1_rt::testing::{Failure, TestCtx, TestResult};
use el1_rt::{bail, probe, say};

/// The channel the controls use: GDMA channel 0, as the attacks.
const CHANNEL: usize = zynqmp::GDMA;
/// arm64 Image header (Linux Documentation/arch/arm64/booting.rst): "ARM\x64" at 0x38.
const IMAGE_MAGIC_OFFSET: usize = 0x38;
const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";
/// How much of EL2's image header the controls read.
const HEADER_LEN: u32 = 64;
/// What the write control puts over the header's first 8 bytes (then restored).
const MARK: [u8; 8] = *b"ZDMA-W!\x01";

fn copied(outcome: Outcome, expected: u32, what: &str) -> TestResult {
    match outcome {
        Outcome::Copied { total_bytes } if total_bytes == expected => Ok(()),
        Outcome::Copied { total_bytes } => {
            bail!("{what}: ZDMA moved {total_bytes} bytes, expected {expected}")
        }
        Outcome::Refused { register, abort } => {
            bail!("{what}: ZDMA register {register:#x} was not handed over: {abort}")
        }
        Outcome::Failed {
            why,
            register,
            value,
        } => bail!("{what}: {why} (register {register:#x}, value {value:#x})"),
    }
}

fn bytes<'a>(page: usize, len: usize) -> &'a [u8] {
    // SAFETY: `page` is a host page of this test's, identity-mapped Normal memory, whose
    // caches `zdma::copy` invalidated after the engine wrote it; nothing else writes it
    // while the slice lives.
    unsafe { core::slice::from_raw_parts(page as *const u8, len) }
}

fn fill(page: usize, byte: u8) {
    // SAFETY: a free host page this test owns; no Rust object lives there.
    unsafe { core::ptr::write_bytes(page as *mut u8, byte, 4096) };
}

/// The engine copies one host page into another: the threat is real on this board.
pub fn zdma_copies_between_host_pages(ctx: &mut TestCtx) -> TestResult {
    let src = ctx.page()?;
    let dst = ctx.page()?;
    for (i, byte) in (0..4096).zip((0u8..=255).cycle()) {
        // SAFETY: as in `fill`.
        unsafe { ((src + i) as *mut u8).write(byte) };
    }
    fill(dst, 0);
    copied(
        zdma::copy(CHANNEL, src, dst, 4096, Maintain::BOTH),
        4096,
        "host page to host page",
    )?;
    if bytes(src, 4096) != bytes(dst, 4096) {
        bail!("ZDMA reported 4096 bytes copied but {dst:#x} does not hold {src:#x}'s data");
    }
    say!("ZDMA channel {CHANNEL:#x} copied 4096 bytes from host page {src:#x} to {dst:#x}");
    Ok(())
}

/// The engine reads and writes EL2's image, which the host's own loads cannot reach: the
/// header's magic comes out, a mark goes in and reads back, and the header is restored.
pub fn zdma_reaches_el2_image(ctx: &mut TestCtx) -> TestResult {
    let Some(image) = ctx.platform.board.carve_outs.iter().next().copied() else {
        bail!("the DTB has no /reserved-memory/el2@... carve-out");
    };
    let el2 = image.base;
    // Stage 2 still stops the CPU: only the engine gets through.
    if let Ok(word) = probe::read_u64(el2) {
        bail!("the host read EL2's image at {el2:#x} with a load: {word:#x}");
    }
    let to_host = Maintain {
        src: false,
        dst: true,
    };
    let saved = ctx.page()?;
    fill(saved, 0);
    copied(
        zdma::copy(CHANNEL, el2, saved, HEADER_LEN, to_host),
        HEADER_LEN,
        "EL2's image header to a host page",
    )?;
    let magic = &bytes(saved, HEADER_LEN as usize)[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4];
    if magic != IMAGE_MAGIC {
        bail!("ZDMA read EL2's image at {el2:#x} but its magic is {magic:02x?}");
    }
    let mark = ctx.page()?;
    // SAFETY: as in `fill`.
    unsafe { core::ptr::copy_nonoverlapping(MARK.as_ptr(), mark as *mut u8, MARK.len()) };
    let written = copied(
        zdma::copy(
            CHANNEL,
            mark,
            el2,
            MARK.len() as u32,
            Maintain {
                src: true,
                dst: false,
            },
        ),
        MARK.len() as u32,
        "a mark over EL2's image header",
    );
    let check = ctx.page()?;
    fill(check, 0);
    let read_back = copied(
        zdma::copy(CHANNEL, el2, check, MARK.len() as u32, to_host),
        MARK.len() as u32,
        "EL2's image header back to a host page",
    );
    // Put the header back whatever happened.
    let restored = copied(
        zdma::copy(
            CHANNEL,
            saved,
            el2,
            MARK.len() as u32,
            Maintain {
                src: true,
                dst: false,
            },
        ),
        MARK.len() as u32,
        "restoring EL2's image header",
    );
    written.and(read_back).and(restored)?;
    if bytes(check, MARK.len()) != MARK {
        return Err(Failure::new(format_args!(
            "ZDMA reported the mark written over {el2:#x} but read back {:02x?}",
            bytes(check, MARK.len())
        )));
    }
    say!(
        "ZDMA channel {CHANNEL:#x} read EL2's image header at {el2:#x} (magic ARM\\x64) and \
         wrote it, where the host's own load aborts"
    );
    Ok(())
}

/// The host's DTB keeps the ZDMA channels and the SMMU-500.
pub fn zynqmp_devices_in_the_dtb(ctx: &mut TestCtx) -> TestResult {
    let dtb = ctx.platform.dtb.base;
    for compatible in [zynqmp::ZDMA_COMPATIBLE, zynqmp::SMMU_500_COMPATIBLE] {
        if !virt::dtb_has_compatible(dtb, compatible) {
            bail!("the host's DTB lost its {compatible} node");
        }
    }
    Ok(())
}
