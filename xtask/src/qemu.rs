//! The QEMU machine xtask boots and its command line.

use std::path::Path;
use std::process::Command;

use crate::cmd;
use crate::layout::MemSize;

pub const QEMU: &str = "qemu-system-aarch64";
/// `pauth-impdef=on`: the default QARMA pointer authentication makes Linux 3-5x slower
/// under TCG.
pub const DEFAULT_CPU: &str = "max,pauth-impdef=on";

/// QEMU's machine model (`--machine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Board {
    /// QEMU `virt`: GICv3, PL011, RAM at 0x4000_0000, any `-cpu`, an SMMUv3 on request;
    /// QEMU writes the DTB from its options.
    #[default]
    Virt,
    /// QEMU `xlnx-zcu102` (Xilinx ZynqMP): four Cortex-A53 (40-bit PA), GIC-400 (GICv2),
    /// Cadence UART, RAM at 0. The DTB is the board's own, as Debian's kernel package ships
    /// it (`zynqmp-zcu102-rev1.0.dtb`); QEMU replaces its `/memory` and `/psci`.
    Zcu102,
}

impl Board {
    /// `-M` without options.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Zcu102 => "xlnx-zcu102",
        }
    }

    /// The name `--machine` takes.
    pub fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Zcu102 => "zcu102",
        }
    }

    /// The CPUs the board has, if it is fixed: xlnx-zcu102's APU is four Cortex-A53. QEMU
    /// takes any `-smp` there (5 and 6 add the RPU's Cortex-R5s, fewer leaves CPUs that its
    /// DTB lists missing) and ignores `-cpu`, so xtask passes neither.
    pub fn fixed_cpus(self) -> Option<(u32, &'static str)> {
        match self {
            Board::Virt => None,
            Board::Zcu102 => Some((4, "cortex-a53")),
        }
    }
}

/// The emulated board: everything that shapes QEMU's own DTB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// `virt` or `xlnx-zcu102`.
    pub board: Board,
    /// Start CPUs at EL2 (`virtualization=on`); off boots the image at EL1.
    pub virtualization: bool,
    pub smp: u32,
    pub mem: MemSize,
    /// Put the PCIe root complex behind an SMMUv3 (`iommu=smmuv3`), which EL2 then owns.
    pub smmu: bool,
    /// Extra `-device` values (PCI devices; they do not change QEMU's DTB).
    pub devices: Vec<String>,
    /// `-cpu` (a model and its options, e.g. `cortex-a53`).
    pub cpu: String,
    /// `mte=on`: tag memory and MTE for the CPU (needs a CPU model with MTE, like `max`).
    pub mte: bool,
}

impl Machine {
    /// Options that decide the hardware, hence QEMU's DTB: `-M`, `-cpu`, `-smp`, `-m`, and
    /// no network card (the default one needs an option ROM that a
    /// `--no-install-recommends` QEMU does not have).
    pub fn args(&self) -> Vec<String> {
        let virt = if self.virtualization { "on" } else { "off" };
        if self.board == Board::Zcu102 {
            // No -cpu or -smp: the board's CPUs are fixed (Board::fixed_cpus). Its GEMs
            // get no network backend, its DisplayPort no audio backend (QEMU would try ALSA
            // and warn). SMMU, MTE and PCI devices are virt's (refused before this).
            return vec![
                "-M".into(),
                format!("xlnx-zcu102,virtualization={virt}"),
                "-m".into(),
                self.mem.qemu_arg(),
                "-nic".into(),
                "none".into(),
                "-audiodev".into(),
                "none,id=none".into(),
            ];
        }
        let iommu = if self.smmu { ",iommu=smmuv3" } else { "" };
        let mte = if self.mte { ",mte=on" } else { "" };
        let mut args: Vec<String> = vec![
            "-M".into(),
            format!("virt,virtualization={virt},gic-version=3{iommu}{mte}"),
            "-cpu".into(),
            self.cpu.clone(),
            "-smp".into(),
            self.smp.to_string(),
            "-m".into(),
            self.mem.qemu_arg(),
            "-nic".into(),
            "none".into(),
        ];
        for device in &self.devices {
            args.extend(["-device".into(), device.clone()]);
        }
        args
    }

    /// A full QEMU command line: the machine, a serial console on stdio, semihosting (the
    /// demo reports its exit status through it), no reboot (a guest reset ends QEMU), then
    /// `boot_args`.
    pub fn command(&self, boot_args: &[String]) -> Vec<String> {
        let mut args = self.args();
        args.extend(["-nographic", "-semihosting", "-no-reboot"].map(String::from));
        if self.board == Board::Zcu102 {
            // Two UARTs: the console (uart0, ttyPS0, the DTB's serial0) on stdio with the
            // monitor, the second one nowhere (-nographic alone would give it stdio too).
            args.extend(["-serial", "mon:stdio", "-serial", "null"].map(String::from));
        }
        args.extend_from_slice(boot_args);
        args
    }
}

/// `-device loader` that copies a file verbatim to a guest-physical address at reset.
pub fn loader_args(file: &Path, addr: u64) -> Vec<String> {
    vec![
        "-device".into(),
        format!("loader,file={},addr={addr:#x},force-raw=on", file.display()),
    ]
}

/// The QEMU command for `args`, and the line to print so people can reproduce it.
pub fn command(args: &[String]) -> Command {
    let mut c = Command::new(QEMU);
    c.args(args);
    c
}

pub fn display(args: &[String]) -> String {
    cmd::display(&command(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::GIB;

    #[test]
    fn machine_args_are_the_project_convention() {
        let m = Machine {
            board: Board::Virt,
            virtualization: true,
            smp: 4,
            mem: MemSize::from_bytes(GIB),
            smmu: false,
            devices: Vec::new(),
            cpu: DEFAULT_CPU.into(),
            mte: false,
        };
        assert_eq!(
            m.command(&[]).join(" "),
            "-M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on -smp 4 -m 1G \
             -nic none -nographic -semihosting -no-reboot"
        );
    }

    #[test]
    fn cpu_model_and_mte_reach_the_command_line() {
        let m = Machine {
            board: Board::Virt,
            virtualization: true,
            smp: 2,
            mem: MemSize::from_bytes(GIB),
            cpu: "cortex-a53".into(),
            mte: true,
            smmu: false,
            devices: Vec::new(),
        };
        assert_eq!(
            m.args()[..4].join(" "),
            "-M virt,virtualization=on,gic-version=3,mte=on -cpu cortex-a53"
        );
    }

    #[test]
    fn zcu102_has_its_own_machine_fixed_cpus_and_two_serials() {
        let m = Machine {
            board: Board::Zcu102,
            virtualization: true,
            smp: 4,
            mem: MemSize::from_bytes(2 * GIB),
            smmu: false,
            devices: Vec::new(),
            cpu: "cortex-a53".into(),
            mte: false,
        };
        assert_eq!(
            m.command(&[]).join(" "),
            "-M xlnx-zcu102,virtualization=on -m 2G -nic none -audiodev none,id=none \
             -nographic -semihosting -no-reboot -serial mon:stdio -serial null"
        );
        let off = Machine {
            virtualization: false,
            ..m
        };
        assert_eq!(off.args()[1], "xlnx-zcu102,virtualization=off");
    }

    #[test]
    fn loader_places_the_file_raw_at_the_address() {
        assert_eq!(
            loader_args(Path::new("/x/demo.bin"), 0x5000_0000)[1],
            "loader,file=/x/demo.bin,addr=0x50000000,force-raw=on"
        );
    }
}
