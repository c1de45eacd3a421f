//! Everything one bench run measured, and the targets of the issue checked against it.

use super::boots::LinuxEl2;
use super::ops::{self, Figures, Target};
use super::parse::{CarveOut, Stage2Blocks};
use super::table::count;
use crate::layout::{GIB, MIB, MemSize};

/// What EL2 takes on one machine size, from the payload's boot log and the host's DTB.
#[derive(Clone, Debug)]
pub struct MemoryRow {
    pub ram: MemSize,
    pub ram_bytes: u64,
    pub carve_out: CarveOut,
    /// The carve-out as `/reserved-memory` tells the host (must equal `carve_out.total()`).
    pub dtb_carve_out: u64,
    pub stage2: Stage2Blocks,
    /// CNTVCT_EL0 when the bench host was entered: QEMU's reset, the payload's whole boot
    /// and el1-rt's cache invalidation of the image (a few thousand instructions).
    pub boot_ticks: u64,
}

impl MemoryRow {
    /// Virtual time from reset to the host's entry, in milliseconds.
    pub fn boot_ms(&self) -> f64 {
        self.boot_ticks as f64 * ops::INSTRUCTIONS_PER_TICK / 1e6
    }

    /// Bytes of ownership record per 4 KiB page of RAM.
    pub fn record_bytes_per_page(&self) -> f64 {
        (self.carve_out.ownership_kib * 1024) as f64 / (self.ram_bytes / 4096) as f64
    }
}

/// One Linux boot: virtual time to `/init` and what its EL2 reserved.
#[derive(Clone, Debug)]
pub struct LinuxBoot {
    pub el2: LinuxEl2,
    /// CNTVCT_EL0 at the first instruction of `/init` (16 instructions, 16 ns per tick).
    pub ticks: u64,
    /// Bytes EL2 took from RAM (payload: its carve-out; pKVM: its "Reserved N MiB").
    pub reserved: Option<u64>,
}

impl LinuxBoot {
    pub fn ms(&self) -> f64 {
        self.ticks as f64 * ops::INSTRUCTIONS_PER_TICK / 1e6
    }
}

#[derive(Clone, Debug)]
pub struct LinuxReport {
    pub kernel_package: String,
    pub boots: Vec<LinuxBoot>,
    /// pKVM's reservation with 4 GiB of RAM (its boot is stopped at that line).
    pub pkvm_reserved_4g: u64,
    /// `vmm bench` (vmm/src/bench.rs) from Linux user space: (key, instructions).
    pub pvm: Vec<(String, u64)>,
}

impl LinuxReport {
    /// A `vmm bench` figure.
    pub fn pvm(&self, key: &str) -> Option<u64> {
        self.pvm.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub fn boot(&self, el2: LinuxEl2) -> Option<&LinuxBoot> {
        self.boots.iter().find(|b| b.el2 == el2)
    }

    /// Extra virtual time of `el2`'s boot over the boot without EL2, in percent.
    pub fn overhead_percent(&self, el2: LinuxEl2) -> Option<f64> {
        let base = self.boot(LinuxEl2::None)?.ticks as f64;
        Some((self.boot(el2)?.ticks as f64 / base - 1.0) * 100.0)
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub quick: bool,
    pub command: String,
    pub qemu: String,
    pub ops: Vec<Figures>,
    pub memory: Vec<MemoryRow>,
    pub linux: Option<LinuxReport>,
    /// Full run only: the same operations with an SMMUv3 EL2 keeps in step.
    pub smmu: Option<Vec<SmmuRow>>,
}

/// One operation's EL2 instructions per call without and with the SMMU.
#[derive(Clone, Debug)]
pub struct SmmuRow {
    pub key: &'static str,
    pub without: f64,
    pub with: f64,
}

/// A target of the issue and how this run did against it.
#[derive(Clone, Debug)]
pub struct Check {
    pub what: String,
    pub limit: String,
    pub measured: String,
    pub met: bool,
}

impl Report {
    pub fn memory_at(&self, gib: u64) -> Option<&MemoryRow> {
        self.memory
            .iter()
            .find(|m| m.ram == MemSize::from_bytes(gib * GIB))
    }

    /// Every target the run can check.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for figures in &self.ops {
            let (Some(spec), Some((target, met))) = (ops::spec(figures.key), figures.meets())
            else {
                continue;
            };
            let (limit, measured) = match target {
                Target::HvcToReturn(limit) => (
                    format!("< {limit} from hvc to return"),
                    count(figures.hvc_to_return),
                ),
                Target::El2(limit) => (
                    format!("< {limit} EL2 instructions"),
                    count(figures.own_el2()),
                ),
                Target::El2PerPage(limit) => (
                    format!("< {limit} EL2 instructions per page"),
                    count(figures.per_page().unwrap_or(f64::NAN)),
                ),
            };
            checks.push(Check {
                what: spec.label.to_string(),
                limit,
                measured,
                met,
            });
        }
        for row in &self.memory {
            let per_page = row.record_bytes_per_page();
            checks.push(Check {
                what: format!("ownership metadata, {} of RAM", gib(row.ram)),
                limit: "<= 2 bytes per 4 KiB page".into(),
                measured: format!("{per_page:.2}"),
                met: per_page <= 2.0,
            });
        }
        if let Some(row) = self.memory_at(1) {
            checks.push(Check {
                what: "host stage-2 table pages at boot, 1 GiB of RAM".into(),
                limit: "<= 4".into(),
                measured: row.stage2.tables.to_string(),
                met: row.stage2.tables <= 4,
            });
        }
        for (gib, pkvm_mib_stated) in [(1, 10), (4, 22)] {
            let Some(row) = self.memory_at(gib) else {
                continue;
            };
            // Half of pKVM as measured in this run if Linux ran, else as the issue states.
            let pkvm = self
                .linux
                .as_ref()
                .and_then(|l| match gib {
                    1 => l.boot(LinuxEl2::Pkvm).and_then(|b| b.reserved),
                    _ => Some(l.pkvm_reserved_4g),
                })
                .unwrap_or(pkvm_mib_stated * MIB);
            let limit = pkvm / 2;
            checks.push(Check {
                what: format!("EL2 reserved memory, {gib} GiB of RAM"),
                limit: format!("<= {} (half of pKVM's {})", mib(limit), mib(pkvm)),
                measured: mib(row.carve_out.total()),
                met: row.carve_out.total() <= limit,
            });
        }
        if let Some(overhead) = self
            .linux
            .as_ref()
            .and_then(|l| l.overhead_percent(LinuxEl2::Payload))
        {
            checks.push(Check {
                what: "Linux to /init under the payload vs no EL2".into(),
                limit: "within 0.8 %".into(),
                measured: format!("{overhead:+.2} %"),
                met: overhead <= 0.8,
            });
        }
        checks
    }
}

/// A machine's RAM as "4 GiB".
pub fn gib(ram: MemSize) -> String {
    let bytes = ram.bytes();
    if bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// Bytes as MiB with up to two decimals.
pub fn mib(bytes: u64) -> String {
    let value = bytes as f64 / MIB as f64;
    if value.fract() == 0.0 {
        format!("{value:.0} MiB")
    } else {
        format!("{value:.2} MiB")
    }
}
