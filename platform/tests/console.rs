//! Each console driver against a DTB that names it: discovery picks the driver from the
//! stdout-path node's `compatible` (with `reg-shift` / `reg-io-width` for the 16550 family),
//! and the driver's register accesses are recorded through `UartRegs`.

mod common;

use core::fmt::Write;

use common::{Board, fixture, reg2};
use platform::console::{Console, UartDriver, UartRegs};
use platform::fdt_discovery::{ConsoleUart, UartKind, discover, find_console};

/// A register access a driver made: (write?, offset, value).
type Access = (bool, usize, u32);

/// Register block that answers reads from `values` (offset, value) and records every access.
struct Recorder {
    values: Vec<(usize, u32)>,
    log: Vec<Access>,
}

impl Recorder {
    fn new(values: &[(usize, u32)]) -> Self {
        Self {
            values: values.to_vec(),
            log: Vec::new(),
        }
    }

    fn writes(&self) -> Vec<(usize, u32)> {
        self.log
            .iter()
            .filter(|a| a.0)
            .map(|&(_, o, v)| (o, v))
            .collect()
    }

    fn read_offsets(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.log.iter().filter(|a| !a.0).map(|a| a.1).collect();
        v.dedup();
        v
    }
}

impl UartRegs for &mut Recorder {
    fn read(&mut self, offset: usize) -> u32 {
        self.log.push((false, offset, 0));
        self.values
            .iter()
            .find(|v| v.0 == offset)
            .map_or(0, |v| v.1)
    }

    fn write(&mut self, offset: usize, value: u32) {
        self.log.push((true, offset, value));
        if let Some(v) = self.values.iter_mut().find(|v| v.0 == offset) {
            v.1 = value;
        }
    }
}

/// Writes `text` and flushes through the driver `uart.kind` needs, over `regs`.
fn drive(uart: &ConsoleUart, regs: &mut Recorder, text: &str) {
    let mut driver = UartDriver::for_kind(uart.kind, regs).expect("a driver");
    driver.write_bytes(text.as_bytes());
    driver.flush();
}

#[test]
fn zcu102_console_is_the_cadence_uart_and_its_transmitter_is_enabled_first() {
    let uart = find_console(&fixture("zynqmp-zcu102-rev1.0.dtb")).expect("a console");
    assert_eq!(uart.kind, UartKind::Cadence);
    assert_eq!(uart.regs.base, 0xff00_0000);
    // CR at reset: TXDIS | RXDIS | STPBRK (0x128); status: TX FIFO empty, not full.
    let mut regs = Recorder::new(&[(0x00, 0x128), (0x2c, 1 << 3)]);
    drive(&uart, &mut regs, "ok\n");
    assert_eq!(
        regs.writes(),
        [
            (0x00, 0x118),
            (0x30, u32::from(b'o')),
            (0x30, u32::from(b'k')),
            (0x30, 10)
        ],
        "TXEN set and TXDIS cleared (RX untouched), then each byte into the FIFO"
    );
    assert_eq!(
        regs.read_offsets(),
        [0x00, 0x2c],
        "CR once, then the status register"
    );
}

#[test]
fn an_enabled_cadence_transmitter_is_left_alone() {
    let uart = find_console(&fixture("zynqmp-zcu102-rev1.0.dtb")).unwrap();
    let mut regs = Recorder::new(&[(0x00, 0x114), (0x2c, 1 << 3)]);
    drive(&uart, &mut regs, "x");
    assert_eq!(regs.writes(), [(0x30, u32::from(b'x'))]);
}

#[test]
fn juno_console_is_a_pl011() {
    let uart = find_console(&fixture("juno-r2.dtb")).expect("a console");
    assert_eq!(uart.kind, UartKind::Pl011);
    assert_eq!(uart.regs.base, 0x7ff8_0000);
    assert!(UartDriver::for_kind(uart.kind, &mut Recorder::new(&[])).is_none());
}

/// A board whose console is a 16550-family UART at 0xff1a_0000 with these properties.
fn board_16550(
    compatible: &'static [&'static str],
    shift: Option<u32>,
    width: Option<u32>,
) -> Vec<u8> {
    Board {
        stdout_path: Some("serial2:1500000n8"),
        aliases: vec![("serial2", "/serial@ff1a0000")],
        extra: vec![Box::new(move |w| {
            let n = w.begin_node("serial@ff1a0000").unwrap();
            w.property_string_list(
                "compatible",
                compatible.iter().map(|s| s.to_string()).collect(),
            )
            .unwrap();
            reg2(w, &[(0xff1a_0000, 0x100)]);
            if let Some(s) = shift {
                w.property_u32("reg-shift", s).unwrap();
            }
            if let Some(iw) = width {
                w.property_u32("reg-io-width", iw).unwrap();
            }
            w.end_node(n).unwrap();
        })],
        ..Board::default()
    }
    .build()
}

#[test]
fn dw_apb_uart_registers_sit_reg_shift_apart_and_are_reg_io_width_wide() {
    // As on RK3399 boards: registers 4 bytes apart, 32-bit accesses.
    let dtb = board_16550(
        &["rockchip,rk3399-uart", "snps,dw-apb-uart"],
        Some(2),
        Some(4),
    );
    let uart = discover(&dtb).unwrap().console.expect("a console");
    assert_eq!(
        uart.kind,
        UartKind::Ns16550 {
            reg_shift: 2,
            io_width: 4
        }
    );
    assert_eq!(uart.regs.base, 0xff1a_0000);
    // LSR (register 5, at 5 << 2) says THRE and TEMT.
    let mut regs = Recorder::new(&[(0x14, (1 << 5) | (1 << 6))]);
    drive(&uart, &mut regs, "hi");
    assert_eq!(regs.writes(), [(0, u32::from(b'h')), (0, u32::from(b'i'))]);
    assert_eq!(regs.read_offsets(), [0x14]);

    // The same through the MMIO path: a 32-bit register block in memory.
    let block: &'static mut [u32; 8] = Box::leak(Box::new([0; 8]));
    block[5] = (1 << 5) | (1 << 6);
    let base = block.as_mut_ptr() as u64;
    let at = ConsoleUart {
        regs: platform::MemRange::new(base, 32).unwrap(),
        ..uart
    };
    // SAFETY: a leaked, aligned block standing in for the UART, used by nothing else.
    let mut console = unsafe { Console::for_uart(&at) }.expect("a console");
    console.write_str("ok").unwrap();
    console.flush();
    assert_eq!(block[0], u32::from(b'k'));
}

#[test]
fn ns16550a_without_properties_uses_byte_registers_one_apart() {
    let dtb = board_16550(&["ns16550a"], None, None);
    let uart = find_console(&dtb).expect("a console");
    assert_eq!(
        uart.kind,
        UartKind::Ns16550 {
            reg_shift: 0,
            io_width: 1
        }
    );
    let mut regs = Recorder::new(&[(5, 1 << 5 | 1 << 6)]);
    drive(&uart, &mut regs, "A");
    assert_eq!(regs.writes(), [(0, u32::from(b'A'))]);
    assert_eq!(regs.read_offsets(), [5]);
}

#[test]
fn a_console_the_payload_cannot_drive_is_no_console_and_no_error() {
    for dtb in [
        board_16550(&["vendor,unknown-uart"], None, None),
        board_16550(&["ns16550a"], None, Some(8)),
        board_16550(&["snps,dw-apb-uart"], Some(9), Some(4)),
    ] {
        assert_eq!(find_console(&dtb), None);
        let info = discover(&dtb).expect("the boot goes on without a console");
        assert_eq!(info.console, None);
    }
}
