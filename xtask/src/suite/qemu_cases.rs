//! The QEMU tests: each boots a fresh QEMU, watches its console against an expectation and
//! saves the log to `target/qemu-logs/NAME.log`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::report::{Report, lines_of};
use crate::boot::{self, DtbVariant, Host, Plan, Via};
use crate::build::{self, Image};
use crate::console::{self, RunOptions};
use crate::expect::{ConsoleCheck, End, Expectation};
use crate::layout;
use crate::linux::{self, LinuxHost};
use crate::paths;
use crate::qemu::{Board, DEFAULT_CPU, Machine};

/// Steps the boots depend on, reported as checks of their own.
pub const STEP_NAMES: [&str; 2] = ["build_images", "linux_host_assets"];
/// `cargo xtask bench --quick`, run as a check: it must complete and give a well-formed
/// table. No thresholds: performance is reported (docs/performance.md), not tested.
pub const BENCH_CASE: &str = "bench_quick_runs";

const DEMO_TIMEOUT: Duration = Duration::from_secs(60);
/// CPUs of every case but the many-CPU one.
const DEFAULT_SMP: u32 = 4;
/// CPUs of `many_cpus_case`: a server-sized count the payload sizes its per-CPU state for
/// at boot (the old fixed cap was 8). 64 boots in about 12 s under TCG on the 2-core
/// development machine under load; 128 takes longer than the demo's 10 s per-CPU wait there.
const MANY_CPUS: u32 = 64;
const LINUX_TIMEOUT: Duration = Duration::from_secs(300);
/// The SMP stress takes about a minute under TCG; the rest is margin for a loaded machine.
const STRESS_TIMEOUT: Duration = Duration::from_secs(300);

/// Lines no passing boot may print.
const FORBID: &[&str] = &["[el2] FATAL", "panicked", "demo: FAIL"];
const FORBID_LINUX: &[&str] = &[
    "[el2] FATAL",
    "[el2] error",
    "[el2] ERROR",
    "panicked",
    "Kernel panic",
    "init: HOST-FAIL",
    "init: PVM-FAIL",
    "vmm: FAIL",
];
/// Fatal-stop cases expect the FATAL line, but nothing may panic on the way there.
const FORBID_FATAL: &[&str] = &["panicked"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum HostKind {
    Demo,
    Linux,
    /// A test image of the workspace loaded as the host kernel module.
    Image(Image),
}

/// A check of a whole console log: `Err` says why it failed.
type LogCheck = fn(&str) -> Result<(), String>;

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
    /// A check of the whole log once QEMU has exited, beyond the expectation's lines.
    log_check: Option<LogCheck>,
    /// Bootargs of a test image host (its module node's `bootargs`); for Linux, added to
    /// its default command line.
    bootargs: &'static str,
    /// QEMU resets the machine on a reset request instead of exiting (`-no-reboot` off).
    reboot: bool,
    /// `-M virt,iommu=smmuv3` and the PCI devices (behind the SMMU).
    dma_devices: bool,
    /// QEMU `-cpu`.
    cpu: &'static str,
    /// QEMU `-smp`.
    smp: u32,
    /// QEMU `-M ...,mte=on`.
    mte: bool,
    /// QEMU's machine: `virt` or `xlnx-zcu102` (with its own RAM size, CPUs and DTB).
    board: Board,
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
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        expect: Expectation {
            expect,
            forbid: FORBID.to_vec(),
            end: End::Exit(0),
        },
        log_check: None,
        bootargs: "",
        reboot: false,
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
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        expect: Expectation {
            expect: vec!["[el2] FATAL:", why],
            forbid: FORBID_FATAL.to_vec(),
            end: End::KillWhenAllSeen,
        },
        log_check: None,
        bootargs: "",
        reboot: false,
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
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
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
                "init: el2_pvm loaded, /dev/el2-pvm",
                "vmm: story: 17 passed, 0 failed",
                "init: vmm story exited with status 0",
                "init: read 32 bytes from /dev/hwrng (virtio_rng",
            ],
            forbid: [FORBID_LINUX, &["[el2] smmu: event", "init: insmod"]].concat(),
            end: End::Exit(0),
        },
        log_check: None,
        bootargs: "",
        reboot: false,
    }
}

/// Issue 10 on Debian's Linux: the `el2_pvm` driver and the VMM (crate::pvm). Each step of
/// the story, the guest_memfd selftest behaviours, bad input, SMP sharing churn and SIGKILLed
/// VMMs, each line asserted; the kernel must log no warning (init greps dmesg) and its
/// taint must be exactly what the module (O, E) and the forced-map test (M: arm64's
/// `do_sea` on a user access) add.
fn linux_pvm_case() -> Case {
    let mut case = linux_case("linux_protected_guests_from_user_space", Via::Direct);
    case.bootargs = "el2pvm.tests=1";
    case.expect.expect = vec![
        "CPU: All CPU(s) started at EL1",
        "el2_pvm: payload ABI 2.0",
        "el2_pvm: /dev/el2-pvm ready",
        "init: el2_pvm loaded, /dev/el2-pvm",
        "vmm: ok: protected VM created",
        "guest: hello from a protected guest",
        "vmm: ok: the guest shares its message page",
        "vmm: ok: the guest wrote its secret and message",
        "vmm: ok: the VMM reads the guest's message through its mapping: \"hello from the protected guest\"",
        "vmm: ok: the VMM writes its reply into the shared page and reads it back",
        "vmm: ok: reading the guest's private page: SIGBUS (BUS_ADRERR: the driver refused the fault)",
        "vmm: ok: reading the private page the driver was forced to map (test_force_map_private): SIGBUS (BUS_OBJERR: synchronous external abort from EL2)",
        "vmm: ok: test_force_map_private back to 0",
        "vmm: ok: the guest read the reply and unshares the page",
        "vmm: ok: the guest unshared the page",
        "vmm: ok: reading the page the guest unshared, through the mapping that read it before: SIGBUS (BUS_ADRERR",
        "vmm: ok: the guest found its secret intact",
        "vmm: ok: the guest powers off (PSCI SYSTEM_OFF)",
        "vmm: ok: the VM ended and EL2 gave back every page",
        "vmm: ok: every reclaimed page came back zeroed, none lost: 0 not zeroed, 0 lost",
        "vmm: ok: the driver holds no page of the VM",
        "vmm: ok: Linux's free memory is back where it started",
        "vmm: story: 17 passed, 0 failed",
        "init: vmm story exited with status 0",
        "vmm: ok: mmap(MAP_PRIVATE) of a guest memory fd: EINVAL",
        "vmm: ok: read() of a guest memory fd: EINVAL",
        "vmm: ok: write() to a guest memory fd: EINVAL",
        "vmm: ok: a page past the end of the fd: SIGBUS",
        "vmm: gmem: 18 passed, 0 failed",
        "init: vmm gmem exited with status 0",
        "vmm: ok: RUN of a vCPU another thread is running: EBUSY",
        "vmm: bad-input: 47 passed, 0 failed",
        "init: vmm bad-input exited with status 0",
        "vmm: ok: the guest relinquishes a page: MEM_RELINQUISHED",
        "vmm: ok: the guest got the VMM's MMIO read data",
        "vmm: ok: a store to an IPA with no page and no MMIO registration: MEM_FAULT",
        "vmm: ok: the store landed and the page was zeroed (memory after launch is fresh)",
        "vmm: ok: the guest starts vCPU 1 with PSCI CPU_ON: VCPU_STARTED",
        "vmm: ok: vCPU 1 runs at the guest's entry on its own thread",
        "vmm: ok: vCPU 1 calls CPU_OFF: VCPU_OFF",
        "vmm: exits: 18 passed, 0 failed",
        "init: vmm exits exited with status 0",
        "vmm: ok: VMs sharing and unsharing on every CPU at once",
        "vmm: smp: 6 passed, 0 failed",
        "init: vmm smp exited with status 0",
        "vmm: ok: VMMs killed with SIGKILL at random points: 20 of 20",
        "vmm: ok: EL2 has every VM slot free: 16 VMs created at once",
        "vmm: kill: 6 passed, 0 failed",
        "init: vmm kill exited with status 0",
        // 4096 (O, out-of-tree) + 8192 (E, unsigned) + 16 (M, the forced map's abort).
        "init: kernel taint 12304",
        "init: read 32 bytes from /dev/hwrng (virtio_rng",
    ];
    case
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
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        expect: Expectation {
            expect: vec!["[el2]", " passed, 0 failed"],
            // On the default CPU (`max`) every test applies: none may quietly not run.
            forbid: [FORBID, &[NOT_APPLICABLE]].concat(),
            end: End::Exit(0),
        },
        log_check: None,
        bootargs: "",
        reboot: false,
    }
}

/// What a test host prints for a test that does not apply to the CPU it runs on
/// (`el1_rt::testing::Failure::not_applicable`).
const NOT_APPLICABLE: &str = "ignored (not applicable to this CPU)";

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
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        expect: Expectation {
            expect: vec!["[el2]", "test smp_stress ... ok", " passed, 0 failed"],
            forbid,
            end: End::Exit(0),
        },
        log_check: None,
        bootargs: "",
        reboot: false,
    }
}

/// The DMA-master attacks (tests/dma-host) on the selftest payload. `dtb` decides which
/// half runs: the attacks (default) or the boot option's checks (`UnconfinedDma`, whose
/// log must name the device that disabled protected VMs).
fn dma_case(name: &'static str, dtb: DtbVariant, log_lines: Vec<&'static str>) -> Case {
    let mut forbid = FORBID.to_vec();
    forbid.extend(["dma-host: FAIL", "FAILED"]);
    let mut expect = vec!["[el2]"];
    expect.extend(log_lines);
    expect.push(" passed, 0 failed");
    Case {
        name,
        host: HostKind::Image(Image::DmaHost),
        via: Via::Direct,
        payload: Image::El2Selftest,
        virtualization: true,
        dtb,
        timeout: DEMO_TIMEOUT,
        dma_devices: false,
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        expect: Expectation {
            expect,
            forbid,
            end: End::Exit(0),
        },
        log_check: None,
        bootargs: "",
        reboot: false,
    }
}

/// The conformance suite (tests/conformance/host) in one of its boots: passes only if the
/// host's last line says 0 failed and every case's outcome agrees with the reference
/// model (checked on the log once QEMU has exited, see `run_case`).
fn conformance_case(name: &'static str, dtb: DtbVariant) -> Case {
    let mut forbid = FORBID.to_vec();
    forbid.push("conformance: FAIL");
    Case {
        name,
        host: HostKind::Image(Image::ConformanceHost),
        via: Via::Direct,
        payload: Image::El2,
        virtualization: true,
        dtb,
        timeout: crate::conformance::TIMEOUT,
        dma_devices: false,
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        expect: Expectation {
            expect: vec!["[el2]", "TAP version 14", " passed, 0 failed"],
            forbid,
            end: End::Exit(0),
        },
        log_check: None,
        bootargs: "",
        reboot: false,
    }
}

/// Reserved ranges in the "kept clear" case: more than the 13 the payload's memory plan
/// kept before it held every range discovery accepts.
const MANY_RESERVED_RANGES: usize = 20;
/// One more than `platform::fdt_discovery::MAX_RESERVED_RANGES` (32). If that limit grows,
/// this case boots instead of stopping and fails, loudly.
const TOO_MANY_RESERVED_RANGES: usize = 33;

/// The payload's carve-outs, from its `carve-out: image A..B, pools C..D` line, overlap
/// none of the reserved ranges the case's DTB added.
fn carve_out_avoids_every_reserved_range(log: &str) -> Result<(), String> {
    let line = log
        .lines()
        .find_map(|l| l.split_once("[el2] carve-out: ").map(|(_, rest)| rest))
        .ok_or("the payload printed no carve-out line")?;
    let range = |label: &str| -> Result<(u64, u64), String> {
        let text = line
            .split_once(label)
            .and_then(|(_, rest)| rest.split([',', ' ']).next())
            .ok_or(format!("no `{label}` in the carve-out line: {line}"))?;
        let (start, end) = text
            .split_once("..")
            .ok_or(format!("bad range `{text}` in: {line}"))?;
        let hex = |v: &str| u64::from_str_radix(v.trim_start_matches("0x"), 16);
        match (hex(start), hex(end)) {
            (Ok(s), Ok(e)) => Ok((s, e)),
            _ => Err(format!("bad range `{text}` in: {line}")),
        }
    };
    for carve in [range("image ")?, range("pools ")?] {
        for (base, size) in boot::reserved_ranges(MANY_RESERVED_RANGES) {
            if carve.0 < base + size && base < carve.1 {
                return Err(format!(
                    "EL2's carve-out {:#x}..{:#x} overlaps the reserved range {base:#x}..{:#x}",
                    carve.0,
                    carve.1,
                    base + size
                ));
            }
        }
    }
    Ok(())
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
        cpu: DEFAULT_CPU,
        smp: DEFAULT_SMP,
        mte: false,
        board: Board::Virt,
        log_check: None,
        bootargs: "",
        reboot: false,
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

/// Expects EL2's boot line saying whether guests use FEAT_S2FWB (`guest_sysregs`).
fn with_fwb_line(mut case: Case, fwb: bool) -> Case {
    let line = if fwb {
        "S2FWB true (guests' stage 2 forces Write-Back)"
    } else {
        "S2FWB false (VM_DONATE cleans pages to PoC)"
    };
    case.expect.expect.insert(1, line);
    case
}

/// EL2's boot lines for the branch-predictor hardening and the speculative-AT sequences
/// (`el2/src/spectre.rs`, `platform::branch_hardening`): QEMU's Cortex-A57/A72 (no CSV2,
/// no ECBHB/CLRBHB, and a built-in PSCI without SMCCC 1.1) get Linux's branch loop with
/// k = 8 and, both being speculative-AT cores (errata 1319537/1319367), the erratum
/// sequences; QEMU's Cortex-A76 (r4p1) and Neoverse-N1 get the loop with k = 24 and no AT
/// sequences (1165522 ends at r2p0). `max` (CSV2_3, ECBHB) needs nothing.
fn speculation_lines(cpu: &str) -> &'static [&'static str] {
    match cpu {
        "cortex-a57" | "cortex-a72" => &[
            "[el2] lower-EL entries run the branch loop (k = 8)",
            "[el2] speculative-AT erratum sequences on",
        ],
        "cortex-a76" | "neoverse-n1" => &["[el2] lower-EL entries run the branch loop (k = 24)"],
        _ => &[],
    }
}

/// What EL2 never prints on a CPU that needs no hardening (`max`).
const NO_SPECULATION_LINES: [&str; 2] = [
    "[el2] lower-EL entries run",
    "[el2] speculative-AT erratum sequences on",
];

fn with_speculation_lines(mut case: Case) -> Case {
    let lines = speculation_lines(case.cpu);
    if lines.is_empty() {
        case.expect.forbid.extend(NO_SPECULATION_LINES);
    }
    for (i, line) in lines.iter().enumerate() {
        case.expect.expect.insert(1 + i, line);
    }
    case
}

fn on_cpu(mut case: Case, cpu: &'static str) -> Case {
    case.cpu = cpu;
    // A smaller CPU may lack what some tests check (SVE, SME): they say so and are counted
    // apart; everything else must still pass.
    case.expect.forbid.retain(|line| *line != NOT_APPLICABLE);
    case
}

/// Debian's Linux under the payload on a CPU with MTE2 (`-M virt,mte=on`, `-cpu max`): the
/// host's MTE registers must not trap (HCR_EL2.ATA), and Linux must find and enable MTE.
fn linux_mte_case() -> Case {
    let mut case = linux_case("linux_with_mte_boots_under_the_payload", Via::Direct);
    case.mte = true;
    // Expected lines are matched in order: Linux prints its CPU features after EL2's lines.
    case.expect
        .expect
        .insert(2, "CPU features: detected: Memory Tagging Extension");
    case
}

/// Expects Linux on `-cpu max` to find under the payload what it finds booted bare at EL2
/// (same kernel, same CPU: the bench's no-payload boot logs the same lines): pointer
/// authentication and SVE at the CPU's largest vector length. (Debian's 6.1 reports no SME
/// either way; abi-host's `host_features_in_its_id_registers_work_at_el1` checks SME, FA64
/// and the rest at EL1.)
fn with_max_cpu_features(mut case: Case) -> Case {
    let expect = &mut case.expect.expect;
    // Matched in order: the boot CPU's features print before SMP bring-up, the system-wide
    // ones after it.
    expect.insert(
        2,
        "CPU features: detected: Address authentication (IMP DEF algorithm)",
    );
    let after_smp = expect
        .iter()
        .position(|line| line.starts_with("Brought up"))
        .map_or(expect.len(), |i| i + 1);
    for (i, line) in [
        "CPU features: detected: Generic authentication (IMP DEF algorithm)",
        "CPU features: detected: Scalable Vector Extension",
        "SVE: maximum available vector length 256 bytes per vector",
    ]
    .into_iter()
    .enumerate()
    {
        expect.insert(after_smp + i, line);
    }
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

/// `case` on QEMU's xlnx-zcu102 (four Cortex-A53, GICv2, Cadence UART, RAM at 0, the board
/// DTB of Debian's kernel package): no SMMUv3 or PCI devices there, so no line about them.
fn on_zcu102(case: Case) -> Case {
    let mut case = on_cpu(case, "cortex-a53");
    case.board = Board::Zcu102;
    case.dma_devices = false;
    case.expect
        .expect
        .retain(|line| !line.contains("smmu") && !line.contains("/dev/hwrng"));
    case
}

/// Debian's Linux under the payload on xlnx-zcu102: everything it finds there comes from
/// the board DTB (GICv2, the Cadence console, PSCI, RAM at 0), the board's DMA masters
/// behind its SMMU-500 (which EL2 does not drive) are withheld, and Linux still boots to
/// /init, where the carve-out read and the protected guest's story pass as on virt.
fn linux_on_zcu102_case() -> Case {
    let mut case = on_zcu102(linux_case(
        "linux_boots_under_the_payload_on_zcu102_to_init",
        Via::Direct,
    ));
    case.expect.expect.splice(
        1..1,
        [
            "[el2] RAM bank 0x0..0x80000000 (2048 MiB)",
            "GIC V2 distributor at 0xf9010000",
            "[el2] withheld from the host: /axi/iommu@fd800000 (arm,mmu-500",
        ],
    );
    // Linux's Cadence UART driver found its clock (dtb::ZCU102_QEMU_FIXUP): /init has a
    // console. Matched in order, so just before /init's first line.
    let at = case
        .expect
        .expect
        .iter()
        .position(|l| *l == "init: reached /init")
        .unwrap_or(case.expect.expect.len());
    case.expect
        .expect
        .insert(at, "ff000000.serial: ttyPS0 at MMIO 0xff000000");
    case
}

/// The demo host on 64 CPUs: the payload must take the count from the DTB, size its
/// per-CPU state for it (saying what each CPU costs), and the host must bring up every CPU
/// through the PSCI relay (each has its own stack, guard page and saved state at EL2, and
/// its own GIC redistributor SGI_base frame in the host stage-2).
fn many_cpus_case() -> Case {
    let mut case = demo_case(
        "the_host_brings_up_64_cpus_whose_state_the_payload_sized_from_the_dtb",
        Via::Direct,
        vec![
            "[el2] 64 CPUs in the DTB",
            "[el2] 64 GIC redistributors",
            "[el2] 64 CPUs from the DTB: per-CPU state sized at boot, ",
            " bytes per CPU (stack and guard page 53248, state ",
            "[el2] 64 stack guard pages unmapped, stacks above them mapped",
            "64 CPUs known",
            "demo: all 64 cpus online (the boot cpu and 63 secondaries)",
            "demo: cpu 63 off",
            "demo: PASS",
        ],
    );
    case.smp = MANY_CPUS;
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
        with_speculation_lines(demo_case("boot_direct_demo", Via::Direct, demo_boot())),
        demo_case("boot_uboot_demo", Via::Uboot, demo_boot()),
        many_cpus_case(),
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
            "ramdisk_inside_the_kernels_bss_refused",
            Via::Direct,
            true,
            DtbVariant::RamdiskInKernelBss,
            "overlaps the ramdisk",
        ),
        fatal_case(
            "not_started_at_el2_refused",
            Via::Direct,
            false,
            DtbVariant::WithModules,
            "EL2",
        ),
        Case {
            dtb: DtbVariant::LpisLeftOn,
            ..demo_case(
                "lpis_left_on_by_the_firmware_are_turned_off",
                Via::Uboot,
                vec![
                    "[el2] the firmware left LPIs enabled in the redistributor at 0x80a0000: disabled",
                    "demo: PASS",
                ],
            )
        },
        fatal_case(
            "dtb_with_too_many_reserved_ranges_refused",
            Via::Direct,
            true,
            DtbVariant::WithReservedRanges(TOO_MANY_RESERVED_RANGES),
            "too many reserved memory ranges (max 32)",
        ),
        Case {
            dtb: DtbVariant::WithReservedRanges(MANY_RESERVED_RANGES),
            log_check: Some(carve_out_avoids_every_reserved_range),
            ..demo_case(
                "carve_out_keeps_clear_of_every_reserved_range",
                Via::Direct,
                vec!["demo: PASS"],
            )
        },
        // `-cpu max` has FEAT_S2FWB: guests run with HCR_EL2.FWB and forced Write-Back
        // stage-2 leaves, and VM_DONATE skips its clean to PoC.
        with_fwb_line(
            image_case("abi_host_scenarios", Image::AbiHost, DEMO_TIMEOUT),
            true,
        ),
        // Two boots in one QEMU run: see tests/abi-host/src/reset_test.rs.
        Case {
            bootargs: "reset-test",
            reboot: true,
            expect: Expectation {
                expect: vec![
                    "reset-test: SYSTEM_RESET with a guest secret",
                    "reset-test: second boot",
                    "test guest_data_does_not_survive_a_host_reset ... ok",
                    "1 passed, 0 failed",
                ],
                forbid: FORBID.to_vec(),
                end: End::Exit(0),
            },
            ..image_case(
                "guest_data_does_not_survive_a_host_reset",
                Image::AbiHost,
                DEMO_TIMEOUT,
            )
        },
        smmu_case(),
        stress_case("smp_stress_and_adversarial"),
        dma_case(
            "dma_masters_withheld_from_the_host",
            DtbVariant::WithModules,
            vec![
                "[el2] withheld from the host: /fw-cfg@9020000 (qemu,fw-cfg-mmio",
                "[el2] withheld from the host: /intc@8000000/its@8080000 (arm,gic-v3-its",
                "test host_cannot_dma_zeros_over_the_ownership_record_with_fw_cfg ... ok",
            ],
        ),
        dma_case(
            "dma_masters_handed_to_the_host_by_the_boot_option",
            DtbVariant::UnconfinedDma,
            vec![
                "[el2] protected VMs disabled: unconfined DMA master /fw-cfg@9020000 (qemu,fw-cfg-mmio",
                "test vm_create_is_denied_after_a_boot_with_unconfined_dma ... ok",
            ],
        ),
        // The same story on the second SoC with its own DMA engine (ZDMA, behind the
        // SMMU-500 EL2 does not drive): the attacks abort at the channel's first register,
        // and with the boot option the engine really writes, EL2's image included.
        on_zcu102(dma_case(
            "dma_masters_withheld_from_the_host_on_zcu102",
            DtbVariant::WithModules,
            vec![
                "[el2] withheld from the host: /axi/dma-controller@fd500000 .. /axi/dma-controller@ffaf0000 (16 x xlnx,zynqmp-dma-1.0",
                "test host_cannot_program_the_zynqmp_dma_engine_over_a_guest_private_page ... ok",
                "test host_cannot_program_the_zynqmp_dma_engine_over_the_ownership_record ... ok",
                "test host_cannot_program_the_zynqmp_dma_engine_over_el2_image ... ok",
                "test host_cannot_reach_any_zynqmp_dma_channel ... ok",
                "test host_reads_its_redistributor_through_el2 ... ignored: not applicable: GICv2",
            ],
        )),
        on_zcu102(dma_case(
            "dma_masters_handed_to_the_host_by_the_boot_option_on_zcu102",
            DtbVariant::UnconfinedDma,
            vec![
                "[el2] protected VMs disabled: unconfined DMA master /axi/dma-controller@fd500000 (xlnx,zynqmp-dma-1.0",
                "dma-host: ZDMA channel 0xfd500000 copied 4096 bytes from host page",
                "test boot_option_hands_the_zynqmp_dma_engine_to_the_host ... ok",
                "dma-host: ZDMA channel 0xfd500000 read EL2's image header at",
                "test unconfined_zynqmp_dma_engine_reads_and_writes_el2_image_past_stage_2 ... ok",
                "test vm_create_is_denied_after_a_boot_with_unconfined_dma ... ok",
            ],
        )),
        conformance_case(crate::conformance::SUITE_CASE, DtbVariant::WithModules),
        conformance_case(
            crate::conformance::UNCONFINED_CASE,
            DtbVariant::UnconfinedDma,
        ),
        with_max_cpu_features(linux_case("linux_smp4_el1", Via::Direct)),
        linux_case("linux_via_uboot", Via::Uboot),
        linux_pvm_case(),
    ]
    .into_iter()
    .chain(CPU_MODELS.map(|(name, cpu)| {
        with_speculation_lines(on_cpu(demo_case(name, Via::Direct, demo_boot()), cpu))
    }))
    .chain([
        on_cpu(
            linux_case("linux_runs_on_cortex_a53", Via::Direct),
            "cortex-a53",
        ),
        with_max_cpu_features(linux_mte_case()),
        silent_console_case(),
        abi_host_with_mte_case(),
        // Guests' stage 2 with concatenated roots (40-bit PA): every ABI scenario.
        // No FEAT_S2FWB on the A53: the combined encoding and the clean to PoC.
        with_fwb_line(
            on_cpu(
                image_case(
                    "abi_host_scenarios_on_cortex_a53",
                    Image::AbiHost,
                    DEMO_TIMEOUT,
                ),
                "cortex-a53",
            ),
            false,
        ),
        linux_on_zcu102_case(),
        on_zcu102(Case {
            name: "linux_protected_guests_from_user_space_on_zcu102",
            ..linux_pvm_case()
        }),
        // These two need the bare-metal hosts' GICv2 and Cadence console (el1-rt) and
        // the payload's host timer on GICv2.
        on_zcu102(demo_case(
            "demo_host_runs_on_zcu102",
            Via::Direct,
            demo_boot(),
        )),
        with_fwb_line(
            on_zcu102(image_case(
                "abi_host_scenarios_on_zcu102",
                Image::AbiHost,
                DEMO_TIMEOUT,
            )),
            false,
        ),
        // Every ABI scenario (the world switch above all) with the branch loop on every
        // lower-EL entry and the speculative-AT sequences around every EL1&0 context change.
        // (EL2 logs the CPU features before the hardening: S2FWB first.)
        with_fwb_line(
            with_speculation_lines(on_cpu(
                image_case(
                    "abi_host_scenarios_on_cortex_a72",
                    Image::AbiHost,
                    DEMO_TIMEOUT,
                ),
                "cortex-a72",
            )),
            false,
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
            bootargs: format!("{} {}", linux::default_append(case.board), case.bootargs)
                .trim_end()
                .to_string(),
        },
        (HostKind::Image(image), _) => Host {
            kernel: image.path(),
            initrd: None,
            bootargs: case.bootargs.into(),
        },
        _ => Host {
            kernel: Image::DemoHost.path(),
            initrd: None,
            bootargs: String::new(),
        },
    };
    let plan = Plan {
        machine: Machine {
            board: case.board,
            virtualization: case.virtualization,
            smp: case.smp,
            mem: layout::default_mem(case.board),
            smmu: case.dma_devices,
            devices: match (case.dma_devices, case.host) {
                (false, _) => Vec::new(),
                (true, HostKind::Linux) => vec![linux::RNG_DEVICE.into()],
                (true, _) => vec![EDU_DEVICE.into()],
            },
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
        // QEMU's reset keeps RAM and reloads the images it was given: a second boot.
        Ok(args) if case.reboot => args.into_iter().filter(|a| a != "-no-reboot").collect(),
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
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(log_check) = case.log_check {
            log_check(&text)?;
        }
        let Some(boot) = crate::conformance::boot_of_case(case.name) else {
            return Ok(());
        };
        crate::conformance::check_log(&text, boot)
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
