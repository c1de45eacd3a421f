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
use crate::qemu::{DEFAULT_CPU, Machine};

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
    /// QEMU `-cpu`.
    cpu: &'static str,
    /// QEMU `-M ...,mte=on`.
    mte: bool,
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
        cpu: DEFAULT_CPU,
        mte: false,
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
        cpu: DEFAULT_CPU,
        mte: false,
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
        cpu: DEFAULT_CPU,
        mte: false,
        expect: Expectation {
            // Linux prints "Brought up" (kernel/smp.c) before the arm64 EL check.
            expect: vec![
                "[el2]",
                "Brought up 1 node, 4 CPUs",
                "CPU: All CPU(s) started at EL1",
                "init: reached /init",
                "init: devmem of EL2 carve-out",
                "init: kernel still alive after carve-out access",
                "init: HOST-OK",
            ],
            forbid: FORBID_LINUX.to_vec(),
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
        cpu: DEFAULT_CPU,
        mte: false,
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
        cpu: DEFAULT_CPU,
        mte: false,
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
        cpu: DEFAULT_CPU,
        mte: false,
        expect: Expectation {
            expect: vec!["[el2]", "TAP version 14", " passed, 0 failed"],
            forbid,
            end: End::Exit(0),
        },
    }
}

/// QEMU's 64-bit CPU models with EL2 other than `max`, and the demo boot case for each.
/// `cortex-a35`, `cortex-a53`, `cortex-a76` and `a64fx` have a 40-bit PARange (a stage 2
/// starting at level 1 in two concatenated tables), the others 44 or 48 bits. None needs
/// options beyond `-cpu MODEL` on `virt,virtualization=on,gic-version=3`.
const CPU_MODELS: [(&str, &str); 7] = [
    ("demo_host_runs_on_cortex_a35", "cortex-a35"),
    ("demo_host_runs_on_cortex_a53", "cortex-a53"),
    ("demo_host_runs_on_cortex_a57", "cortex-a57"),
    ("demo_host_runs_on_cortex_a72", "cortex-a72"),
    ("demo_host_runs_on_cortex_a76", "cortex-a76"),
    ("demo_host_runs_on_neoverse_n1", "neoverse-n1"),
    ("demo_host_runs_on_a64fx", "a64fx"),
];

fn on_cpu(mut case: Case, cpu: &'static str) -> Case {
    case.cpu = cpu;
    case
}

/// Debian's Linux under the payload on a CPU with MTE2 (`-M virt,mte=on`, `-cpu max`): the
/// host's MTE registers must not trap (HCR_EL2.ATA), and Linux must find and enable MTE.
fn linux_mte_case() -> Case {
    let mut case = linux_case("linux_with_mte_boots_under_the_payload", Via::Direct);
    case.mte = true;
    case.expect
        .expect
        .insert(1, "CPU features: detected: Memory Tagging Extension");
    case
}

/// `/chosen/stdout-path` names a device the payload has no driver for: the payload must not
/// stop (it used to halt silently in discovery) and must print nothing; the demo host finds
/// the PL011 on its own and runs as usual.
fn silent_console_case() -> Case {
    let mut case = demo_case(
        "undrivable_console_leaves_the_payload_silent_and_the_host_runs",
        Via::Direct,
        vec!["demo: running at EL1", "demo: PASS"],
    );
    case.dtb = DtbVariant::StdoutNotAUart;
    case.expect.forbid.push("[el2]");
    case
}

/// The ABI scenarios on a CPU with MTE2 (`-M virt,mte=on`): the host has MTE, guests must
/// not (`guest_cannot_reach_mte_registers`).
fn abi_host_with_mte_case() -> Case {
    let mut case = image_case("abi_host_scenarios_with_mte", Image::AbiHost, DEMO_TIMEOUT);
    case.mte = true;
    case.expect
        .expect
        .insert(1, "test guest_cannot_reach_mte_registers ... ok");
    case
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
        stress_case("smp_stress_and_adversarial"),
        conformance_case(),
        linux_case("linux_smp4_el1", Via::Direct),
        linux_case("linux_via_uboot", Via::Uboot),
    ]
    .into_iter()
    .chain(CPU_MODELS.map(|(name, cpu)| on_cpu(demo_case(name, Via::Direct, demo_boot()), cpu)))
    .chain([
        on_cpu(
            linux_case("linux_runs_on_cortex_a53", Via::Direct),
            "cortex-a53",
        ),
        linux_mte_case(),
        silent_console_case(),
        abi_host_with_mte_case(),
        // Guests' stage 2 with concatenated roots (40-bit PA): every ABI scenario.
        on_cpu(
            image_case(
                "abi_host_scenarios_on_cortex_a53",
                Image::AbiHost,
                DEMO_TIMEOUT,
            ),
            "cortex-a53",
        ),
    ])
    .collect()
}

pub fn run(report: &mut Report, selected: &dyn Fn(&str) -> bool) {
    let cases: Vec<Case> = cases().into_iter().filter(|c| selected(c.name)).collect();
    let bench = selected(BENCH_CASE);
    // The steps are checks of their own too: `cargo xtask test linux_host_assets` runs it.
    let [build_step, linux_step] = STEP_NAMES.map(selected);
    if cases.is_empty() && !bench && !build_step && !linux_step {
        return;
    }
    let images = build_images(report);
    let wants_linux = linux_step || cases.iter().any(|c| c.host == HostKind::Linux);
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
            cpu: case.cpu.into(),
            mte: case.mte,
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
