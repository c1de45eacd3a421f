//! The console lines the bench reads: the bench host's `bench: result|memory` lines, the
//! payload's boot report, the Linux init probe's `bench-vct:` line and pKVM's reservation.
//! Each parser returns `None` for a line that is not its kind and `Err` for one that is
//! but cannot be read, so a changed message is reported instead of silently skipped.

use crate::error::{Error, Result, bail};

/// One `bench: result op=...` line: the measured loop and its NOP twin, raw sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawOp {
    pub op: String,
    pub n: u64,
    pub ticks: u64,
    pub nop_ticks: u64,
    pub el2: u64,
    pub el2_min: u64,
    pub el2_max: u64,
    pub el1: u64,
    pub nop_el1: u64,
}

/// `key=value` pairs after `prefix` on `line`, if it carries `prefix`.
fn pairs<'l>(line: &'l str, prefix: &str) -> Option<Vec<(&'l str, &'l str)>> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    Some(
        rest.split_whitespace()
            .filter_map(|word| word.split_once('='))
            .collect(),
    )
}

fn number(pairs: &[(&str, &str)], key: &str, line: &str) -> Result<u64> {
    match pairs.iter().find(|(k, _)| *k == key) {
        Some((_, v)) => match v.parse() {
            Ok(n) => Ok(n),
            Err(_) => bail!("{key}={v} is not a number in {line:?}"),
        },
        None => bail!("no {key}= in {line:?}"),
    }
}

/// `bench: result op=<op> n= ticks= nop_ticks= el2= el2_min= el2_max= el1= nop_el1=`.
pub fn result(line: &str) -> Option<Result<RawOp>> {
    let pairs = pairs(line, "bench: result ")?;
    let get = |key| number(&pairs, key, line);
    let op = match pairs.iter().find(|(k, _)| *k == "op") {
        Some((_, op)) => op.to_string(),
        None => return Some(Err(Error::msg(format!("no op= in {line:?}")))),
    };
    Some((|| {
        let raw = RawOp {
            op,
            n: get("n")?,
            ticks: get("ticks")?,
            nop_ticks: get("nop_ticks")?,
            el2: get("el2")?,
            el2_min: get("el2_min")?,
            el2_max: get("el2_max")?,
            el1: get("el1")?,
            nop_el1: get("nop_el1")?,
        };
        if raw.n == 0 {
            bail!("n=0 in {line:?}");
        }
        Ok(raw)
    })())
}

/// `bench: memory ram_bytes=<b> carve_out_bytes=<b> entry_ticks=<t>`: RAM and carve-out
/// per the host's DTB, and CNTVCT_EL0 when the payload entered the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostView {
    pub ram_bytes: u64,
    pub carve_out_bytes: u64,
    pub entry_ticks: u64,
}

pub fn host_view(line: &str) -> Option<Result<HostView>> {
    let pairs = pairs(line, "bench: memory ")?;
    let get = |key| number(&pairs, key, line);
    Some((|| {
        Ok(HostView {
            ram_bytes: get("ram_bytes")?,
            carve_out_bytes: get("carve_out_bytes")?,
            entry_ticks: get("entry_ticks")?,
        })
    })())
}

/// The payload's `[el2] carve-out: image A..B, pools C..D (host stage-2 pool X KiB,
/// ownership record Y KiB, EL2 tables Z KiB, heap W KiB)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarveOut {
    /// The static carve-out (image, .bss, stacks), bytes.
    pub image: u64,
    /// The dynamic carve-out (the pools below and alignment), bytes.
    pub pools: u64,
    pub host_stage2_pool_kib: u64,
    pub ownership_kib: u64,
    pub el2_tables_kib: u64,
    pub heap_kib: u64,
}

impl CarveOut {
    /// Everything EL2 takes from RAM.
    pub fn total(&self) -> u64 {
        self.image + self.pools
    }
}

pub fn carve_out(line: &str) -> Option<Result<CarveOut>> {
    let rest = &line[line.find("[el2] carve-out: ")? + "[el2] carve-out: ".len()..];
    Some(
        read_carve_out(rest).ok_or_else(|| {
            Error::msg(format!("cannot read the payload's carve-out line {line:?}"))
        }),
    )
}

fn read_carve_out(rest: &str) -> Option<CarveOut> {
    let image = range_after(rest, "image ")?;
    let pools = range_after(rest, "pools ")?;
    Some(CarveOut {
        image,
        pools,
        host_stage2_pool_kib: number_before(rest, " KiB", "host stage-2 pool ")?,
        ownership_kib: number_before(rest, " KiB", "ownership record ")?,
        el2_tables_kib: number_before(rest, " KiB", "EL2 tables ")?,
        heap_kib: number_before(rest, " KiB", "heap ")?,
    })
}

/// The length of the `0xA..0xB` range that follows `label`.
fn range_after(text: &str, label: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    let range = rest.split([',', ' ']).next()?;
    let (start, end) = range.split_once("..")?;
    hex(end)?.checked_sub(hex(start)?)
}

fn hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim().strip_prefix("0x")?, 16).ok()
}

/// The decimal number between `label` and the next `unit`.
fn number_before(text: &str, unit: &str, label: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    rest[..rest.find(unit)?].trim().parse().ok()
}

/// The payload's `[el2] host stage-2: ... as G x 1 GiB, M x 2 MiB, K x 4 KiB blocks, T table
/// pages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Blocks {
    pub gib: u64,
    pub mib2: u64,
    pub kib4: u64,
    pub tables: u64,
}

pub fn host_stage2(line: &str) -> Option<Result<Stage2Blocks>> {
    let rest = &line[line.find("[el2] host stage-2: ")?..];
    let read = || {
        let counts = &rest[rest.rfind(" as ")? + 4..];
        Some(Stage2Blocks {
            gib: number_before(counts, " x 1 GiB", "")?,
            mib2: number_before(counts, " x 2 MiB", ", ")?,
            kib4: number_before(&counts[counts.find("2 MiB")?..], " x 4 KiB", ", ")?,
            tables: number_before(counts, " table pages", "blocks, ")?,
        })
    };
    Some(read().ok_or_else(|| {
        Error::msg(format!(
            "cannot read the payload's host stage-2 line {line:?}"
        ))
    }))
}

/// `bench-vct: <ticks>`: CNTVCT_EL0 at the first instruction of the bench's Linux `/init`.
pub fn init_ticks(line: &str) -> Option<Result<u64>> {
    let rest = &line[line.find("bench-vct: ")? + "bench-vct: ".len()..];
    Some(
        rest.trim()
            .parse()
            .map_err(|_| Error::msg(format!("bad /init probe line {line:?}"))),
    )
}

/// pKVM's `kvm [1]: Reserved <N> MiB at 0x...` (arch/arm64/kvm/pkvm.c).
pub fn pkvm_reserved_mib(line: &str) -> Option<u64> {
    let rest = &line[line.find("kvm [")?..];
    number_before(rest, " MiB", "Reserved ")
}

/// Every `vmm: bench: <key> <value>` line (vmm/src/bench.rs) as (key, value).
pub fn pvm_figures(lines: &[String]) -> Vec<(String, u64)> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("vmm: bench: ")? + "vmm: bench: ".len()..];
            let mut words = rest.split_whitespace();
            let key = words.next()?;
            let value = words.next()?.parse().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmm_bench_lines_are_key_value_pairs() {
        let lines = [
            "vmm: bench: vcpu_run_mmio_exit 7123".to_string(),
            "vmm: bench: done".to_string(),
            "guest: vmm: bench: mem_share_1 x".to_string(),
        ];
        assert_eq!(
            pvm_figures(&lines),
            vec![("vcpu_run_mmio_exit".to_string(), 7123)]
        );
    }

    #[test]
    fn result_lines_parse_with_every_field() {
        let line = "bench: result op=features n=20000 ticks=205000 nop_ticks=35000 el2=2720000 \
                    el2_min=136 el2_max=136 el1=560004 nop_el1=560004";
        let raw = result(line).unwrap().unwrap();
        assert_eq!(raw.op, "features");
        assert_eq!((raw.n, raw.ticks, raw.nop_ticks), (20000, 205000, 35000));
        assert_eq!((raw.el2, raw.el2_min, raw.el2_max), (2720000, 136, 136));
        assert_eq!((raw.el1, raw.nop_el1), (560004, 560004));
    }

    #[test]
    fn a_result_line_missing_a_field_is_an_error_and_other_lines_are_skipped() {
        assert!(result("bench: result op=x n=1 ticks=2").unwrap().is_err());
        assert!(result("bench: running at EL1").is_none());
    }

    #[test]
    fn the_payload_carve_out_line_gives_sizes() {
        let line = "[el2] carve-out: image 0x40200000..0x40400000, pools 0x7fc00000..0x80000000 \
                    (host stage-2 pool 2340 KiB, ownership record 512 KiB, EL2 tables 128 KiB, \
                    heap 328 KiB)";
        let c = carve_out(line).unwrap().unwrap();
        assert_eq!((c.image, c.pools), (2 << 20, 4 << 20));
        assert_eq!(c.total(), 6 << 20);
        assert_eq!(
            (
                c.host_stage2_pool_kib,
                c.ownership_kib,
                c.el2_tables_kib,
                c.heap_kib
            ),
            (2340, 512, 128, 328)
        );
    }

    #[test]
    fn the_host_stage2_line_gives_block_counts() {
        let line = "[el2] host stage-2: 48 bits of IPA, VMID 0, RAM minus carve-outs and 10 MMIO \
                    regions as 512 x 1 GiB, 1100 x 2 MiB, 408 x 4 KiB blocks, 9 table pages";
        let b = host_stage2(line).unwrap().unwrap();
        assert_eq!((b.gib, b.mib2, b.kib4, b.tables), (512, 1100, 408, 9));
    }

    #[test]
    fn a_changed_payload_line_is_an_error() {
        assert!(
            host_stage2("[el2] host stage-2: something else")
                .unwrap()
                .is_err()
        );
        assert!(carve_out("[el2] carve-out: nothing").unwrap().is_err());
    }

    #[test]
    fn linux_lines_parse() {
        assert_eq!(
            init_ticks("bench-vct: 57256777").unwrap().unwrap(),
            57256777
        );
        assert_eq!(
            pkvm_reserved_mib("[    0.120000] kvm [1]: Reserved 10 MiB at 0x7f600000"),
            Some(10)
        );
        assert_eq!(pkvm_reserved_mib("Memory: Reserved 5 MiB"), None);
        assert_eq!(
            host_view("bench: memory ram_bytes=1073741824 carve_out_bytes=6291456 entry_ticks=99")
                .unwrap()
                .unwrap(),
            HostView {
                ram_bytes: 1 << 30,
                carve_out_bytes: 6 << 20,
                entry_ticks: 99
            }
        );
    }
}
