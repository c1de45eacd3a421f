//! `cargo xtask bench [--quick]`: how many instructions the payload executes per
//! hypercall, how much memory it takes, and what it costs a Linux host to boot under it.
//!
//! Every boot runs QEMU with `-icount shift=0,sleep=off` (exact instruction counts, one
//! instruction per nanosecond of virtual time, reproducible; see `boots`) and one CPU:
//! 1. the payload with the bench host (tests/bench-host) at 1 GiB: per operation, EL2 and
//!    EL1 instructions from the PMU and hvc-to-return from the virtual counter;
//! 2. the bench host alone, started at EL2, as its own 8-instruction EL2: the floor;
//! 3. (full run) the payload at 4 and 16 GiB: the carve-out and the host stage-2;
//! 4. (full run) Debian's kernel to its `/init` with no EL2, under the payload and under
//!    its own pKVM, and pKVM's reservation at 4 GiB.
//!
//! The tables go to stdout and `target/bench.md`, the numbers to `target/bench.json`.
//! docs/performance.md explains them. Nothing here judges the numbers except the table's
//! "Met" column: the bench never fails because a target is missed.

mod boots;
mod json;
mod linux_init;
mod ops;
mod parse;
mod report;
mod table;

use std::path::Path;

use boots::{HostMode, LinuxEl2};
use parse::RawOp;
use report::{LinuxBoot, LinuxReport, MemoryRow, Report, SmmuRow};

use crate::build::{self, Image};
use crate::cli::BenchArgs;
use crate::error::{Context, Error, Result, bail};
use crate::layout::{GIB, MIB, MemSize};
use crate::{paths, prereqs};

/// `cargo xtask bench`: builds, measures, prints and writes the report.
pub fn run(args: BenchArgs) -> Result<u8> {
    prereqs::ensure()?;
    build::build(&[Image::El2, Image::BenchHost])?;
    let report = measure(args.quick, &mut |step| eprintln!("xtask: bench: {step}"))?;
    let markdown = table::render(&report);
    print!("{markdown}");
    let json = paths::target().join("bench.json");
    let md = paths::target().join("bench.md");
    std::fs::write(&json, json::render(&report))
        .context(|| format!("writing {}", json.display()))?;
    std::fs::write(&md, &markdown).context(|| format!("writing {}", md.display()))?;
    eprintln!(
        "xtask: bench: wrote {} and {}",
        paths::pretty(&json),
        paths::pretty(&md)
    );
    Ok(0)
}

/// The quick run for `cargo xtask test` (images already built): it must complete and give
/// a well-formed report (see [`check_well_formed`]); the numbers are not judged. Returns a
/// one-line summary.
pub fn quick_check() -> Result<String> {
    let report = measure(true, &mut |_| {})?;
    check_well_formed(&report, &table::render(&report))?;
    let unknown = report.ops.iter().find(|f| f.key == "unknown_hvc");
    Ok(format!(
        "{} operations, unknown HVC {} instructions from hvc to return",
        report.ops.len(),
        unknown
            .map(|f| table::count(f.hvc_to_return))
            .unwrap_or_default()
    ))
}

/// Every operation has a row with positive counts; each call's virtual time equals its
/// EL2 plus EL1 instructions (they count the same instructions two ways; the tolerance is
/// the counter's 16-instruction tick, spread over the calls; for calls that run a guest EL2
/// comes from virtual time, see `ops::enters_guest`); the memory table has the 1 GiB row.
pub fn check_well_formed(report: &Report, table: &str) -> Result<()> {
    for figures in &report.ops {
        let label = ops::spec(figures.key)
            .map(|s| s.label)
            .unwrap_or(figures.key);
        if !table
            .lines()
            .any(|l| l.starts_with(&format!("| {label} |")))
        {
            bail!("the table has no row for {label}");
        }
        let numbers = [figures.el2, figures.el1, figures.hvc_to_return];
        if numbers.iter().any(|n| !n.is_finite() || *n <= 0.0) || figures.el2_min == 0 {
            bail!("{label}: counts that are not positive: {figures:?}");
        }
        let tolerance = 2.0 + 2.0 * ops::INSTRUCTIONS_PER_TICK / figures.calls as f64;
        let both = figures.el2 + figures.el1;
        if (figures.hvc_to_return - both).abs() > tolerance {
            bail!(
                "{label}: virtual time says {:.1} instructions per call, the PMU {both:.1} \
                 (EL2 {:.1} + EL1 {:.1})",
                figures.hvc_to_return,
                figures.el2,
                figures.el1
            );
        }
    }
    if report.memory_at(1).is_none() {
        bail!("no memory row for 1 GiB");
    }
    Ok(())
}

/// Runs every boot of the bench; `progress` hears what starts next.
pub fn measure(quick: bool, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let payload = Image::El2.path();
    let bench_host = Image::BenchHost.path();
    let one_gib = MemSize::from_bytes(GIB);
    let mode = if quick {
        HostMode::Quick
    } else {
        HostMode::Full
    };

    progress("payload and bench host, 1 GiB: every operation");
    let ops_lines = boots::bench_host(&payload, &bench_host, mode, one_gib)?;
    let mut raws = results(&ops_lines)?;
    progress("the floor: bench host under its own minimal EL2");
    raws.extend(results(&boots::floor(&bench_host)?)?);

    let mut memory = vec![memory_row(one_gib, &ops_lines)?];
    let mut linux = None;
    let mut smmu = None;
    if !quick {
        progress("payload and bench host with an SMMUv3 (iommu=smmuv3), 1 GiB");
        let with = results(&boots::bench_host_smmu(&payload, &bench_host, mode)?)?;
        smmu = Some(smmu_rows(&raws, &with)?);
        for gib in [4, 16] {
            let mem = MemSize::from_bytes(gib * GIB);
            progress(&format!("payload at {mem}: memory"));
            let lines = boots::bench_host(&payload, &bench_host, HostMode::Memory, mem)?;
            memory.push(memory_row(mem, &lines)?);
        }
        linux = Some(linux_report(&payload, progress)?);
    }
    Ok(Report {
        quick,
        command: if quick {
            "cargo xtask bench --quick".into()
        } else {
            "cargo xtask bench".into()
        },
        qemu: boots::qemu_version(),
        ops: figures(&raws)?,
        memory,
        linux,
        smmu,
    })
}

/// The operations whose cost the SMMU changes (the host loses or gets back pages), and
/// FEATURES as the control that must not change.
const SMMU_OPS: [&str; 9] = [
    "features",
    "vm_donate_1",
    "vm_donate_512",
    "mem_unshare_1",
    "mem_unshare_512",
    "mem_share_1",
    "mem_share_512",
    "vm_reclaim_1",
    "vm_reclaim_512",
];

fn smmu_rows(without: &[RawOp], with: &[RawOp]) -> Result<Vec<SmmuRow>> {
    // The same per-call EL2 figure as the main table's: for a call that runs a guest the
    // host's PMU stops for the run, so its figure comes from virtual time (ops::figures).
    let per_call = |raws: &[RawOp], key: &str| -> Result<f64> {
        let Some(spec) = ops::spec(key) else {
            bail!("no operation {key} to compare with and without the SMMU");
        };
        match raws.iter().find(|r| r.op == key) {
            Some(r) => Ok(ops::figures(spec, r, None, None).el2),
            None => bail!("the bench host printed no result for {key}"),
        }
    };
    SMMU_OPS
        .iter()
        .map(|&key| {
            Ok(SmmuRow {
                key,
                without: per_call(without, key)?,
                with: per_call(with, key)?,
            })
        })
        .collect()
}

/// Every `bench: result` line of a boot.
fn results(lines: &[String]) -> Result<Vec<RawOp>> {
    lines.iter().filter_map(|l| parse::result(l)).collect()
}

/// The first line `parser` recognises, or an error naming `what`.
fn first<T>(lines: &[String], what: &str, parser: impl Fn(&str) -> Option<Result<T>>) -> Result<T> {
    match lines.iter().find_map(|l| parser(l)) {
        Some(found) => found,
        None => bail!("the boot printed no {what}"),
    }
}

/// Per-call figures of every operation, in table order; each must have been measured once.
fn figures(raws: &[RawOp]) -> Result<Vec<ops::Figures>> {
    for raw in raws {
        if ops::spec(&raw.op).is_none() {
            bail!(
                "the bench host measured an operation xtask does not know: {}",
                raw.op
            );
        }
    }
    let find = |key: &str| -> Result<&RawOp> {
        let mut found = raws.iter().filter(|r| r.op == key);
        match (found.next(), found.next()) {
            (Some(raw), None) => Ok(raw),
            (None, _) => bail!("the bench host printed no result for {key}"),
            (Some(_), Some(_)) => bail!("the bench host printed two results for {key}"),
        }
    };
    let per_call = |key: &str| -> Result<f64> {
        let raw = find(key)?;
        Ok(raw.el2 as f64 / raw.n as f64)
    };
    let floor = per_call("floor")?;
    // The round trip runs a guest: its EL2 figure comes from virtual time (ops::figures).
    let Some(round_trip_spec) = ops::spec(ops::ROUND_TRIP) else {
        bail!(
            "no operation {} to measure guest calls against",
            ops::ROUND_TRIP
        );
    };
    let round_trip = ops::figures(round_trip_spec, find(ops::ROUND_TRIP)?, None, None).el2;
    ops::OPS
        .iter()
        .map(|spec| {
            Ok(ops::figures(
                spec,
                find(spec.key)?,
                Some(round_trip),
                Some(floor),
            ))
        })
        .collect()
}

/// The payload's carve-out and host stage-2 at `ram`, from a boot's console.
fn memory_row(ram: MemSize, lines: &[String]) -> Result<MemoryRow> {
    let view = first(lines, "bench: memory line", parse::host_view)?;
    let carve_out = first(lines, "[el2] carve-out line", parse::carve_out)?;
    let stage2 = first(lines, "[el2] host stage-2 line", parse::host_stage2)?;
    if view.carve_out_bytes != carve_out.total() {
        bail!(
            "at {ram} the payload reports a carve-out of {} bytes but tells the host {} \
             (/reserved-memory)",
            carve_out.total(),
            view.carve_out_bytes
        );
    }
    Ok(MemoryRow {
        ram,
        ram_bytes: view.ram_bytes,
        carve_out,
        dtb_carve_out: view.carve_out_bytes,
        stage2,
        boot_ticks: view.entry_ticks,
    })
}

/// Linux to `/init` with no EL2, under the payload and under pKVM, all at 1 GiB, and
/// pKVM's reservation at 4 GiB.
fn linux_report(payload: &Path, progress: &mut dyn FnMut(&str)) -> Result<LinuxReport> {
    let host = crate::linux::ensure()?;
    let initrd = linux_init::build()?;
    let one_gib = MemSize::from_bytes(GIB);
    let mut boots_done = Vec::new();
    for el2 in [LinuxEl2::None, LinuxEl2::Payload, LinuxEl2::Pkvm] {
        progress(&format!("Linux to /init, EL2: {}", el2.name()));
        let lines = boots::linux(el2, &host.kernel, &initrd, payload, one_gib, None)?;
        let ticks = first(&lines, "bench-vct line from /init", parse::init_ticks)?;
        let reserved = match el2 {
            LinuxEl2::None => None,
            LinuxEl2::Payload => {
                expect_line(&lines, el2, "CPU: All CPU(s) started at EL1")?;
                Some(first(&lines, "[el2] carve-out line", parse::carve_out)?.total())
            }
            LinuxEl2::Pkvm => {
                expect_line(&lines, el2, "Protected nVHE mode initialized successfully")?;
                Some(pkvm_reserved(&lines)?)
            }
        };
        boots_done.push(LinuxBoot {
            el2,
            ticks,
            reserved,
        });
    }
    progress("pKVM at 4 GiB: its reservation");
    let lines = boots::linux(
        LinuxEl2::Pkvm,
        &host.kernel,
        &initrd,
        payload,
        MemSize::from_bytes(4 * GIB),
        Some(|line| parse::pkvm_reserved_mib(line).is_some()),
    )?;
    let pkvm_reserved_4g = pkvm_reserved(&lines)?;
    progress("Linux user space: protected guests through the el2_pvm driver (vmm bench)");
    let lines = boots::linux_pvm(&host.kernel, &host.initrd, payload)?;
    let pvm = parse::pvm_figures(&lines);
    if !lines.iter().any(|l| l.contains("vmm: bench: done")) || pvm.is_empty() {
        bail!(
            "`vmm bench` did not finish (log {})",
            paths::pretty(&boots::log_of("linux-pvm"))
        );
    }
    Ok(LinuxReport {
        kernel_package: host.package,
        boots: boots_done,
        pkvm_reserved_4g,
        pvm,
    })
}

fn pkvm_reserved(lines: &[String]) -> Result<u64> {
    match lines.iter().find_map(|l| parse::pkvm_reserved_mib(l)) {
        Some(mib) => Ok(mib * MIB),
        None => Err(Error::msg(
            "pKVM printed no \"kvm [..]: Reserved N MiB\" line (kvm-arm.mode=protected)",
        )),
    }
}

fn expect_line(lines: &[String], el2: LinuxEl2, marker: &str) -> Result<()> {
    if lines.iter().any(|l| l.contains(marker)) {
        Ok(())
    } else {
        bail!(
            "Linux under EL2 {} never printed {marker:?} (log {})",
            el2.name(),
            paths::pretty(&boots::log_of(&format!("linux-{}-1G", el2.name())))
        )
    }
}
