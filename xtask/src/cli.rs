//! The command line: `cargo xtask build | run | test | bench | conformance | mutants`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::boot::Via;
use crate::layout::MemSize;

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
    /// Build el2 and demo-host for aarch64-unknown-none and write target/images/*.bin.
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
    /// Number of CPUs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub smp: u32,
    /// RAM size (QEMU -m syntax: 1G, 2048M, ...).
    #[arg(long, default_value = "1G")]
    pub mem: MemSize,
    /// Boot the host kernel itself, without the payload, on a machine with
    /// virtualization=off (it starts at EL1): Linux as it runs without EL2 firmware.
    #[arg(long)]
    pub no_el2: bool,
    /// Kill QEMU after this many seconds (exit status 124).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Hand the DMA masters the payload cannot confine (QEMU virt: fw_cfg, the virtio-mmio
    /// transports, the GIC ITS, PCIe without an IOMMU the payload drives) to the host
    /// anyway: sets `/chosen/el2,unconfined-dma` in the boot DTB. The payload then logs each
    /// device and refuses protected VMs (VM_CREATE returns DENIED).
    #[arg(long)]
    pub unconfined_dma: bool,
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
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Few calls per operation, 1 GiB only, no Linux boots: checks the bench still works.
    #[arg(long)]
    pub quick: bool,
}
