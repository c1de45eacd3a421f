//! EL2's SMMUv3 driver: EL2 owns the SMMU the board describes (the host never sees it: its
//! registers are in no host stage-2 and its node is not in the host's DTB) and confines every
//! stream behind it to the pages the host may access.
//!
//! - Unknown streams and an SMMU that is off abort (SMMU_GBPA.ABORT, CR2.RECINVSID).
//! - Every host stream translates through one table (`stage2::DmaTable`) that
//!   identity-maps exactly the host's pages: a stage-2 table (STE Config = 0b110, VMID
//!   `HOST_VMID`) where the SMMU has stage 2 (IDR0.S2P), else a stage-1 table through one CD
//!   (QEMU 7.2's SMMU has no stage 2); EL2, not the host, owns the STEs, the CD and the
//!   tables, so stage 1 confines as well as stage 2 would. An SMMU with neither, or without
//!   AArch64 4 KiB tables or coherent walks, stops the boot with the reason
//!   (`stage2::smmuv3::mode`).
//! - The ownership record drives the table through `stage2::HostDma` ([`SmmuDma`]): a page
//!   that leaves the host is unmapped, then CMD_TLBI_NH_* (stage 1) or CMD_TLBI_S2_IPA /
//!   CMD_TLBI_S12_VMALL (stage 2) and CMD_SYNC, and EL2 waits for the sync before the call
//!   returns; a page that comes back is mapped at once.
//! - Faults land in the event queue, which the next CPU to enter EL2 for a host call drains
//!   into the log (`[el2] smmu: event ...`), counted.
//!
//! Files: `regs` (register frame, ID registers), `queues` (command and event queues); the
//! formats (layout, STE, CD, commands, queue pointers) are `stage2::smmuv3`, tested on x86.

mod queues;
mod regs;

use core::ops::Range;
use platform::fdt_discovery::Smmu;
use queues::{CommandQueue, EventQueue, QueueError};
use regs::{Features, Regs};
use spin::{Mutex, Once};
use stage2::smmuv3::commands::{Command, DmaContext, revoke_invalidation};
use stage2::smmuv3::mode::{self, DmaTranslation};
use stage2::smmuv3::tables::{self, HOST_ASID, HOST_VMID, Layout};
use stage2::{DmaTable, HostDma, PagePool};

static REGS: Once<Regs> = Once::new();
static EVENTS: Once<Mutex<EventQueue>> = Once::new();

/// Why EL2 cannot take the SMMU; the boot stops with this.
#[derive(Debug)]
pub enum SmmuError {
    Unsupported(&'static str),
    TooManyStreams {
        needed_bits: u32,
        supported_bits: u32,
    },
    NoAck(&'static str),
    Queue(QueueError),
    TablePool,
    RamBeyondStage2 {
        ram_end: usize,
        ipa_bits: u32,
    },
}

impl core::fmt::Display for SmmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unsupported(what) => write!(f, "SMMUv3 unsupported by EL2: {what}"),
            Self::TooManyStreams {
                needed_bits,
                supported_bits,
            } => write!(
                f,
                "SMMUv3: masters use {needed_bits}-bit stream IDs, the SMMU (or EL2's stream table) takes {supported_bits}"
            ),
            Self::NoAck(what) => write!(f, "SMMUv3 did not acknowledge {what}"),
            Self::Queue(e) => write!(f, "{e}"),
            Self::TablePool => write!(f, "SMMUv3: the DMA table pool is smaller than planned"),
            Self::RamBeyondStage2 { ram_end, ipa_bits } => write!(
                f,
                "SMMUv3: RAM ends at {ram_end:#x}, beyond the {ipa_bits}-bit input of its stage 2"
            ),
        }
    }
}

/// The host's DMA view on the SMMU: the table, and the command queue that invalidates it.
pub struct SmmuDma {
    table: DmaTable,
    cmdq: CommandQueue,
    /// The table's ASID (stage 1) or VMID (stage 2): which TLBIs remove its entries.
    context: DmaContext,
}

fn fatal_queue(e: QueueError) -> ! {
    crate::fatal::halt_system(format_args!("smmu: {e}"))
}

impl HostDma for SmmuDma {
    fn grant(&mut self, start: usize, end: usize) {
        if let Err(e) = self.table.map(start, end) {
            crate::fatal::halt_system(format_args!("smmu: {e}"));
        }
        // New valid entries need no invalidation (an SMMU caches no faulting entry), only to
        // be visible to its table walker before the host can use them.
        // SAFETY: a barrier has no other effect.
        unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
    }

    #[inline(never)] // checked by name in the built payload (payload_maintenance_sequences)
    fn revoke(&mut self, start: usize, end: usize) {
        if let Err(e) = self.table.unmap(start, end) {
            crate::fatal::halt_system(format_args!("smmu: {e}"));
        }
        let (cmds, n) = revoke_invalidation(self.context, start, end);
        // `run` orders the descriptor writes before the commands (dsb) and returns only when
        // CMD_SYNC has been consumed: the invalidation is complete (IHI 0070 4.7.3).
        if let Err(e) = self.cmdq.run(&cmds[..n]) {
            fatal_queue(e);
        }
    }

    fn is_granted(&self, pa: usize) -> bool {
        self.table.is_mapped(pa)
    }
}

fn wait_ack(
    regs: &Regs,
    offset: usize,
    mask: u32,
    want: u32,
    what: &'static str,
) -> Result<(), SmmuError> {
    for _ in 0..1_000_000 {
        if regs.read32(offset) & mask == want {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(SmmuError::NoAck(what))
}

fn zero(range: Range<usize>) {
    // SAFETY: the memory plan gave this block to the SMMU alone; EL2 maps it read-write and
    // the SMMU is disabled while it is filled.
    unsafe { core::ptr::write_bytes(range.start as *mut u8, 0, range.end - range.start) };
}

fn write_words(at: usize, words: &[u64]) {
    for (i, w) in words.iter().enumerate() {
        // SAFETY: as in `zero`: a slot of the stream table or the CD, inside the block.
        unsafe { core::ptr::write_volatile((at as *mut u64).add(i), *w) };
    }
}

fn bits_for(streams: u32) -> u32 {
    32 - streams.saturating_sub(1).leading_zeros()
}

/// Takes the SMMU: aborts unknown streams, builds the stream table, CD and queues in
/// `block` (the memory plan's SMMU range) and the (empty) DMA table over `ram`, and turns
/// the queues on. The SMMU itself stays off (aborting everything) until [`enable`], after
/// the record has granted the host's pages.
///
/// # Safety
///
/// `smmu.regs` is mapped as device memory at EL2; `block` is the plan's SMMU range, RAM that
/// EL2 alone owns and maps read-write.
pub unsafe fn init(
    smmu: &Smmu,
    block: Range<usize>,
    ram: &[(usize, usize)],
) -> Result<&'static mut SmmuDma, SmmuError> {
    // SAFETY: the caller's contract.
    let regs = unsafe { Regs::new(smmu.regs.base as usize) };
    let f = Features::read(&regs);
    log::info!(
        "smmu: SMMUv3 at {:#x}: IDR0 {:#x}: stage 1 {}, stage 2 {}, 2-level stream table {}, {} stream ID bits, {}-bit output; {} master(s) use stream IDs below {:#x}",
        smmu.regs.base,
        f.idr0,
        f.stage1,
        f.stage2,
        f.two_level_streams,
        f.sid_bits,
        f.oas_bits(),
        smmu.masters,
        smmu.stream_id_end
    );
    let translation = mode::choose(f.idr0, f.idr5).map_err(SmmuError::Unsupported)?;
    if let DmaTranslation::Stage2(cfg) = &translation
        && let Some(&(_, ram_end)) = ram.iter().find(|&&(_, e)| e > cfg.ipa_size())
    {
        return Err(SmmuError::RamBeyondStage2 {
            ram_end,
            ipa_bits: cfg.ipa_bits,
        });
    }
    let needed_bits = bits_for(smmu.stream_id_end.max(1));
    let table_bits = if f.two_level_streams {
        needed_bits.max(tables::SPLIT)
    } else {
        needed_bits
    };
    let fits = table_bits <= f.sid_bits
        && if f.two_level_streams {
            tables::l1_entries(table_bits).is_some()
        } else {
            table_bits <= tables::LINEAR_MAX_SID_BITS
        };
    if !fits {
        return Err(SmmuError::TooManyStreams {
            needed_bits,
            supported_bits: f.sid_bits,
        });
    }

    // Off, and aborting every transaction while off (IHI 0070 6.3.14).
    regs.write32(regs::CR0, 0);
    wait_ack(&regs, regs::CR0ACK, !0, 0, "CR0 = 0")?;
    regs.write32(regs::GBPA, regs::GBPA_ABORT | regs::GBPA_UPDATE);
    wait_ack(&regs, regs::GBPA, regs::GBPA_UPDATE, 0, "GBPA.ABORT")?;

    let layout = Layout::new(block.start);
    zero(block.start..layout.end);
    // SAFETY: the pool pages are the rest of the plan's SMMU block, EL2's alone.
    let pool = unsafe { PagePool::new(layout.end, block.end - layout.end) };
    let context = translation.context();
    let (table, ste) = match &translation {
        DmaTranslation::Stage1 { ips } => {
            let table = DmaTable::new(pool, ram).ok_or(SmmuError::TablePool)?;
            write_words(layout.cd, &tables::host_cd(table.root_pa(), *ips));
            let ste = tables::host_ste(layout.cd);
            (table, ste)
        }
        DmaTranslation::Stage2(cfg) => {
            let table = DmaTable::new_stage2(pool, ram, cfg).ok_or(SmmuError::TablePool)?;
            let ste = tables::host_ste_s2(table.root_pa(), cfg);
            (table, ste)
        }
    };
    let (strtab, cfg) = if f.two_level_streams {
        for i in 0..1usize << tables::SPLIT {
            write_words(layout.ste + i * 64, &ste);
        }
        let l1 = tables::l1_entries(table_bits).unwrap_or(0);
        for i in 0..l1 {
            write_words(layout.l1 + i * 8, &[tables::l1_descriptor(layout.ste)]);
        }
        // FMT = 2-level (1), SPLIT, LOG2SIZE.
        (layout.l1, (1 << 16) | (tables::SPLIT << 6) | table_bits)
    } else {
        for i in 0..1usize << table_bits {
            write_words(layout.ste + i * 64, &ste);
        }
        (layout.ste, table_bits)
    };
    // SAFETY: a barrier has no other effect; the tables must be in memory before the SMMU
    // is told where they are.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };

    regs.write32(regs::CR1, regs::CR1_WB_ISH);
    regs.write32(regs::CR2, regs::CR2_RECINVSID_PTM);
    regs.write64(regs::STRTAB_BASE, (1 << 62) | strtab as u64);
    regs.write32(regs::STRTAB_BASE_CFG, cfg);
    let cmdq_log2 = tables::CMDQ_LOG2.min(f.cmdq_log2);
    let eventq_log2 = tables::EVENTQ_LOG2.min(f.eventq_log2);
    regs.write64(
        regs::CMDQ_BASE,
        regs::QUEUE_BASE_ALLOCATE
            | (layout.cmdq as u64 & regs::ADDR_MASK_51_5)
            | u64::from(cmdq_log2),
    );
    regs.write32(regs::CMDQ_PROD, 0);
    regs.write32(regs::CMDQ_CONS, 0);
    regs.write64(
        regs::EVENTQ_BASE,
        regs::QUEUE_BASE_ALLOCATE
            | (layout.eventq as u64 & regs::ADDR_MASK_51_5)
            | u64::from(eventq_log2),
    );
    regs.write32(regs::EVENTQ_PROD, 0);
    regs.write32(regs::EVENTQ_CONS, 0);

    regs.write32(regs::CR0, regs::CR0_CMDQEN);
    wait_ack(
        &regs,
        regs::CR0ACK,
        regs::CR0_CMDQEN,
        regs::CR0_CMDQEN,
        "CMDQEN",
    )?;
    // SAFETY: the queue memory is in the block, named by CMDQ_BASE.
    let mut cmdq = unsafe { CommandQueue::new(regs, layout.cmdq, cmdq_log2) };
    // Nothing cached from before EL2 (firmware may have used the SMMU) survives.
    cmdq.run(&[Command::cfgi_all(), Command::tlbi_nsnh_all()])
        .map_err(SmmuError::Queue)?;
    let cr0 = regs::CR0_CMDQEN | regs::CR0_EVENTQEN;
    regs.write32(regs::CR0, cr0);
    wait_ack(&regs, regs::CR0ACK, cr0, cr0, "EVENTQEN")?;
    // SAFETY: the event queue memory is in the block, named by EVENTQ_BASE.
    EVENTS.call_once(|| Mutex::new(unsafe { EventQueue::new(regs, layout.eventq, eventq_log2) }));
    REGS.call_once(|| regs);
    log::info!(
        "smmu: stream table {} ({} stream ID bits), command queue {} entries, event queue {} entries",
        if f.two_level_streams {
            "2-level, one shared level-2 table"
        } else {
            "linear"
        },
        table_bits,
        1u32 << cmdq_log2,
        1u32 << eventq_log2
    );
    match &translation {
        DmaTranslation::Stage1 { .. } => log::info!(
            "smmu: host streams: stage 1 (ASID {HOST_ASID}), CD at {:#x}, DMA table root {:#x}",
            layout.cd,
            table.root_pa()
        ),
        DmaTranslation::Stage2(cfg) => log::info!(
            "smmu: host streams: stage 2 (VMID {HOST_VMID}), {}-bit input from level {} ({} root table(s)), DMA table root {:#x}",
            cfg.ipa_bits,
            cfg.root_level,
            cfg.root_tables,
            table.root_pa()
        ),
    }
    let dma = alloc::boxed::Box::new(SmmuDma {
        table,
        cmdq,
        context,
    });
    Ok(alloc::boxed::Box::leak(dma))
}

/// Turns translation on once the host's pages are in the DMA table: from here every host
/// stream sees exactly those pages.
pub fn enable() -> Result<(), SmmuError> {
    let Some(regs) = REGS.get() else {
        return Err(SmmuError::NoAck("enable before init"));
    };
    let cr0 = regs::CR0_CMDQEN | regs::CR0_EVENTQEN | regs::CR0_SMMUEN;
    regs.write32(regs::CR0, cr0);
    wait_ack(regs, regs::CR0ACK, cr0, cr0, "SMMUEN")?;
    log::info!("smmu: on: every host stream translates through EL2's DMA table");
    Ok(())
}

/// Logs and counts the SMMU's fault events, if another CPU is not already doing it.
pub fn poll_events() {
    if let Some(queue) = EVENTS.get()
        && let Some(mut queue) = queue.try_lock()
    {
        queue.drain();
    }
}
