//! The console: the UART named by `/chosen/stdout-path`, if the payload has a driver for it.

use super::reg::first_reg;
use crate::fdt_tree::{self, is_compatible};
use crate::fixed_list::MemRange;

/// Which driver a console UART needs, from its `compatible`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// `arm,pl011` (QEMU `virt`, most Arm reference boards).
    Pl011,
    /// `cdns,uart-r1p12`, `cdns,uart-r1p8` or `xlnx,xuartps` (Zynq, ZynqMP: QEMU `xlnx-zcu102`).
    Cadence,
    /// The 16550 family: `ns16550a`, `ns16550`, `snps,dw-apb-uart` (most Rockchip, Allwinner,
    /// TI and NVIDIA boards). Register `n` sits at `n << reg_shift` and is accessed
    /// `io_width` bytes wide (`reg-shift`, default 0; `reg-io-width`, default 1).
    Ns16550 { reg_shift: u8, io_width: u8 },
}

/// The console UART: its driver and its registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleUart {
    pub kind: UartKind,
    pub regs: MemRange,
}

const PL011: &[&str] = &["arm,pl011"];
const CADENCE: &[&str] = &["cdns,uart-r1p12", "cdns,uart-r1p8", "xlnx,xuartps"];
const NS16550: &[&str] = &["ns16550a", "ns16550", "snps,dw-apb-uart"];

/// The driver for `node`, or `None` if the payload has none (or its `reg-shift` /
/// `reg-io-width` are ones it cannot use: a shift above 4, a width other than 1, 2 or 4).
fn uart_kind(node: fdt::node::FdtNode<'_, '_>) -> Option<UartKind> {
    let any = |list: &[&str]| list.iter().any(|c| is_compatible(node, c));
    if any(PL011) {
        return Some(UartKind::Pl011);
    }
    if any(CADENCE) {
        return Some(UartKind::Cadence);
    }
    if !any(NS16550) {
        return None;
    }
    let u32_prop = |name: &str, default: u32| match node.property(name) {
        None => Some(default),
        Some(p) => p.value.try_into().ok().map(u32::from_be_bytes),
    };
    let reg_shift = u32_prop("reg-shift", 0).filter(|&s| s <= 4)?;
    let io_width = u32_prop("reg-io-width", 1).filter(|w| matches!(w, 1 | 2 | 4))?;
    Some(UartKind::Ns16550 {
        reg_shift: reg_shift as u8,
        io_width: io_width as u8,
    })
}

/// The UART that `/chosen/stdout-path` (or the older `linux,stdout-path`) names, after
/// dropping `:options` and resolving an alias; `None` if there is none the payload can drive.
///
/// Never an error: a console is a convenience, not something the boot depends on. No
/// stdout-path, one that is not a string or names no node (or an alias that does not
/// expand to an absolute path), a device without a driver here, or a UART whose `reg` is
/// missing, malformed or not a CPU address: the payload then runs without a console and
/// the host still gets the UART (its own drivers may well know it).
pub fn console(fdt: &fdt::Fdt<'_>) -> Option<ConsoleUart> {
    let (chosen, _) = fdt_tree::find_path(fdt, "/chosen")?;
    let property = ["stdout-path", "linux,stdout-path"]
        .into_iter()
        .find(|name| chosen.property(name).is_some())?;
    let value = fdt_tree::prop_str(chosen, property)?;
    // devicetree specification 3.6: "stdout-path = path[:options]".
    let path = value.split(':').next().unwrap_or(value);
    let resolved = if path.starts_with('/') {
        path
    } else {
        let (aliases, _) = fdt_tree::find_path(fdt, "/aliases")?;
        fdt_tree::prop_str(aliases, path)?
    };
    // An alias must expand to an absolute path; one that names another alias is not allowed
    // (and following it could loop).
    let (node, chain) = fdt_tree::find_path(fdt, resolved)?;
    let kind = uart_kind(node)?;
    let regs = first_reg(node, &chain).ok()??;
    Some(ConsoleUart { kind, regs })
}
