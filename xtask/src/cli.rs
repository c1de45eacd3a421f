//! The command line: `cargo xtask build | run | test | bench | conformance | mutants`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::boot::Via;
use crate::layout::MemSize;
use crate::qemu::Board;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, boot and test the EL2 payload under QEMU",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Build the payload and every test image into target/images/*.bin.
    ///
    /// Each image is a release build of one workspace package, converted with objcopy to a
    /// raw binary that QEMU's -kernel, U-Boot's booti or the payload (as the host module)
    /// loads:
    ///
    ///   el2.bin               the EL2 payload (el2, aarch64-unknown-none-softfloat); checked
    ///                         to be an arm64 Image. Use this one on a board (docs/booting.md).
    ///   el2-selftest.bin      the payload with --features selftest (test-only debug calls)
    ///   test-guest.bin        the protected guest, embedded in the test hosts below
    ///   demo-host.bin         the demo host of `cargo xtask run`
    ///   abi-host.bin          ABI scenarios          stress-host.bin   SMP stress
    ///   bench-host.bin        `cargo xtask bench`    conformance-host.bin  conformance suite
    ///   dma-host.bin          DMA-master attacks     smmu-host.bin     DMA behind the SMMUv3
    ///
    /// The host images are aarch64-unknown-none and linked at their load address. An image
    /// whose contents did not change is not rewritten, so nothing that embeds it rebuilds.
    /// Debian's Linux host is not built here: `cargo xtask run --host linux` fetches it.
    #[command(verbatim_doc_comment)]
    Build,
    /// Build, then boot QEMU with the payload and a host; exits with QEMU's status.
    Run(RunArgs),
    /// Lints, host unit tests and the QEMU boot tests; last line "N passed, N failed".
    Test(TestArgs),
    /// Instructions per hypercall, EL2 memory and Linux boot time under QEMU -icount
    /// shift=0; writes target/bench.json and target/bench.md.
    Bench(BenchArgs),
    /// The conformance suite of docs/abi.md on QEMU, checked case by case against the
    /// reference model; last line "N passed, N failed".
    Conformance,
    /// Mutation testing (cargo-mutants) of hvc-abi, stage2 and platform; slow, not in CI.
    /// Exit status: cargo-mutants' worst (0 all caught, 2 survivors). See docs/testing.md.
    Mutants(MutantsArgs),
}

/// The most CPUs the payload accepts in a DTB (a sanity bound: its per-CPU state is sized
/// from the DTB's count at boot).
pub const PAYLOAD_MAX_CPUS: i64 = platform::fdt_discovery::MAX_CPUS as i64;
/// The most CPUs QEMU 7.2's `virt` takes with GICv3 (its high redistributor region holds
/// 512; QEMU says "The max CPUs supported by machine 'virt-7.2' is 512" beyond that).
pub const QEMU_VIRT_MAX_CPUS: i64 = 512;
/// The most CPUs the test images (tests/el1-rt) bring up.
pub const TEST_HOST_MAX_CPUS: i64 = el1_rt_max_cpus();
/// What `--smp` accepts: the smallest of the three, so every value it takes boots.
pub const SMP_MAX: i64 = min(
    min(PAYLOAD_MAX_CPUS, QEMU_VIRT_MAX_CPUS),
    TEST_HOST_MAX_CPUS,
);

const fn min(a: i64, b: i64) -> i64 {
    if a < b { a } else { b }
}

/// tests/el1-rt's `MAX_CPUS` (a no_std crate built for aarch64 only: its value is checked
/// against the source by a unit test below rather than imported).
const fn el1_rt_max_cpus() -> i64 {
    512
}
/// `--timeout`'s default: Debian's Linux reaches /init in about a minute on 4 TCG CPUs; the
/// demo ends in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostKind {
    /// tests/demo-host (target/images/demo-host.bin).
    Demo,
    /// Debian's arm64 kernel with a busybox initramfs (cached under target/linux/).
    Linux,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Which host the payload starts at EL1.
    #[arg(long, value_enum, default_value_t = HostKind::Demo)]
    pub host: HostKind,
    /// QEMU machine: `virt`, or `zcu102` (xlnx-zcu102: four Cortex-A53, GICv2, Cadence
    /// UART, RAM at 0, booted with the board DTB of Debian's kernel package; no --via uboot,
    /// --mte, --cpu or --smp other than its own; --mem 1280M to 2G, default 2G).
    #[arg(long, value_enum, default_value_t = Board::Virt)]
    pub machine: Board,
    /// Boot the payload with QEMU's loader or through U-Boot.
    #[arg(long, value_enum, default_value_t = Via::Direct)]
    pub via: Via,
    /// Host kernel image instead of the default for --host.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Host initramfs instead of the default for --host.
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,
    /// Host kernel command line instead of the default for --host.
    #[arg(long, value_name = "STR")]
    pub append: Option<String>,
    /// Number of CPUs: 1 to 512, the most QEMU virt takes with GICv3 (the payload sizes
    /// its per-CPU state from the DTB, up to 4096 CPUs, about 61 KiB each)
    /// [default: 4; zcu102: 4 only].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=SMP_MAX))]
    pub smp: Option<u32>,
    /// RAM size (QEMU -m syntax: 1G, 2048M, ...), from 256M; the host modules are placed
    /// to fit it (docs/booting.md). The payload sets no upper limit (16G checked); QEMU
    /// refuses what this machine cannot allocate [default: 1G; zcu102: 2G, 1280M to 2G].
    #[arg(long)]
    pub mem: Option<MemSize>,
    /// Boot the host kernel itself, without the payload, on a machine with
    /// virtualization=off (it starts at EL1): Linux as it runs without EL2 firmware.
    #[arg(long)]
    pub no_el2: bool,
    /// Kill QEMU after this many seconds (exit status 124); 0 waits forever. The run also
    /// ends at once, with exit status 1 and the line, at a `[el2] FATAL`, a Linux
    /// "Kernel panic - not syncing", the Linux /init's `HOST-FAIL` or a test host's
    /// `FAIL:` line or failed summary.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
    /// Allow a --kernel that is not an arm64 Image (no "ARM\x64" magic at 0x38): a raw
    /// binary that the payload enters at its first byte, like kvm-unit-tests' .flat files.
    /// The payload itself does not look at the format: it enters the module's first byte.
    #[arg(long)]
    pub raw_kernel: bool,
    /// Hand the DMA masters the payload cannot confine (QEMU virt: fw_cfg, the virtio-mmio
    /// transports, the GIC ITS, PCIe without an IOMMU the payload drives) to the host
    /// anyway: sets `/chosen/el2,unconfined-dma` in the boot DTB. The payload then logs each
    /// device and refuses protected VMs (VM_CREATE returns DENIED).
    #[arg(long)]
    pub unconfined_dma: bool,
    /// QEMU CPU model and options (`-cpu`), e.g. cortex-a53, cortex-a72, a64fx
    /// [default: max,pauth-impdef=on; zcu102: cortex-a53 only].
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
    /// Give the machine MTE (`-M virt,mte=on`; needs a CPU with MTE, such as the default).
    #[arg(long)]
    pub mte: bool,
    /// Test only: leave the module nodes out of the boot DTB, so that the payload stops with
    /// `[el2] FATAL` (the suite's check that such a stop ends `cargo xtask run`).
    #[arg(long, hide = true)]
    pub without_module_nodes: bool,
    /// Boot this image as the payload instead of building target/images/el2.bin.
    #[arg(long, value_name = "PATH")]
    pub payload: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Run only the checks whose names contain one of these words.
    pub filters: Vec<String>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
}

#[derive(Args, Debug)]
pub struct MutantsArgs {
    /// One crate instead of all three (hvc-abi, stage2, platform).
    #[arg(long, short = 'p')]
    pub package: Option<String>,
    /// Only mutants in these files (repeatable; globs as cargo-mutants takes them).
    #[arg(long, short = 'f')]
    pub file: Vec<String>,
    /// Only mutants whose name matches this regex.
    #[arg(long = "re", short = 'F')]
    pub re: Option<String>,
    /// Mutants built and tested at once (2 cores: 1).
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: u32,
    /// Seconds before a mutant's tests count as hung.
    #[arg(long, default_value_t = 60)]
    pub timeout: u32,
    /// Run only the tests whose names contain this (cargo test's filter), e.g. the
    /// mutated module's: `memory_plan` takes stage2 from 8 s to under 1 s per mutant.
    #[arg(long, short = 't')]
    pub tests: Option<String>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Few calls per operation, 1 GiB only, no Linux boots: checks the bench still works.
    #[arg(long)]
    pub quick: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn smp_accepts_exactly_the_cpus_the_payload_and_qemu_virt_support() {
        let parse = |smp: &str| Cli::try_parse_from(["cargo xtask", "run", "--smp", smp]);
        assert!(parse("1").is_ok());
        assert!(parse("9").is_ok());
        assert!(parse("256").is_ok());
        assert!(parse("512").is_ok());
        let err = parse("513").err().unwrap().to_string();
        assert!(err.contains("1..=512"), "{err}");
        assert!(parse("0").is_err());
    }

    /// The test images' per-CPU arrays (tests/el1-rt/src/board.rs) are sized by a constant
    /// of their own; `--smp` must not pass that (the host would refuse the DTB), and the
    /// payload itself has no fixed-size per-CPU array left (el2/src/layout.rs).
    #[test]
    fn smp_stays_within_what_the_test_images_and_the_payload_hold() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let board = std::fs::read_to_string(root.join("tests/el1-rt/src/board.rs")).unwrap();
        assert!(
            board.contains(&format!(
                "pub const MAX_CPUS: usize = {TEST_HOST_MAX_CPUS};"
            )),
            "tests/el1-rt/src/board.rs's MAX_CPUS is not {TEST_HOST_MAX_CPUS}"
        );
        let layout = std::fs::read_to_string(root.join("el2/src/layout.rs")).unwrap();
        assert!(
            !layout.contains("MAX_CPUS"),
            "the payload sizes per-CPU state at boot"
        );
        const { assert!(SMP_MAX <= PAYLOAD_MAX_CPUS && SMP_MAX == QEMU_VIRT_MAX_CPUS) };
    }

    #[test]
    fn the_default_timeout_is_in_the_help() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("[default: 300]"), "{help}");
        // --cpu's default is written out in its help (the option itself is optional, as
        // xlnx-zcu102 takes none): it must be the one the virt machine uses.
        assert!(
            help.contains(&format!("[default: {};", crate::qemu::DEFAULT_CPU)),
            "{help}"
        );
    }

    #[test]
    fn build_help_names_every_image_it_builds() {
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("build")
            .unwrap()
            .render_long_help()
            .to_string();
        for image in crate::build::Image::ALL {
            let file = format!("{}.bin", image.name());
            assert!(
                help.contains(&file),
                "`build --help` does not name {file}:\n{help}"
            );
        }
    }
}
