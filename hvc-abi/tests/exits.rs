//! VCPU_RUN exit encoding.

use hvc_abi::{AccessSize, Error, Exit, ExitReason, MmioAccess};

fn samples() -> Vec<Exit> {
    let mut v = vec![
        Exit::Irq,
        Exit::GuestHvc {
            function_id: 0x8400_0000,
            x1: u64::MAX,
        },
        Exit::MemShared {
            ipa: 0x8000_0000,
            nr: 1,
        },
        Exit::MemUnshared {
            ipa: 0xFF_FFE0_0000,
            nr: 512,
        },
        Exit::MemRelinquished { ipa: 0x1000, nr: 7 },
        Exit::MemFault { ipa: 0x4000_0000 },
        Exit::SystemOff,
        Exit::SystemReset,
        Exit::VcpuStarted { vcpu: 0 },
        Exit::VcpuStarted { vcpu: 7 },
        Exit::VcpuOff,
    ];
    for size in AccessSize::ALL {
        for register in 0..32 {
            v.push(Exit::Mmio {
                ipa: 0x0900_0003,
                size,
                register,
                access: MmioAccess::Read,
            });
            v.push(Exit::Mmio {
                ipa: 0x0900_0000,
                size,
                register,
                access: MmioAccess::Write {
                    data: 0x8877_6655_4433_2211 & size.mask(),
                },
            });
        }
    }
    v
}

#[test]
fn every_exit_round_trips() {
    for exit in samples() {
        assert_eq!(Exit::decode(exit.encode()), Ok(exit), "{exit:?}");
        assert_eq!(exit.encode()[0] & 0xFF, exit.reason() as u64);
    }
}

#[test]
fn reason_values_are_1_to_11() {
    for (i, r) in ExitReason::ALL.iter().enumerate() {
        assert_eq!(*r as u8 as usize, i + 1);
        assert_eq!(ExitReason::from_u8(*r as u8), Some(*r));
    }
    assert_eq!(ExitReason::from_u8(0), None);
    for v in 12..=255 {
        assert_eq!(ExitReason::from_u8(v), None);
        assert_eq!(Exit::decode([v.into(), 0, 0]), Err(Error::InvalidParameter));
    }
    assert_eq!(Exit::decode([0, 0, 0]), Err(Error::InvalidParameter));
}

#[test]
fn vcpu_started_names_a_vcpu_below_8() {
    assert_eq!(Exit::VcpuStarted { vcpu: 3 }.encode(), [10, 3, 0]);
    assert_eq!(Exit::decode([10, 8, 0]), Err(Error::InvalidParameter));
    assert_eq!(Exit::decode([10, 1, 1]), Err(Error::InvalidParameter));
    assert_eq!(Exit::decode([11, 1, 0]), Err(Error::InvalidParameter));
}

#[test]
fn mmio_x1_layout_is_size_write_register() {
    // A 4-byte write from x5 to 0x0900_0000 of 0xAABBCCDD.
    let exit = Exit::Mmio {
        ipa: 0x0900_0000,
        size: AccessSize::B4,
        register: 5,
        access: MmioAccess::Write { data: 0xAABB_CCDD },
    };
    assert_eq!(exit.encode(), [0x0005_1202, 0x0900_0000, 0xAABB_CCDD]);
    // An 8-byte read into x30.
    let exit = Exit::Mmio {
        ipa: 0x0900_0018,
        size: AccessSize::B8,
        register: 30,
        access: MmioAccess::Read,
    };
    assert_eq!(exit.encode(), [0x001E_0302, 0x0900_0018, 0]);
}

#[test]
fn mmio_write_data_above_the_size_is_rejected_by_decode_and_cut_by_encode() {
    assert_eq!(
        Exit::decode([0x1002, 0, 0x100]),
        Err(Error::InvalidParameter)
    );
    assert_eq!(
        Exit::decode([0x1102, 0, 0x1_0000]),
        Err(Error::InvalidParameter)
    );
    assert_eq!(
        Exit::decode([0x1202, 0, 1 << 32]),
        Err(Error::InvalidParameter)
    );
    assert!(Exit::decode([0x1302, 0, u64::MAX]).is_ok());
    let exit = Exit::Mmio {
        ipa: 0,
        size: AccessSize::B1,
        register: 40,
        access: MmioAccess::Write { data: 0x1FF },
    };
    assert_eq!(exit.encode(), [0x0008_1002, 0, 0xFF]);
}

#[test]
fn mmio_read_has_zero_x3() {
    assert_eq!(
        Exit::decode([0x0002, 0x1000, 1]),
        Err(Error::InvalidParameter)
    );
}

#[test]
fn every_reserved_bit_of_x1_is_rejected() {
    for bit in 8..64 {
        for reason in [1u64, 3, 4, 5, 6, 7, 8, 9] {
            let mut regs = valid_regs(reason);
            regs[0] |= 1 << bit;
            assert_eq!(
                Exit::decode(regs),
                Err(Error::InvalidParameter),
                "reason {reason} bit {bit}"
            );
        }
        let mmio_defined = (0x3 << 8) | (1 << 12) | (0x1F << 16);
        if mmio_defined & (1u64 << bit) == 0 {
            assert_eq!(
                Exit::decode([2 | (1 << bit), 0x1000, 0]),
                Err(Error::InvalidParameter),
                "MMIO bit {bit}"
            );
        }
    }
}

/// x1..x3 of a valid exit for `reason`.
fn valid_regs(reason: u64) -> [u64; 3] {
    let regs = match reason {
        3 => [3, 0x8400_0000, 5],
        4..=6 => [reason, 0x2000, 1],
        7 => [7, 0x2000, 0],
        _ => [reason, 0, 0],
    };
    assert!(Exit::decode(regs).is_ok());
    regs
}

#[test]
fn exits_without_details_have_zero_x2_and_x3() {
    for reason in [1u64, 8, 9] {
        assert_eq!(Exit::decode([reason, 1, 0]), Err(Error::InvalidParameter));
        assert_eq!(Exit::decode([reason, 0, 1]), Err(Error::InvalidParameter));
    }
}

#[test]
fn guest_hvc_function_id_is_32_bits() {
    assert_eq!(Exit::decode([3, 1 << 32, 0]), Err(Error::InvalidParameter));
}

#[test]
fn memory_exits_carry_page_aligned_ipa_and_a_valid_count() {
    for reason in 4..=6u64 {
        assert_eq!(
            Exit::decode([reason, 0x1001, 1]),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            Exit::decode([reason, 0x1000, 0]),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            Exit::decode([reason, 0x1000, 513]),
            Err(Error::InvalidParameter)
        );
        assert_eq!(
            Exit::decode([reason, 1 << 40, 1]),
            Err(Error::InvalidParameter)
        );
    }
    assert_eq!(Exit::decode([7, 0x1004, 0]), Err(Error::InvalidParameter));
    assert_eq!(Exit::decode([7, 0x1000, 1]), Err(Error::InvalidParameter));
    assert_eq!(Exit::decode([7, 1 << 40, 0]), Err(Error::InvalidParameter));
}
