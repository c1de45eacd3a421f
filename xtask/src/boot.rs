//! One boot, described once and turned into a QEMU command line: which payload, which host,
//! direct or through U-Boot, and which DTB edits. `run` and the QEMU tests both use this.

use std::path::{Path, PathBuf};

use crate::dtb::{self, DtbEdits, Module, ModuleKind};
use crate::error::{Context, Result, bail};
use crate::layout::{self, MemSize, Region};
use crate::qemu::{self, Board, Machine};
use crate::uboot::{self, BootiTarget};

/// How the first image gets control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// QEMU's own loader: `-kernel`, `-dtb`.
    Direct,
    /// U-Boot from `-bios`, with a scripted `bootcmd`.
    Uboot,
}

/// The host OS the payload starts at EL1.
#[derive(Clone, Debug)]
pub struct Host {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub bootargs: String,
}

/// Which DTB the payload sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DtbVariant {
    /// QEMU's DTB with the module nodes.
    #[default]
    WithModules,
    /// QEMU's DTB with the modules loaded but not described.
    WithoutModules,
    /// With the module nodes but without `/psci`. U-Boot only: when QEMU boots `-kernel`
    /// itself it replaces any `/psci` of a `-dtb` with its own.
    WithoutPsci,
    /// With the module nodes and the payload's boot option `/chosen/el2,unconfined-dma`
    /// (hand the DMA masters EL2 cannot confine to the host; protected VMs are refused).
    UnconfinedDma,
    /// With the module nodes, and U-Boot sets GICR_CTLR.EnableLPIs in CPU 0's
    /// redistributor (QEMU virt) before it starts the payload, as a firmware may. U-Boot only.
    LpisLeftOn,
    /// With the module nodes and `n` `/reserved-memory` children ([`reserved_ranges`]).
    WithReservedRanges(usize),
    /// With the module nodes, `/chosen/stdout-path` naming fw-cfg: a console no driver
    /// can drive (the payload must run silently; the test hosts fall back to the PL011).
    StdoutNotAUart,
    /// With the module nodes plus a one-page ramdisk node just after the kernel's file,
    /// inside the memory its Image header's `image_size` claims (.bss): the payload must
    /// refuse it (nothing is loaded there; only the node matters).
    RamdiskInKernelBss,
}

/// `n` reserved ranges for QEMU `virt` with 1 GiB: `n - 1` single pages at the bottom of
/// RAM (below where the payload runs), and last, so that a list that drops the tail drops
/// it, 4 MiB at 0x4040_0000, where the dynamic carve-out goes when it follows the image.
pub fn reserved_ranges(n: usize) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = (0..n.saturating_sub(1) as u64)
        .map(|i| (0x4000_0000 + i * 0x1000, 0x1000))
        .collect();
    if n > 0 {
        ranges.push((0x4040_0000, 0x40_0000));
    }
    ranges
}

/// CPU 0's GICR_CTLR on QEMU virt with GICv3.
const VIRT_GICR0_CTLR: u64 = 0x080a_0000;

/// The `/chosen` property that hands unconfined DMA masters to the host
/// (`platform::fdt_discovery::dma_masters::UNCONFINED_DMA_OPTION`).
pub const UNCONFINED_DMA_OPTION: &str = "el2,unconfined-dma";

impl DtbVariant {
    fn edits(self, modules: &[Module]) -> DtbEdits {
        DtbEdits {
            modules: match self {
                DtbVariant::WithoutModules => Vec::new(),
                DtbVariant::RamdiskInKernelBss => with_ramdisk_after_kernel_file(modules),
                _ => modules.to_vec(),
            },
            delete_root_nodes: match self {
                DtbVariant::WithoutPsci => vec!["psci".into()],
                _ => Vec::new(),
            },
            chosen_flags: match self {
                DtbVariant::UnconfinedDma => vec![UNCONFINED_DMA_OPTION.into()],
                _ => Vec::new(),
            },
            uboot_steps: match self {
                DtbVariant::LpisLeftOn => vec![format!("mw.l {VIRT_GICR0_CTLR:#x} 0x1")],
                _ => Vec::new(),
            },
            reserved: match self {
                DtbVariant::WithReservedRanges(n) => reserved_ranges(n),
                _ => Vec::new(),
            },
            stdout_path: match self {
                DtbVariant::StdoutNotAUart => Some("/fw-cfg@9020000".into()),
                _ => None,
            },
        }
    }
}

/// `modules` plus a one-page ramdisk node at the first page after the kernel's file.
fn with_ramdisk_after_kernel_file(modules: &[Module]) -> Vec<Module> {
    let mut out = modules.to_vec();
    if let Some(kernel) = modules.iter().find(|m| m.kind == ModuleKind::Kernel) {
        out.retain(|m| m.kind != ModuleKind::Ramdisk);
        out.push(Module {
            kind: ModuleKind::Ramdisk,
            addr: (kernel.addr + kernel.size).next_multiple_of(0x1000),
            size: 0x1000,
            bootargs: None,
        });
    }
    out
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub machine: Machine,
    pub via: Via,
    /// The EL2 payload image; `None` boots the host kernel itself (`--no-el2`).
    pub payload: Option<PathBuf>,
    pub host: Host,
    pub dtb: DtbVariant,
    /// Where generated DTBs and flash images go.
    pub work_dir: PathBuf,
}

/// Checks the layout, writes the DTB or U-Boot flash, and returns QEMU's arguments.
pub fn prepare(plan: &Plan) -> Result<Vec<String>> {
    for (file, what) in [
        (Some(&plan.host.kernel), "host kernel"),
        (plan.host.initrd.as_ref(), "host initrd"),
        (plan.payload.as_ref(), "payload"),
    ] {
        if let Some(file) = file {
            crate::image_check::check_file(file, what)?;
        }
    }
    // A fresh folder: nothing from an earlier boot (a stale flash or DTB) can leak in.
    if plan.work_dir.exists() {
        std::fs::remove_dir_all(&plan.work_dir)
            .context(|| format!("removing {}", plan.work_dir.display()))?;
    }
    std::fs::create_dir_all(&plan.work_dir)
        .context(|| format!("creating {}", plan.work_dir.display()))?;
    check_board(plan)?;
    let boot_args = match &plan.payload {
        Some(payload) => with_payload(plan, payload)?,
        None => without_payload(plan)?,
    };
    Ok(plan.machine.command(&boot_args))
}

/// What only QEMU `virt` has: U-Boot (Debian's build is `qemu_arm64`, for virt), the SMMUv3
/// and PCI devices, MTE.
fn check_board(plan: &Plan) -> Result<()> {
    let board = plan.machine.board;
    if board == Board::Virt {
        return Ok(());
    }
    let name = board.name();
    if plan.via == Via::Uboot {
        bail!(
            "--via uboot works only on --machine virt: Debian's U-Boot (u-boot-qemu) is built \
             for QEMU virt; on {name} QEMU loads the payload itself"
        );
    }
    if plan.machine.smmu || !plan.machine.devices.is_empty() {
        bail!("an SMMUv3 and PCI devices exist only on --machine virt, not on {name}");
    }
    if plan.machine.mte {
        bail!(
            "--mte works only on --machine virt (`-M virt,mte=on`): {name}'s Cortex-A53s have \
             no MTE"
        );
    }
    Ok(())
}

fn with_payload(plan: &Plan, payload: &Path) -> Result<Vec<String>> {
    let board = plan.machine.board;
    let modules = modules(&plan.host)?;
    let mut regions = module_regions(&plan.host, &modules)?;
    let payload_span = layout::file_span(payload)?;
    let mut args = Vec::new();
    match plan.via {
        Via::Direct => {
            regions.push(Region::new(
                format!("payload {}", payload.display()),
                layout::payload_direct_load(board),
                payload_span,
            ));
            regions.push(Region::new(
                "QEMU's DTB",
                layout::qemu_dtb_addr(board),
                layout::QEMU_DTB_ROOM,
            ));
            layout::check_regions(&regions, board, plan.machine.mem)?;
            if plan.dtb == DtbVariant::LpisLeftOn {
                bail!("a boot with LPIs left on needs --via uboot (U-Boot sets them)");
            }
            if plan.dtb == DtbVariant::WithoutPsci {
                bail!(
                    "a DTB without /psci needs --via uboot: QEMU puts its own /psci into a \
                     -dtb when it loads -kernel itself"
                );
            }
            let edits = plan.dtb.edits(&modules);
            let dtb = dtb::build_boot_dtb(&plan.machine, &edits, &plan.work_dir)?;
            args.extend(["-kernel".into(), payload.display().to_string()]);
            args.extend(["-dtb".into(), dtb.display().to_string()]);
        }
        Via::Uboot => {
            uboot_regions(&mut regions, payload, payload_span, plan.machine.mem)?;
            layout::check_regions(&regions, board, plan.machine.mem)?;
            let edits = plan.dtb.edits(&modules);
            let bootcmd = uboot::bootcmd(&BootiTarget::Payload { edits: &edits })?;
            let flash = uboot::write_flash(&plan.work_dir, &uboot::env_text(&bootcmd, None)?)?;
            args.extend(uboot::qemu_args(&flash)?);
            args.extend(["-kernel".into(), payload.display().to_string()]);
        }
    }
    for (m, file) in modules.iter().zip(module_files(&plan.host)) {
        args.extend(qemu::loader_args(file, m.addr));
    }
    Ok(args)
}

/// `--no-el2`: the host kernel is what QEMU or U-Boot starts.
fn without_payload(plan: &Plan) -> Result<Vec<String>> {
    let host = &plan.host;
    let mut args = Vec::new();
    if plan.via == Via::Uboot {
        let kernel_span = layout::file_span(&host.kernel)?;
        let mut regions = vec![
            Region::new(
                format!("staged kernel {}", host.kernel.display()),
                layout::UBOOT_KERNEL_STAGING,
                std::fs::metadata(&host.kernel)?.len(),
            ),
            Region::new(
                "U-Boot (relocated)",
                uboot_top(plan.machine.mem),
                layout::UBOOT_TOP_RESERVE,
            ),
        ];
        if let Some(initrd) = &host.initrd {
            regions.push(Region::new(
                format!("staged initrd {}", initrd.display()),
                layout::UBOOT_INITRD_STAGING,
                std::fs::metadata(initrd)?.len(),
            ));
        }
        layout::check_regions(&regions, Board::Virt, plan.machine.mem)?;
        // booti moves the kernel down to RAM base; it must still end below the initrd.
        layout::check_regions(
            &[
                Region::new("kernel after booti", layout::UBOOT_BOOTI_LOAD, kernel_span),
                Region::new("staged initrd", layout::UBOOT_INITRD_STAGING, 1),
            ],
            Board::Virt,
            plan.machine.mem,
        )?;
        let initrd_size = match &host.initrd {
            Some(initrd) => Some(std::fs::metadata(initrd)?.len()),
            None => None,
        };
        let bootcmd = uboot::bootcmd(&BootiTarget::Kernel { initrd_size })?;
        let env = uboot::env_text(&bootcmd, Some(&host.bootargs))?;
        let flash = uboot::write_flash(&plan.work_dir, &env)?;
        args.extend(uboot::qemu_args(&flash)?);
    }
    args.extend(["-kernel".into(), host.kernel.display().to_string()]);
    if let Some(initrd) = &host.initrd {
        args.extend(["-initrd".into(), initrd.display().to_string()]);
    }
    if plan.via == Via::Direct {
        args.extend(["-append".into(), host.bootargs.clone()]);
        // xlnx-zcu102 has no DTB of its own: the board's, which QEMU completes.
        if let Some(dtb) = dtb::board_dtb(plan.machine.board)? {
            args.extend(["-dtb".into(), dtb.display().to_string()]);
        }
    }
    Ok(args)
}

/// The module nodes for `host`: the kernel at [`layout::HOST_KERNEL_ADDR`], the ramdisk
/// right after the kernel's in-memory size ([`layout::ramdisk_addr`]).
fn modules(host: &Host) -> Result<Vec<Module>> {
    let mut modules = vec![Module {
        kind: ModuleKind::Kernel,
        addr: layout::HOST_KERNEL_ADDR,
        size: std::fs::metadata(&host.kernel)?.len(),
        bootargs: Some(host.bootargs.clone()),
    }];
    if let Some(initrd) = &host.initrd {
        let kernel_span = layout::file_span(&host.kernel)?;
        modules.push(Module {
            kind: ModuleKind::Ramdisk,
            addr: layout::ramdisk_addr(layout::HOST_KERNEL_ADDR, kernel_span),
            size: std::fs::metadata(initrd)?.len(),
            bootargs: None,
        });
    }
    Ok(modules)
}

/// The files behind [`modules`], in the same order.
fn module_files(host: &Host) -> impl Iterator<Item = &Path> {
    std::iter::once(host.kernel.as_path()).chain(host.initrd.as_deref())
}

/// Memory the modules take once loaded; the kernel counts with its .bss (Image size).
fn module_regions(host: &Host, modules: &[Module]) -> Result<Vec<Region>> {
    modules
        .iter()
        .zip(module_files(host))
        .map(|(m, file)| {
            let len = match m.kind {
                ModuleKind::Kernel => layout::file_span(file)?,
                ModuleKind::Ramdisk => m.size,
            };
            let what = match m.kind {
                ModuleKind::Kernel => "host kernel",
                ModuleKind::Ramdisk => "host ramdisk",
            };
            Ok(Region::new(
                format!("{what} {}", file.display()),
                m.addr,
                len,
            ))
        })
        .collect()
}

/// Under U-Boot the payload is staged by `qfw load`, then moved to RAM base by `booti`; and
/// U-Boot itself lives at the top of RAM until then.
fn uboot_regions(
    regions: &mut Vec<Region>,
    payload: &Path,
    payload_span: u64,
    mem: MemSize,
) -> Result<()> {
    let file_len = std::fs::metadata(payload)?.len();
    if layout::UBOOT_KERNEL_STAGING + file_len > layout::UBOOT_INITRD_STAGING {
        bail!(
            "payload {} ({file_len} bytes) does not fit between qfw load's kernel and initrd \
             addresses",
            payload.display()
        );
    }
    regions.push(Region::new(
        format!("payload {} after booti", payload.display()),
        layout::UBOOT_BOOTI_LOAD,
        payload_span,
    ));
    regions.push(Region::new(
        "U-Boot (relocated)",
        uboot_top(mem),
        layout::UBOOT_TOP_RESERVE,
    ));
    Ok(())
}

fn uboot_top(mem: MemSize) -> u64 {
    mem.ram_end(Board::Virt) - layout::UBOOT_TOP_RESERVE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zcu102_plan() -> Plan {
        Plan {
            machine: Machine {
                board: Board::Zcu102,
                virtualization: true,
                smp: 4,
                mem: layout::default_mem(Board::Zcu102),
                smmu: false,
                devices: Vec::new(),
                cpu: "cortex-a53".into(),
                mte: false,
            },
            via: Via::Direct,
            payload: None,
            host: Host {
                kernel: PathBuf::from("/x/Image"),
                initrd: None,
                bootargs: String::new(),
            },
            dtb: DtbVariant::WithModules,
            work_dir: PathBuf::from("/x/work"),
        }
    }

    /// The suite and `run` build plans alike: what only `virt` has is refused on
    /// xlnx-zcu102 however the plan was made, with the reason.
    #[test]
    fn a_zcu102_plan_refuses_what_only_virt_has() {
        check_board(&zcu102_plan()).unwrap();
        let mut uboot = zcu102_plan();
        uboot.via = Via::Uboot;
        let err = check_board(&uboot).unwrap_err().to_string();
        assert!(err.contains("built for QEMU virt"), "{err}");
        let mut smmu = zcu102_plan();
        smmu.machine.smmu = true;
        let err = check_board(&smmu).unwrap_err().to_string();
        assert!(err.contains("only on --machine virt"), "{err}");
        let mut mte = zcu102_plan();
        mte.machine.mte = true;
        let err = check_board(&mte).unwrap_err().to_string();
        assert!(err.contains("no MTE"), "{err}");
    }
}
