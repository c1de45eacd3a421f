//! Register sets from fuzz bytes, shaped so that most of them reach past the function-id
//! match and the MBZ checks: x0 is usually a known id (with stray upper bits or the SVE hint
//! now and then), and each argument register is zero, small, near a documented limit, or raw.

use crate::bytes::Bytes;
use hvc_abi::{AccessSize, Exit, MmioAccess};

/// Every id `docs/abi.md` names, and neighbours that must be refused or forwarded: other
/// numbers of our range, the SMC32 and yielding forms, bits [23:16] set, other owners.
const IDS: [u32; 38] = [
    0x8600_FF01,
    0xC600_0000,
    0xC600_0001,
    0xC600_0002,
    0xC600_0003,
    0xC600_0004,
    0xC600_0005,
    0xC600_0006,
    0xC600_0007,
    0xC600_0008,
    0xC600_0009,
    0xC600_000A,
    0xC600_000B,
    0xC600_000C,
    0xC600_001F,
    0xC600_0020,
    0xC600_0021,
    0xC600_0022,
    0xC600_0023,
    0xC600_0024,
    0xC600_0025,
    0xC600_0026,
    0x8400_0008,
    0x8400_0009,
    0x8400_0000,
    0xC400_0003,
    0x8600_0005,
    0x4600_0005,
    0x0600_0021,
    0xC680_0001,
    0xC602_0009,
    0x8600_FF00,
    0x8600_FF02,
    0x8000_0000,
    0xC500_0021,
    0xC700_0021,
    0x0000_0000,
    0xFFFF_FFFF,
];

/// Values next to the limits of sections 1.4, 4 and 9.
const EDGES: [u64; 22] = [
    1 << 36,
    1 << 28,
    1 << 40,
    1 << 32,
    1 << 48,
    1 << 63,
    u64::MAX,
    u32::MAX as u64,
    512,
    513,
    8,
    9,
    32,
    40,
    4096,
    (1 << 36) - 512,
    (1 << 28) - 512,
    (1 << 40) - (512 << 12),
    u64::MAX - 4095,
    0x1_0000,
    0xFFFF,
    16,
];

/// An argument value: zero (most often, so MBZ checks pass), small, near an edge, a page
/// address, or raw.
pub fn value(b: &mut Bytes<'_>) -> u64 {
    match b.u8() % 8 {
        0..=2 => 0,
        3 => u64::from(b.u8()),
        4 => {
            let edge = b.pick(&EDGES);
            edge.wrapping_add(i64::from(b.u8() as i8) as u64)
        }
        5 => b.u64(),
        6 => u64::from(b.u32()) << 12,
        _ => u64::from(b.u16()),
    }
}

/// x0: a known id, possibly with bits [63:32] and the SVE hint set, or a raw value.
pub fn x0(b: &mut Bytes<'_>) -> u64 {
    let mode = b.u8();
    if mode >= 0xE0 {
        return b.u64();
    }
    let mut x0 = u64::from(b.pick(&IDS));
    if mode & 1 != 0 {
        x0 |= u64::from(b.u32()) << 32;
    }
    if mode & 2 != 0 {
        x0 |= 1 << 16;
    }
    x0
}

/// x0..x7 of an HVC.
pub fn registers(b: &mut Bytes<'_>) -> [u64; 8] {
    let mut regs = [0; 8];
    regs[0] = x0(b);
    for r in &mut regs[1..] {
        *r = value(b);
    }
    regs
}

/// x1..x3 of a VCPU_RUN return: a reason (valid or not) with MMIO fields or stray bits, or
/// raw.
pub fn exit_registers(b: &mut Bytes<'_>) -> [u64; 3] {
    let mode = b.u8();
    let reason = u64::from(b.u8() % 12);
    let mmio_fields = (u64::from(b.u8() & 3) << 8)
        | (u64::from(b.u8() & 1) << 12)
        | (u64::from(b.u8() & 0x1F) << 16);
    let x1 = match mode % 4 {
        0 => reason,
        1 => reason | mmio_fields,
        2 => reason | mmio_fields | (1 << (b.u8() % 64)),
        _ => b.u64(),
    };
    [x1, value(b), value(b)]
}

/// An exit as the payload might build one, fields from the input (valid or not).
pub fn exit(b: &mut Bytes<'_>) -> Exit {
    let kind = b.u8() % 9;
    let ipa = value(b);
    let nr = value(b) as u32;
    match kind {
        0 => Exit::Irq,
        1 => Exit::Mmio {
            ipa,
            size: b.pick(&AccessSize::ALL),
            register: b.u8(),
            access: if b.u8() & 1 == 0 {
                MmioAccess::Read
            } else {
                MmioAccess::Write { data: value(b) }
            },
        },
        2 => Exit::GuestHvc {
            function_id: x0(b) as u32,
            x1: value(b),
        },
        3 => Exit::MemShared { ipa, nr },
        4 => Exit::MemUnshared { ipa, nr },
        5 => Exit::MemRelinquished { ipa, nr },
        6 => Exit::MemFault { ipa },
        7 => Exit::SystemOff,
        _ => Exit::SystemReset,
    }
}
