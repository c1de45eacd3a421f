//! The QEMU tests: each boots a fresh QEMU, watches its console against an expectation and
//! saves the log to `target/qemu-logs/NAME.log`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::report::{Report, lines_of};
use crate::boot::{self, DtbVariant, Host, Plan, Via};
use crate::build::{self, Image};
use crate::console::{self, RunOptions};
use crate::expect::{ConsoleCheck, End, Expectation};
use crate::layout::{GIB, MemSize};
use crate::linux::{self, LinuxHost};
use crate::paths;
use crate::qemu::Machine;

/// Steps the boots depend on, reported as checks of their own.
pub const STEP_NAMES: [&str; 2] = ["build_images", "linux_host_assets"];
/// `cargo xtask bench --quick`, run as a check: it must complete and give a well-formed
/// table. No thresholds: performance is reported (docs/performance.md), not tested.
pub const BENCH_CASE: &str = "bench_quick_runs";

const DEMO_TIMEOUT: Duration = Duration::from_secs(60);
const LINUX_TIMEOUT: Duration = Duration::from_secs(300);
/// The SMP stress takes about a minute under TCG; the rest is margin for a loaded machine.
const STRESS_TIMEOUT: Duration = Duration::from_secs(300);

/// Lines no passing boot may print.
const FORBID: &[&str] = &["[el2] FATAL", "panicked", "demo: FAIL"];
const FORBID_LINUX: &[&str] = &["[el2] FATAL", "panicked", "Kernel panic", "init: HOST-FAIL"];
/// Fatal-stop cases expect the FATAL line, but nothing may panic on the way there.
const FORBID_FATAL: &[&str] = &["panicked"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Demo,
    Linux,
    /// A test image of the workspace loaded as the host kernel module.
    Image(Image),
}

pub struct Case {
    pub name: &'static str,
    host: HostKind,
    via: Via,
    /// The payload image QEMU boots (the release build, or its selftest build).
    payload: Image,
    /// QEMU starts the CPUs at EL2 (off for the "not started at EL2" case).
    virtualization: bool,
    dtb: DtbVariant,
    timeout: Duration,
    expect: Expectation,
    /// `-M virt,iommu=smmuv3` and the PCI devices (behind the SMMU).
    dma_devices: bool,
}

fn demo_case(name: &'static str, via: Via, expect: Vec<&'static str>) -> Case {
    Case {
        name,
        host: HostKind::Demo,
        via,
        payload: Image::El2,
        virtualization: true,
        dtb: DtbVariant::WithModules,
        timeout: DEMO_TIMEOUT,
        dma_devices: false,
        expect: Expectation {
            expect,
            forbid: FORBID.to_vec(),
            end: End::Exit(0),
        },
    }
}

fn fatal_case(
    name: &'static str,
    via: Via,
    virtualization: bool,
    dtb: DtbVariant,
    why: &'static str,
) -> Case {
    Case {
        name,
        host: HostKind::Demo,
        via,
        payload: Image::El2,
        virtualization,
        dtb,
        timeout: DEMO_TIMEOUT,
        dma_devices: false,
        expect: Expectation {
            expect: vec!["[el2] FATAL:", why],
            forbid: FORBID_FATAL.to_vec(),
            end: End::KillWhenAllSeen,
        },
    }
}

fn linux_case(name: &'static str, via: Via) -> Case {
    Case {
        name,
        host: HostKind::Linux,
        via,
        payload: Image::El2,
        virtualization: true,
        dtb: DtbVariant::WithModules,
        timeout: LINUX_TIMEOUT,
        dma_devices: true,
        expect: Expectation {
            // Linux prints "Brought up" (kernel/smp.c) before the arm64 EL check.
            expect: vec![
                "[el2]",
                "[el2] smmu: on",
                "Brought up 1 node, 4 CPUs",
                "CPU: All CPU(s) started at EL1",
                "init: reached /init",
                "init: devmem of EL2 carve-out",
                "init: kernel still alive after carve-out access",
                "init: HOST-OK",
                "init: read 32 bytes from /dev/hwrng (virtio_rng",
            ],
            forbid: [FORBID_LINUX, &["[el2] smmu: event", "init: insmod"]].concat(),
            end: End::Exit(0),
        },
    }
}

/// A test host image that prints libtest-style lines and ends with `N passed, 0 failed`
/// and exit status 0 when all its tests pass.
fn image_case(name: &'static str, image: Image, timeout: Duration) -> Case {
    Case {
        name,
        host: HostKind::Image(image),
        via: Via::Direct,
        payload: Image::El2,
        virtualization: true,
        dtb: DtbVariant::WithModules,
        timeout,
        dma_devices: false,
        expect: Expectation {
            expect: vec!["[el2]", " passed, 0 failed"],
            forbid: FORBID.to_vec(),
            end: End::Exit(0),
        },
    }
}

/// The SMP stress and the adversarial host cases (tests/stress-host) on the payload's
/// selftest build, which answers DEBUG_CHECK_INVARIANTS. Every EL2 panic stops the payload
/// with `[el2] FATAL: panic: ...`, which FORBID rejects: that is how this suite counts EL2
/// panics, and one fails the case.
fn stress_case(name: &'static str) -> Case {
    let mut forbid = FORBID.to_vec();
    forbid.extend(["stress-host: FAIL", "FAILED"]);
    Case {
        name,
        host: HostKind::Image(Image::StressHost),
        via: Via::Direct,
        payload: Image::El2Selftest,
        virtualization: true,
        dtb: DtbVariant::WithModules,
        timeout: STRESS_TIMEOUT,
        dma_devices: false,
        expect: Expectation {
            expect: vec!["[el2]", "test smp_stress ... ok", " passed, 0 failed"],
            forbid,
            end: End::Exit(0),
        },
    }
}

/// The conformance suite (tests/conformance/host): passes only if the host's last line
/// says 0 failed and every case's outcome agrees with the reference model (checked on
/// the log once QEMU has exited, see `run_case`).
fn conformance_case() -> Case {
    let mut forbid = FORBID.to_vec();
    forbid.push("conformance: FAIL");
    Case {
        name: crate::conformance::SUITE_CASE,
        host: HostKind::Image(Image::ConformanceHost),
        via: Via::Direct,
        payload: Image::El2,
        virtualization: true,
        dtb: DtbVariant::WithModules,
        timeout: crate::conformance::TIMEOUT,
        dma_devices: false,
        expect: Expectation {
            expect: vec!["[el2]", "TAP version 14", " passed, 0 failed"],
            forbid,
            end: End::Exit(0),
        },
    }
}

/// QEMU's edu PCI device: a DMA engine the host programs. Its default 28-bit DMA mask would
/// clamp addresses of this machine's RAM (at 1 GiB and up).
pub const EDU_DEVICE: &str = "edu,dma_mask=0xffffffffffff";

/// The SMMU host (tests/smmu-host) on `iommu=smmuv3` with an edu device: every attack must be
/// refused, and EL2 must log the SMMU's fault events for them.
fn smmu_case() -> Case {
    let mut forbid = FORBID.to_vec();
    forbid.extend(["smmu-host: FAIL", "FAILED"]);
    Case {
        name: "dma_is_confined_by_the_smmu",
        host: HostKind::Image(Image::SmmuHost),
        via: Via::Direct,
        payload: Image::El2,
        virtualization: true,
        dtb: DtbVariant::WithModules,
        timeout: DEMO_TIMEOUT,
        dma_devices: true,
        expect: Expectation {
            expect: vec![
                "[el2] smmu: SMMUv3",
                "test a_device_can_dma_into_and_out_of_a_host_page ... ok",
                "[el2] smmu: event",
                " passed, 0 failed",
            ],
            forbid,
            end: End::Exit(0),
        },
    }
}

/// The QEMU tests, in the order they run.
pub fn cases() -> Vec<Case> {
    let demo_boot = || {
        vec![
            "[el2]",
            "demo: running at EL1",
            "demo: guest shared page",
            "demo: reading the guest's private page aborted",
            "demo: guest unshared the page; host access now aborts",
            "demo: VM destroyed",
            "demo: PASS",
        ]
    };
    vec![
        demo_case("boot_direct_demo", Via::Direct, demo_boot()),
        demo_case("boot_uboot_demo", Via::Uboot, demo_boot()),
        demo_case(
            "carveout_read_aborts_in_demo",
            Via::Direct,
            vec!["demo: carve-out read aborted"],
        ),
        demo_case(
            "unknown_smc_and_hvc_not_supported",
            Via::Direct,
            vec![
                "demo: unknown HVC returned NOT_SUPPORTED",
                "demo: unknown SMC returned NOT_SUPPORTED",
            ],
        ),
        // Through U-Boot: QEMU's own loader re-adds /psci to any -dtb it is given.
        fatal_case(
            "broken_dtb_refused",
            Via::Uboot,
            true,
            DtbVariant::WithoutPsci,
            "PSCI",
        ),
        fatal_case(
            "missing_host_module_refused",
            Via::Direct,
            true,
            DtbVariant::WithoutModules,
            "no host kernel module",
        ),
        fatal_case(
            "not_started_at_el2_refused",
            Via::Direct,
            false,
            DtbVariant::WithModules,
            "EL2",
        ),
        image_case("abi_host_scenarios", Image::AbiHost, DEMO_TIMEOUT),
        smmu_case(),
        stress_case("smp_stress_and_adversarial"),
        conformance_case(),
        linux_case("linux_smp4_el1", Via::Direct),
        linux_case("linux_via_uboot", Via::Uboot),
    ]
}

pub fn run(report: &mut Report, selected: &dyn Fn(&str) -> bool) {
    let cases: Vec<Case> = cases().into_iter().filter(|c| selected(c.name)).collect();
    let bench = selected(BENCH_CASE);
    if cases.is_empty() && !bench {
        return;
    }
    let images = build_images(report);
    let wants_linux = cases.iter().any(|c| c.host == HostKind::Linux);
    let linux_host: Option<LinuxHost> = if wants_linux {
        let mut found = None;
        step(report, "linux_host_assets", || {
            let host = linux::ensure()?;
            let package = host.package.clone();
            found = Some(host);
            Ok(package)
        });
        found
    } else {
        None
    };
    for case in &cases {
        let blocked = match case.host {
            _ if !images => Some("build_images failed"),
            HostKind::Linux if linux_host.is_none() => Some("linux_host_assets failed"),
            _ => None,
        };
        if let Some(why) = blocked {
            report.fail(case.name, &format!("not run: {why}"), &[]);
            continue;
        }
        run_case(report, case, linux_host.as_ref());
    }
    if bench {
        bench_quick_runs(report, images);
    }
}

fn bench_quick_runs(report: &mut Report, images: bool) {
    if !images {
        report.fail(BENCH_CASE, "not run: build_images failed", &[]);
        return;
    }
    step(report, BENCH_CASE, crate::bench::quick_check);
}

/// Builds el2 and demo-host with cargo's output captured (shown only on failure).
fn build_images(report: &mut Report) -> bool {
    let started = Instant::now();
    match build::build_quiet(&Image::ALL) {
        Ok(_) => {
            report.pass(
                "build_images",
                &format!("{:.1} s", started.elapsed().as_secs_f64()),
            );
            true
        }
        Err((reason, output)) => {
            report.fail("build_images", &reason, &output);
            false
        }
    }
}

/// Runs a prerequisite step as a check; true if it succeeded.
fn step(report: &mut Report, name: &str, f: impl FnOnce() -> crate::error::Result<String>) -> bool {
    let started = Instant::now();
    match f() {
        Ok(note) => {
            let time = format!("{:.1} s", started.elapsed().as_secs_f64());
            let note = if note.is_empty() {
                time
            } else {
                format!("{note}, {time}")
            };
            report.pass(name, &note);
            true
        }
        Err(e) => {
            report.fail(name, &e.to_string(), &[]);
            false
        }
    }
}

fn run_case(report: &mut Report, case: &Case, linux_host: Option<&LinuxHost>) {
    let host = match (case.host, linux_host) {
        (HostKind::Linux, Some(l)) => Host {
            kernel: l.kernel.clone(),
            initrd: Some(l.initrd.clone()),
            bootargs: linux::DEFAULT_APPEND.into(),
        },
        (HostKind::Image(image), _) => Host {
            kernel: image.path(),
            initrd: None,
            bootargs: String::new(),
        },
        _ => Host {
            kernel: Image::DemoHost.path(),
            initrd: None,
            bootargs: String::new(),
        },
    };
    let plan = Plan {
        machine: Machine {
            virtualization: case.virtualization,
            smp: 4,
            mem: MemSize::from_bytes(GIB),
            smmu: case.dma_devices,
            devices: match (case.dma_devices, case.host) {
                (false, _) => Vec::new(),
                (true, HostKind::Linux) => vec![linux::RNG_DEVICE.into()],
                (true, _) => vec![EDU_DEVICE.into()],
            },
        },
        via: case.via,
        payload: Some(case.payload.path()),
        host,
        dtb: case.dtb,
        work_dir: paths::qemu().join(case.name),
    };
    let log: PathBuf = paths::qemu_logs().join(format!("{}.log", case.name));
    let started = Instant::now();
    let args = match boot::prepare(&plan) {
        Ok(args) => args,
        Err(e) => {
            report.fail(case.name, &format!("could not prepare the boot: {e}"), &[]);
            return;
        }
    };
    let mut check = ConsoleCheck::new(&case.expect);
    let options = RunOptions {
        echo: false,
        log: Some(&log),
        timeout: Some(case.timeout),
        interactive: false,
    };
    let outcome = match console::run(&args, &options, &mut check) {
        Ok(outcome) => outcome,
        Err(e) => {
            report.fail(case.name, &e.to_string(), &[]);
            return;
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let verdict = check.verdict(&outcome).and_then(|()| {
        if case.name != crate::conformance::SUITE_CASE {
            return Ok(());
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        crate::conformance::check_log(&text)
            .map(drop)
            .map_err(|(reason, _)| reason)
    });
    match verdict {
        Ok(()) => report.pass(case.name, &format!("{elapsed:.1} s")),
        Err(reason) => {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let reason = format!("{reason} [{elapsed:.1} s, log {}]", paths::pretty(&log));
            report.fail(case.name, &reason, &lines_of(&text));
        }
    }
}
