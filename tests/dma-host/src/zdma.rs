//! One channel of the ZynqMP DMA engine (ZDMA), as an attacker uses it: a memory-to-memory
//! copy in "simple" mode, where both descriptors sit in the channel's registers, so the
//! host needs no memory the engine reads descriptors from. Register map and behaviour as in
//! Xilinx UG1087 (ZDMA channel registers) and QEMU 7.2's model (`hw/dma/xlnx-zdma.c`):
//!
//! - `CTRL0` (0x110): POINT_TYPE (bit 6) 0 = descriptors in registers ("simple" mode),
//!   MODE (bits 5:4) 0 = read then write.
//! - `SRC_DSCR_WORD0..3` (0x128..0x134), `DST_DSCR_WORD0..3` (0x138..0x144): address
//!   bits [31:0], address bits [48:32] (17 bits), size in bytes (30 bits), and a control
//!   word (interrupt, coherence: 0 here).
//! - `CTRL2` (0x200): EN (bit 0) starts the channel; the engine clears it when done.
//! - `ISR` (0x100, write 1 to clear): DMA_DONE (bit 10). `STATUS` (0x11c): STATE (bits
//!   1:0) 3 = error. `TOTAL_BYTE` (0x188, write 1 to clear): bytes moved.
//!
//! The registers take 32-bit accesses only. QEMU's model has no clock or reset gating of
//! its own and its channels address the whole system bus (`zdma-dma` is system memory):
//! nothing but EL2's stage 2 stands between a host that reaches the registers and any
//! physical address. QEMU moves the data within the write to CTRL2; the status is still
//! polled, as on hardware, with a bound.

use el1_rt::exceptions::Abort;
use el1_rt::probe;

const ISR: usize = 0x100;
const CTRL0: usize = 0x110;
const STATUS: usize = 0x11c;
const SRC_DSCR_WORD0: usize = 0x128;
const DST_DSCR_WORD0: usize = 0x138;
const TOTAL_BYTE: usize = 0x188;
const CTRL2: usize = 0x200;

const ISR_DMA_DONE: u32 = 1 << 10;
const ISR_ALL: u32 = 0xfff;
/// POINT_TYPE = 0 (simple mode), MODE = 0 (read-write), no rate control, no continue.
const CTRL0_SIMPLE_READ_WRITE: u32 = 0;
const CTRL2_EN: u32 = 1;
const STATUS_STATE: u32 = 0b11;
const STATE_ERROR: u32 = 3;
/// The descriptor's size field is 30 bits wide.
const MAX_SIZE: u32 = (1 << 30) - 1;
/// Address bits [48:32] of a descriptor.
const ADDRESS_MSB_MASK: u64 = 0x1_ffff;
/// Reads of ISR before the engine counts as stuck (QEMU is done at the first).
const POLL_LIMIT: u32 = 100_000;

/// What became of a copy request.
pub enum Outcome {
    /// The first register access was refused with this abort (at `register`): the channel
    /// was never programmed.
    Refused { register: usize, abort: Abort },
    /// The engine reported DMA_DONE having moved `total_bytes`.
    Copied { total_bytes: u32 },
    /// Something else: a later register access aborted, the engine reported an error, or
    /// it never finished.
    Failed {
        why: &'static str,
        register: usize,
        value: u64,
    },
}

/// Asks the channel whose registers start at `channel` to copy `len` bytes from physical
/// address `src` to physical address `dst`. `maintain` says which of the two ranges are
/// this image's own memory, whose cache lines it cleans and invalidates around the copy;
/// a range the host cannot access (a guest's page, EL2's memory) gets none, since cache
/// maintenance by address would itself take the stage-2 abort.
pub fn copy(channel: usize, src: usize, dst: usize, len: u32, maintain: Maintain) -> Outcome {
    if len == 0 || len > MAX_SIZE {
        return Outcome::Failed {
            why: "length out of the descriptor's range",
            register: 0,
            value: u64::from(len),
        };
    }
    // The first access decides whether the host reaches the engine at all.
    if let Err(abort) = probe::write_u32(channel + CTRL0, CTRL0_SIMPLE_READ_WRITE) {
        return Outcome::Refused {
            register: channel + CTRL0,
            abort,
        };
    }
    if maintain.src {
        // The engine reads memory, not this CPU's caches.
        el1_rt::cache::clean_to_poc(src, len as usize);
    }
    if maintain.dst {
        // No dirty line may later overwrite what the engine wrote.
        el1_rt::cache::clean_invalidate_to_poc(dst, len as usize);
    }
    let program = [
        (ISR, ISR_ALL),
        (TOTAL_BYTE, u32::MAX),
        (SRC_DSCR_WORD0, src as u32),
        (SRC_DSCR_WORD0 + 4, msb(src)),
        (SRC_DSCR_WORD0 + 8, len),
        (SRC_DSCR_WORD0 + 12, 0),
        (DST_DSCR_WORD0, dst as u32),
        (DST_DSCR_WORD0 + 4, msb(dst)),
        (DST_DSCR_WORD0 + 8, len),
        (DST_DSCR_WORD0 + 12, 0),
        (CTRL2, CTRL2_EN),
    ];
    for (offset, value) in program {
        if probe::write_u32(channel + offset, value).is_err() {
            return Outcome::Failed {
                why: "a register write aborted after the first went through",
                register: channel + offset,
                value: u64::from(value),
            };
        }
    }
    let outcome = wait_for_done(channel);
    if maintain.dst {
        // Lines fetched speculatively while the engine wrote would hide its data.
        el1_rt::cache::clean_invalidate_to_poc(dst, len as usize);
    }
    outcome
}

/// Which ends of a copy are this image's memory, whose caches it maintains.
#[derive(Clone, Copy)]
pub struct Maintain {
    pub src: bool,
    pub dst: bool,
}

impl Maintain {
    pub const BOTH: Self = Self {
        src: true,
        dst: true,
    };
}

fn msb(address: usize) -> u32 {
    ((address as u64 >> 32) & ADDRESS_MSB_MASK) as u32
}

fn read(register: usize) -> Result<u32, Outcome> {
    probe::read_u32(register).map_err(|_| Outcome::Failed {
        why: "a register read aborted after the writes went through",
        register,
        value: 0,
    })
}

fn wait_for_done(channel: usize) -> Outcome {
    let result = (|| {
        for _ in 0..POLL_LIMIT {
            let isr = read(channel + ISR)?;
            let status = read(channel + STATUS)?;
            if status & STATUS_STATE == STATE_ERROR {
                return Err(Outcome::Failed {
                    why: "the channel reports an error (STATUS.STATE = 3)",
                    register: channel + ISR,
                    value: u64::from(isr),
                });
            }
            if isr & ISR_DMA_DONE != 0 {
                let total_bytes = read(channel + TOTAL_BYTE)?;
                // Leave the channel as found: no pending status, count cleared.
                let _ = probe::write_u32(channel + ISR, ISR_ALL);
                let _ = probe::write_u32(channel + TOTAL_BYTE, u32::MAX);
                return Ok(Outcome::Copied { total_bytes });
            }
            core::hint::spin_loop();
        }
        Err(Outcome::Failed {
            why: "no DMA_DONE within the poll limit",
            register: channel + ISR,
            value: 0,
        })
    })();
    match result {
        Ok(outcome) | Err(outcome) => outcome,
    }
}
