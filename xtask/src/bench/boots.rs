//! The QEMU boots of the bench. Every one runs with `-icount shift=0,sleep=off` and one
//! CPU, keeps its console in `target/qemu-logs/bench-<name>.log` and hands back the console
//! lines.
//!
//! `-icount`: QEMU's PMU counts INST_RETIRED only with it; at shift 0 one instruction is
//! one nanosecond of virtual time (one CNTVCT tick per 16). `sleep=off`: while the CPU
//! idles, virtual time jumps to the next timer deadline instead of following the host's
//! real time, so a busy build machine cannot add milliseconds to a boot (with the default
//! `sleep=on` the payload's boot varied by up to 4 ms between runs; with `sleep=off` it is
//! the same to the tick).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::boot::{self, DtbVariant, Host, Plan, Via};
use crate::console::{self, Outcome, RunOptions, Verdict, Watcher};
use crate::error::{Result, bail};
use crate::layout::{self, MemSize};
use crate::paths;
use crate::qemu::{self, Machine};

/// Exact instruction counting and reproducible virtual time (see the module comment).
pub const ICOUNT: [&str; 2] = ["-icount", "shift=0,sleep=off"];
/// The bench host boots take about a second; Linux about three (per boot, real time).
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);
const LINUX_TIMEOUT: Duration = Duration::from_secs(240);
/// Lines that end a boot as failed wherever they appear.
const FAILURE_MARKERS: &[&str] = &[
    "bench: FAIL",
    "vmm: FAIL",
    "init: PVM-FAIL",
    "[el2] FATAL",
    "Kernel panic",
    "panicked",
];

/// A line after which the boot has shown what the bench needs.
pub type StopAt = fn(&str) -> bool;

/// Keeps every console line; stops QEMU at the first line `stop_at` accepts, if given.
struct Collect {
    lines: Vec<String>,
    stop_at: Option<StopAt>,
}

impl Watcher for Collect {
    fn on_line(&mut self, line: &str) -> Verdict {
        self.lines.push(line.to_string());
        match self.stop_at {
            Some(stop) if stop(line) => Verdict::Stop,
            _ => Verdict::Continue,
        }
    }
}

/// Runs QEMU with `args` (ICOUNT is added) and returns its console lines. QEMU must exit
/// with status 0, or be stopped at `stop_at`; no line may carry a failure marker.
fn run(
    name: &str,
    mut args: Vec<String>,
    timeout: Duration,
    stop_at: Option<StopAt>,
) -> Result<Vec<String>> {
    args.extend(ICOUNT.map(String::from));
    let log = paths::qemu_logs().join(format!("bench-{name}.log"));
    let mut collect = Collect {
        lines: Vec::new(),
        stop_at,
    };
    let options = RunOptions {
        echo: false,
        log: Some(&log),
        timeout: Some(timeout),
        interactive: false,
    };
    let outcome = console::run(&args, &options, &mut collect)?;
    let lines = collect.lines;
    if let Some(line) = lines
        .iter()
        .find(|l| FAILURE_MARKERS.iter().any(|m| l.contains(m)))
    {
        bail!("{name}: {} (log {})", line.trim(), paths::pretty(&log));
    }
    let ended_well = match outcome {
        Outcome::Exited(status) => status.success(),
        Outcome::Stopped => stop_at.is_some(),
        Outcome::TimedOut(_) | Outcome::Interrupted(_) => false,
    };
    if !ended_well {
        bail!(
            "{name}: QEMU {outcome:?} (log {}); last line: {}",
            paths::pretty(&log),
            lines.last().map(|l| l.trim()).unwrap_or("(none)")
        );
    }
    Ok(lines)
}

/// What the bench host is asked to do (its bootargs, tests/bench-host/src/config.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostMode {
    Full,
    Quick,
    Memory,
}

impl HostMode {
    fn bootargs(self) -> &'static str {
        match self {
            HostMode::Full => "full",
            HostMode::Quick => "quick",
            HostMode::Memory => "memory",
        }
    }
}

fn one_cpu(virtualization: bool, mem: MemSize) -> Machine {
    Machine {
        board: crate::qemu::Board::Virt,
        virtualization,
        smp: 1,
        mem,
        smmu: false,
        devices: Vec::new(),
        cpu: crate::qemu::DEFAULT_CPU.into(),
        mte: false,
    }
}

/// The payload with the bench host on `iommu=smmuv3`: EL2 then keeps the SMMU's DMA table
/// in step with every call (`el2/src/smmu`), which is what this boot measures.
pub fn bench_host_smmu(payload: &Path, bench_host: &Path, mode: HostMode) -> Result<Vec<String>> {
    let name = format!("ops-{}-smmu", mode.bootargs());
    let mut machine = one_cpu(true, MemSize::from_bytes(layout::GIB));
    machine.smmu = true;
    let plan = Plan {
        machine,
        via: Via::Direct,
        payload: Some(payload.to_path_buf()),
        host: Host {
            kernel: bench_host.to_path_buf(),
            initrd: None,
            bootargs: mode.bootargs().into(),
        },
        dtb: DtbVariant::WithModules,
        work_dir: paths::qemu().join(format!("bench-{name}")),
    };
    run(&name, boot::prepare(&plan)?, BENCH_TIMEOUT, None)
}

/// The payload with the bench host as its host kernel module.
pub fn bench_host(
    payload: &Path,
    bench_host: &Path,
    mode: HostMode,
    mem: MemSize,
) -> Result<Vec<String>> {
    let name = match mode {
        HostMode::Memory => format!("memory-{mem}"),
        _ => format!("ops-{}", mode.bootargs()),
    };
    let plan = Plan {
        machine: one_cpu(true, mem),
        via: Via::Direct,
        payload: Some(payload.to_path_buf()),
        host: Host {
            kernel: bench_host.to_path_buf(),
            initrd: None,
            bootargs: mode.bootargs().into(),
        },
        dtb: DtbVariant::WithModules,
        work_dir: paths::qemu().join(format!("bench-{name}")),
    };
    run(&name, boot::prepare(&plan)?, BENCH_TIMEOUT, None)
}

/// The bench host started at EL2 by QEMU itself (no payload): it installs the floor EL2
/// (tests/bench-host/src/floor.rs). QEMU's generic loader places it at its link address and
/// points the CPU there; QEMU leaves its DTB at the base of RAM.
pub fn floor(bench_host: &Path) -> Result<Vec<String>> {
    let mut boot_args = qemu::loader_args(bench_host, layout::HOST_KERNEL_ADDR);
    boot_args.extend([
        "-device".to_string(),
        format!("loader,addr={:#x},cpu-num=0", layout::HOST_KERNEL_ADDR),
    ]);
    let args = one_cpu(true, MemSize::from_bytes(layout::GIB)).command(&boot_args);
    run("floor", args, BENCH_TIMEOUT, None)
}

/// Which EL2 runs under the Linux host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxEl2 {
    /// `virt` without virtualization: the kernel starts at EL1, no hypervisor.
    None,
    /// The payload, with Linux as its host module.
    Payload,
    /// The same kernel started at EL2 with `kvm-arm.mode=protected`: Linux's own pKVM.
    Pkvm,
}

impl LinuxEl2 {
    pub fn name(self) -> &'static str {
        match self {
            LinuxEl2::None => "no-el2",
            LinuxEl2::Payload => "payload",
            LinuxEl2::Pkvm => "pkvm",
        }
    }
}

/// Debian's kernel with the bench's initramfs (whose `/init` prints CNTVCT_EL0 and powers
/// off). `stop_at` ends the boot early (pKVM at 4 GiB only needs its reservation line).
pub fn linux(
    el2: LinuxEl2,
    kernel: &Path,
    initrd: &Path,
    payload: &Path,
    mem: MemSize,
    stop_at: Option<StopAt>,
) -> Result<Vec<String>> {
    let mut bootargs = crate::linux::DEFAULT_APPEND.to_string();
    if el2 == LinuxEl2::Pkvm {
        bootargs.push_str(" kvm-arm.mode=protected");
    }
    let name = format!("linux-{}-{mem}", el2.name());
    let plan = Plan {
        machine: one_cpu(el2 != LinuxEl2::None, mem),
        via: Via::Direct,
        payload: (el2 == LinuxEl2::Payload).then(|| payload.to_path_buf()),
        host: Host {
            kernel: kernel.to_path_buf(),
            initrd: Some(initrd.to_path_buf()),
            bootargs,
        },
        dtb: DtbVariant::WithModules,
        work_dir: paths::qemu().join(format!("bench-{name}")),
    };
    run(&name, boot::prepare(&plan)?, LINUX_TIMEOUT, stop_at)
}

/// Debian's kernel under the payload with the Linux host's own initramfs, whose `/init`
/// loads the el2_pvm driver and runs `vmm bench` (`el2pvm.bench=1`): one CPU, 1 GiB.
pub fn linux_pvm(kernel: &Path, initrd: &Path, payload: &Path) -> Result<Vec<String>> {
    let plan = Plan {
        machine: one_cpu(true, MemSize::from_bytes(crate::layout::GIB)),
        via: Via::Direct,
        payload: Some(payload.to_path_buf()),
        host: Host {
            kernel: kernel.to_path_buf(),
            initrd: Some(initrd.to_path_buf()),
            bootargs: format!("{} el2pvm.bench=1", crate::linux::DEFAULT_APPEND),
        },
        dtb: DtbVariant::WithModules,
        work_dir: paths::qemu().join("bench-linux-pvm"),
    };
    run("linux-pvm", boot::prepare(&plan)?, LINUX_TIMEOUT, None)
}

/// `qemu-system-aarch64 --version`, first line, for the report.
pub fn qemu_version() -> String {
    crate::cmd::output(std::process::Command::new(qemu::QEMU).arg("--version"))
        .ok()
        .and_then(|out| out.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown QEMU".into())
}

/// The log of boot `name`, for messages.
pub fn log_of(name: &str) -> PathBuf {
    paths::qemu_logs().join(format!("bench-{name}.log"))
}
