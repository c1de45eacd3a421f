//! The report as Markdown: the tables `cargo xtask bench` prints, writes to
//! `target/bench.md` and docs/performance.md quotes.

use std::fmt::Write as _;

use super::boots::LinuxEl2;
use super::ops::{self, Kind};
use super::report::{Report, gib, mib};

/// A count with thousands separators; one decimal when it is not whole.
pub fn count(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    let whole = rounded.trunc().abs() as u64;
    let mut digits = whole.to_string();
    let mut grouped = String::new();
    while digits.len() > 3 {
        let tail = digits.split_off(digits.len() - 3);
        grouped = format!(",{tail}{grouped}");
    }
    grouped = format!("{digits}{grouped}");
    let sign = if rounded < 0.0 { "-" } else { "" };
    let fraction = rounded.fract().abs();
    if fraction < 0.05 {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{}", (fraction * 10.0).round() as u64)
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`{}` ({}; {}; `-icount shift=0,sleep=off`, `-smp 1`)\n",
        report.command,
        if report.quick {
            "quick run: few calls, no memory sizes, no Linux"
        } else {
            "full run"
        },
        report.qemu
    );
    operations(&mut out, report);
    targets(&mut out, report);
    memory(&mut out, report);
    linux(&mut out, report);
    pvm(&mut out, report);
    smmu(&mut out, report);
    out
}

/// What keeping the SMMU's DMA table in step adds to the calls that change host access.
fn smmu(out: &mut String, report: &Report) {
    let Some(rows) = &report.smmu else {
        return;
    };
    let _ = writeln!(
        out,
        "\n### With an SMMUv3 (`iommu=smmuv3`), EL2 instructions per call\n"
    );
    let _ = writeln!(out, "| Operation | without | with SMMU | added |");
    let _ = writeln!(out, "|---|--:|--:|--:|");
    for row in rows {
        let label = ops::spec(row.key).map(|s| s.label).unwrap_or(row.key);
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {:+.0} ({:+.0} %) |",
            count(row.without),
            count(row.with),
            row.with - row.without,
            (row.with - row.without) * 100.0 / row.without
        );
    }
}

fn operations(out: &mut String, report: &Report) {
    let _ = writeln!(out, "### Instructions per operation\n");
    let _ = writeln!(
        out,
        "| Operation | Calls | EL2 / op | EL2 min–max | EL1 / op | hvc → return (virtual counter) | EL2 above floor |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|");
    for figures in &report.ops {
        let Some(spec) = ops::spec(figures.key) else {
            continue;
        };
        let mut el2 = count(figures.own_el2());
        if let Some(per_page) = figures.per_page() {
            let _ = write!(el2, " ({} / page)", count(per_page));
        }
        if spec.kind == Kind::GuestCall {
            let _ = write!(el2, " (run {})", count(figures.el2));
        }
        let above = figures
            .above_floor
            .map(|a| format!("+{}", count(a)))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}–{} | {} | {} | {} |",
            spec.label,
            figures.calls,
            el2,
            count(figures.el2_min as f64),
            count(figures.el2_max as f64),
            count(figures.el1),
            count(figures.hvc_to_return),
            above
        );
    }
    let _ = writeln!(out);
}

fn targets(out: &mut String, report: &Report) {
    let checks = report.checks();
    let met = checks.iter().filter(|c| c.met).count();
    let _ = writeln!(out, "### Targets ({met} of {} met)\n", checks.len());
    let _ = writeln!(out, "| Target | Limit | Measured | Met |");
    let _ = writeln!(out, "|---|---|--:|---|");
    for check in &checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            check.what,
            check.limit,
            check.measured,
            if check.met { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(out);
}

fn memory(out: &mut String, report: &Report) {
    let _ = writeln!(out, "### EL2 memory\n");
    let _ = writeln!(
        out,
        "| RAM | EL2 reserved | image | pools | host stage-2 pool | ownership record (bytes / 4 KiB page) | EL2 tables | heap | host stage-2 table pages at boot | host stage-2 blocks 1 GiB / 2 MiB / 4 KiB | reset to host entry |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in &report.memory {
        let c = &row.carve_out;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} KiB | {} KiB ({:.2}) | {} KiB | {} KiB | {} | {} / {} / {} | {:.2} ms |",
            gib(row.ram),
            mib(c.total()),
            mib(c.image),
            mib(c.pools),
            c.host_stage2_pool_kib,
            c.ownership_kib,
            row.record_bytes_per_page(),
            c.el2_tables_kib,
            c.heap_kib,
            row.stage2.tables,
            row.stage2.gib,
            row.stage2.mib2,
            row.stage2.kib4,
            row.boot_ms()
        );
    }
    let _ = writeln!(out);
}

fn linux(out: &mut String, report: &Report) {
    let Some(linux) = &report.linux else {
        return;
    };
    let _ = writeln!(
        out,
        "### Linux to `/init` ({}, 1 GiB)\n",
        linux.kernel_package
    );
    let _ = writeln!(
        out,
        "| EL2 | virtual time to /init | CNTVCT ticks | vs no EL2 | EL2 reserved (1 GiB) |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|");
    for boot in &linux.boots {
        let name = match boot.el2 {
            LinuxEl2::None => "none (`virtualization=off`)",
            LinuxEl2::Payload => "the payload",
            LinuxEl2::Pkvm => "pKVM (`kvm-arm.mode=protected`)",
        };
        let overhead = match boot.el2 {
            LinuxEl2::None => "–".to_string(),
            el2 => format!("{:+.2} %", linux.overhead_percent(el2).unwrap_or(f64::NAN)),
        };
        let reserved = match (boot.el2, boot.reserved) {
            (LinuxEl2::Pkvm, Some(r)) => {
                format!("{} (4 GiB: {})", mib(r), mib(linux.pkvm_reserved_4g))
            }
            (_, Some(r)) => mib(r),
            (_, None) => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {name} | {:.2} ms | {} | {overhead} | {reserved} |",
            boot.ms(),
            count(boot.ticks as f64)
        );
    }
    let _ = writeln!(out);
    let (Some(extra), Some(base), Some(row)) = (
        linux.boot(LinuxEl2::Payload),
        linux.boot(LinuxEl2::None),
        report.memory_at(1),
    ) else {
        return;
    };
    let difference = extra.ms() - base.ms();
    let linux_itself = difference - row.boot_ms();
    let _ = writeln!(
        out,
        "Of the payload's {difference:+.2} ms, its own boot to the host's entry takes {:.2} ms \
         (bench host at 1 GiB, reset to entry); Linux itself, from its entry to /init, takes \
         {:.2} ms {} than without EL2 (it runs from 0x50000000 with the payload's DTB and \
         takes host stage-2 faults).\n",
        row.boot_ms(),
        linux_itself.abs(),
        if linux_itself < 0.0 { "less" } else { "more" }
    );
}

/// The figures of `vmm bench` (vmm/src/bench.rs), in table order, with their labels.
pub const PVM_ROWS: [(&str, &str); 8] = [
    (
        "vcpu_run_mmio_exit",
        "EL2_PVM_RUN round trip (guest exits at once: MMIO)",
    ),
    ("mem_share_1", "RUN to the guest's MEM_SHARE, 1 page"),
    ("mem_unshare_1", "RUN to the guest's MEM_UNSHARE, 1 page"),
    ("mem_share_512", "RUN to the guest's MEM_SHARE, 512 pages"),
    (
        "mem_unshare_512",
        "RUN to the guest's MEM_UNSHARE, 512 pages (mapped: zapped)",
    ),
    (
        "read_shared_first_touch_ns_per_page",
        "memcpy out of shared guest memory, first touch, per 4 KiB",
    ),
    (
        "read_shared_mapped_ns_per_page",
        "memcpy out of shared guest memory, mapped, per 4 KiB",
    ),
    (
        "memcpy_ordinary_ns_per_page",
        "memcpy out of ordinary memory, per 4 KiB",
    ),
];

fn pvm(out: &mut String, report: &Report) {
    let Some(linux) = &report.linux else {
        return;
    };
    let _ = writeln!(
        out,
        "### Protected guests from Linux user space (el2_pvm driver, `vmm bench`)\n"
    );
    let _ = writeln!(
        out,
        "| Operation | instructions (ns) | the same call from the bench host | added by the syscall, the driver and Linux |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|");
    for (key, label) in PVM_ROWS {
        let Some(value) = linux.pvm(key) else {
            continue;
        };
        let bare = report
            .ops
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.hvc_to_return);
        let (bare_text, added) = match bare {
            Some(b) => (count(b), count(value as f64 - b)),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {bare_text} | {added} |",
            count(value as f64)
        );
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_and_keep_one_decimal_when_needed() {
        assert_eq!(count(8.0), "8");
        assert_eq!(count(943248.0), "943,248");
        assert_eq!(count(509.17), "509.2");
        assert_eq!(count(1_000_000.0), "1,000,000");
        assert_eq!(count(-3.0), "-3");
        assert_eq!(count(0.96), "1");
    }
}
