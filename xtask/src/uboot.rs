//! Booting through U-Boot: a saved environment in the second pflash whose `bootcmd` fetches
//! the payload from QEMU's fw_cfg, adds the module nodes to the DTB and `booti`s it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::dtb::DtbEdits;
use crate::error::{Context, Result, bail};
use crate::layout::{UBOOT_INITRD_STAGING, UBOOT_KERNEL_STAGING};
use crate::{cmd, prereqs};

/// Size of the environment area U-Boot's qemu_arm64 build reads (CONFIG_ENV_SIZE).
const ENV_SIZE: &str = "0x40000";
/// QEMU `virt` wants each pflash image to be exactly 64 MiB.
const FLASH_SIZE: u64 = 64 << 20;
/// Hex bytes `fdt resize` leaves free for the nodes we add (it first shrinks the tree).
const FDT_EXTRA: &str = "8192";

/// What `bootcmd` hands to `booti`.
pub enum BootiTarget<'a> {
    /// The EL2 payload, with the host described by multiboot module nodes (and the DTB
    /// edits a test asks for).
    Payload { edits: &'a DtbEdits },
    /// A Linux kernel booted with no payload, its initramfs staged by `qfw load`.
    Kernel { initrd_size: Option<u64> },
}

/// The `bootcmd` script. A saved environment replaces U-Boot's default one, so
/// `kernel_addr_r` and friends do not exist: every address is literal.
pub fn bootcmd(target: &BootiTarget<'_>) -> Result<String> {
    let mut steps = vec![format!(
        "qfw load {UBOOT_KERNEL_STAGING:#x} {UBOOT_INITRD_STAGING:#x}"
    )];
    match target {
        BootiTarget::Payload { edits } => {
            if !edits.reserved.is_empty() {
                bail!(
                    "added /reserved-memory ranges need --via direct (the U-Boot script does not write them)"
                );
            }
            steps.push("fdt addr ${fdtcontroladdr}".into());
            steps.push(format!("fdt resize {FDT_EXTRA}"));
            for node in &edits.delete_root_nodes {
                steps.push(format!("fdt rm /{node}"));
            }
            let modules = &edits.modules;
            steps.push("fdt set /chosen \"#address-cells\" <0x2>".into());
            steps.push("fdt set /chosen \"#size-cells\" <0x2>".into());
            for flag in &edits.chosen_flags {
                steps.push(format!("fdt set /chosen {flag}"));
            }
            if let Some(stdout) = &edits.stdout_path {
                steps.push(format!("fdt set /chosen stdout-path \"{stdout}\""));
            }
            for m in modules {
                let path = format!("/chosen/{}", m.node_name());
                let [a, b] = m.kind.compatible();
                steps.push(format!("fdt mknode /chosen {}", m.node_name()));
                steps.push(format!("fdt set {path} compatible \"{a}\" \"{b}\""));
                steps.push(format!("fdt set {path} reg <{}>", m.reg_cells()));
                if let Some(args) = &m.bootargs {
                    steps.push(format!(
                        "fdt set {path} bootargs \"{}\"",
                        hush_quoted(args)?
                    ));
                }
            }
            steps.extend(edits.uboot_steps.iter().cloned());
            steps.push(format!(
                "booti {UBOOT_KERNEL_STAGING:#x} - ${{fdtcontroladdr}}"
            ));
        }
        BootiTarget::Kernel { initrd_size } => {
            let initrd = match initrd_size {
                Some(size) => format!("{UBOOT_INITRD_STAGING:#x}:{size:#x}"),
                None => "-".into(),
            };
            steps.push(format!(
                "booti {UBOOT_KERNEL_STAGING:#x} {initrd} ${{fdtcontroladdr}}"
            ));
        }
    }
    Ok(steps.join("; "))
}

/// The body of a double-quoted word for U-Boot's hush shell. It expands `$` inside double
/// quotes and has no escape we can rely on for `"` or `\`: refuse them rather than guess.
fn hush_quoted(s: &str) -> Result<&str> {
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '"' | '\\' | '$' | '\n' | '\r'))
    {
        bail!("bootargs for the U-Boot path cannot contain {c:?}: {s:?}");
    }
    Ok(s)
}

/// `env.txt` for mkenvimage: one `name=value` a line.
pub fn env_text(bootcmd: &str, bootargs: Option<&str>) -> Result<String> {
    let mut env = format!("bootdelay=0\nbootcmd={bootcmd}\n");
    if let Some(args) = bootargs {
        env.push_str(&format!("bootargs={}\n", hush_quoted(args)?));
    }
    Ok(env)
}

/// Writes `env.txt`, `env.bin` and the 64 MiB `flash1.img` into `work_dir`; returns the
/// flash image to give QEMU as pflash unit 1.
pub fn write_flash(work_dir: &Path, env: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(work_dir)?;
    let txt = work_dir.join("env.txt");
    let bin = work_dir.join("env.bin");
    let flash = work_dir.join("flash1.img");
    std::fs::write(&txt, env).context(|| format!("writing {}", txt.display()))?;
    cmd::output(
        Command::new("mkenvimage")
            .args(["-s", ENV_SIZE, "-o"])
            .arg(&bin)
            .arg(&txt),
    )?;
    // Same as `truncate -s 64M flash1.img; dd if=env.bin of=flash1.img conv=notrunc`.
    let image = std::fs::read(&bin)?;
    let mut f =
        std::fs::File::create(&flash).context(|| format!("creating {}", flash.display()))?;
    f.write_all(&image)?;
    f.set_len(FLASH_SIZE)?;
    Ok(flash)
}

/// `-bios` and the pflash holding the environment.
pub fn qemu_args(flash: &Path) -> Result<Vec<String>> {
    let Some(uboot) = prereqs::uboot_bin() else {
        bail!("U-Boot for QEMU not found: apt-get install u-boot-qemu");
    };
    Ok(vec![
        "-bios".into(),
        uboot.display().to_string(),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", flash.display()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtb::{Module, ModuleKind};

    #[test]
    fn payload_bootcmd_adds_module_nodes_then_bootis_with_the_control_dtb() {
        let modules = [
            Module {
                kind: ModuleKind::Kernel,
                addr: 0x5000_0000,
                size: 0x2000,
                bootargs: Some("console=ttyAMA0 panic=-1".into()),
            },
            Module {
                kind: ModuleKind::Ramdisk,
                addr: 0x5c00_0000,
                size: 0x30_0000,
                bootargs: None,
            },
        ];
        let edits = DtbEdits {
            modules: modules.to_vec(),
            delete_root_nodes: vec![],
            chosen_flags: vec!["el2,unconfined-dma".into()],
            uboot_steps: vec!["mw.l 0x80a0000 0x1".into()],
            reserved: vec![],
            stdout_path: None,
        };
        let cmd = bootcmd(&BootiTarget::Payload { edits: &edits }).unwrap();
        let steps: Vec<&str> = cmd.split("; ").collect();
        assert_eq!(
            steps,
            [
                "qfw load 0x40400000 0x44000000",
                "fdt addr ${fdtcontroladdr}",
                "fdt resize 8192",
                "fdt set /chosen \"#address-cells\" <0x2>",
                "fdt set /chosen \"#size-cells\" <0x2>",
                "fdt set /chosen el2,unconfined-dma",
                "fdt mknode /chosen module@50000000",
                "fdt set /chosen/module@50000000 compatible \"multiboot,kernel\" \"multiboot,module\"",
                "fdt set /chosen/module@50000000 reg <0x0 0x50000000 0x0 0x2000>",
                "fdt set /chosen/module@50000000 bootargs \"console=ttyAMA0 panic=-1\"",
                "fdt mknode /chosen module@5c000000",
                "fdt set /chosen/module@5c000000 compatible \"multiboot,ramdisk\" \"multiboot,module\"",
                "fdt set /chosen/module@5c000000 reg <0x0 0x5c000000 0x0 0x300000>",
                "mw.l 0x80a0000 0x1",
                "booti 0x40400000 - ${fdtcontroladdr}",
            ]
        );
    }

    #[test]
    fn payload_bootcmd_can_remove_a_node_and_leave_out_the_modules() {
        let edits = DtbEdits {
            modules: vec![],
            delete_root_nodes: vec!["psci".into()],
            chosen_flags: vec![],
            uboot_steps: vec![],
            reserved: vec![],
            stdout_path: None,
        };
        let cmd = bootcmd(&BootiTarget::Payload { edits: &edits }).unwrap();
        assert!(cmd.contains("; fdt resize 8192; fdt rm /psci; "), "{cmd}");
        assert!(!cmd.contains("module@"), "{cmd}");
    }

    #[test]
    fn kernel_bootcmd_passes_the_staged_initrd_with_its_size() {
        let cmd = bootcmd(&BootiTarget::Kernel {
            initrd_size: Some(0x1234),
        })
        .unwrap();
        assert!(cmd.ends_with("booti 0x40400000 0x44000000:0x1234 ${fdtcontroladdr}"));
    }

    #[test]
    fn bootargs_that_hush_would_mangle_are_refused() {
        assert!(hush_quoted("root=/dev/vda $x").is_err());
        assert!(hush_quoted("a\"b").is_err());
        assert_eq!(hush_quoted("console=ttyAMA0").unwrap(), "console=ttyAMA0");
    }

    #[test]
    fn env_has_no_boot_delay() {
        let env = env_text("booti", None).unwrap();
        assert_eq!(env, "bootdelay=0\nbootcmd=booti\n");
    }
}
