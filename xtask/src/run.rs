//! `cargo xtask run`: build what the boot needs, then boot QEMU with the console on stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::boot::Via;
use crate::boot::{self, DtbVariant, Host, Plan};
use crate::build::{self, Image};
use crate::cli::{HostKind, RunArgs};
use crate::console::{self, Outcome, RunOptions};
use crate::error::{Result, bail};
use crate::layout::MemSize;
use crate::qemu::{self, Board, Machine};
use crate::run_watch::{Failure, RunWatch};
use crate::{child_guard, image_check, layout, linux, paths, prereqs};

/// Returns the run's exit status: QEMU's (the demo's verdict) when it ends by itself
/// and nothing failed, 1 after a failure line, 124 after the timeout, 128 + signal when
/// xtask was interrupted, 130 when QEMU was quit from its monitor (Ctrl-A x).
pub fn run(args: RunArgs) -> Result<u8> {
    check_options(&args)?;
    prereqs::ensure()?;
    let plan = plan(&args)?;
    if args.raw_kernel {
        image_check::check_file(&plan.host.kernel, "host kernel")?;
    } else {
        image_check::check_arm64_image(&plan.host.kernel, "host kernel")?;
    }
    if let Some(payload) = &plan.payload {
        image_check::check_arm64_image(payload, "payload")?;
    }
    let qemu_args = boot::prepare(&plan)?;
    println!("{}", qemu::display(&qemu_args));
    let log = paths::qemu_logs().join("run.log");
    let mut watch = RunWatch::default();
    let outcome = console::run(
        &qemu_args,
        &RunOptions {
            echo: true,
            log: Some(&log),
            timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
            interactive: std::io::stdin().is_terminal(),
        },
        &mut watch,
    )?;
    let (code, message) = verdict(&outcome, watch.failure());
    if let Some(message) = message {
        eprintln!("\nxtask: {message} (log {})", paths::pretty(&log));
    }
    Ok(code)
}

/// The exit status of a run and what to say about it.
fn verdict(outcome: &Outcome, failure: Option<&Failure>) -> (u8, Option<String>) {
    match (outcome, failure) {
        (Outcome::Interrupted(signal), _) => (
            outcome.exit_code(),
            Some(format!(
                "interrupted by {}: QEMU killed",
                child_guard::name(*signal)
            )),
        ),
        (_, Some(Failure::Line(line))) => (1, Some(format!("run failed: {line}"))),
        (Outcome::TimedOut(after), _) => (
            outcome.exit_code(),
            Some(format!(
                "no end after {:.0} s: QEMU killed (--timeout {}; 0 waits forever)",
                after.as_secs_f64(),
                after.as_secs()
            )),
        ),
        (_, Some(Failure::QuitByUser)) => (130, Some("QEMU was quit from its monitor".into())),
        (Outcome::Exited(_), None) | (Outcome::Stopped, None) => match outcome.exit_code() {
            0 => (0, None),
            code => (code, Some(format!("QEMU exited with status {code}"))),
        },
    }
}

/// Refuses option combinations that cannot boot, before anything is built.
fn check_options(args: &RunArgs) -> Result<()> {
    if args.no_el2 && args.host != HostKind::Linux {
        bail!(
            "--no-el2 works only with --host linux: the demo host and the test hosts need the \
             payload (they make hypercalls, which are undefined at EL1 without EL2, and are \
             linked at the module address {:#x} the payload enters them at, while QEMU loads a \
             -kernel elsewhere)",
            layout::HOST_KERNEL_ADDR
        );
    }
    if args.no_el2 && args.unconfined_dma {
        bail!("--unconfined-dma is a boot option of the payload: it means nothing with --no-el2");
    }
    if args.no_el2 && args.payload.is_some() {
        bail!("--payload and --no-el2 contradict each other");
    }
    check_machine_options(args)
}

/// What `--machine` allows: xlnx-zcu102's CPUs and RAM are the board's, and U-Boot and MTE
/// are QEMU virt's.
fn check_machine_options(args: &RunArgs) -> Result<()> {
    let board = args.machine;
    layout::check_mem(board, mem(args))?;
    let Some((cpus, model)) = board.fixed_cpus() else {
        return Ok(());
    };
    let name = board.name();
    if args.smp.is_some_and(|smp| smp != cpus) {
        bail!(
            "--smp: --machine {name} has exactly {cpus} CPUs ({model}), as its DTB lists; \
             QEMU would start fewer, or add the board's Cortex-R5s"
        );
    }
    if args.cpu.as_deref().is_some_and(|cpu| cpu != model) {
        bail!("--cpu: --machine {name} has {model} CPUs only (QEMU ignores -cpu there)");
    }
    if args.via == Via::Uboot {
        bail!(
            "--via uboot works only on --machine virt: Debian's U-Boot (u-boot-qemu) is built \
             for QEMU virt"
        );
    }
    if args.mte {
        bail!("--mte works only on --machine virt: {name}'s Cortex-A53s have no MTE");
    }
    Ok(())
}

/// `--mem`, or the machine's default.
fn mem(args: &RunArgs) -> MemSize {
    args.mem.unwrap_or(layout::default_mem(args.machine))
}

/// Builds only the images this boot uses, fetches the Linux host if needed.
fn plan(args: &RunArgs) -> Result<Plan> {
    let mut needed = Vec::new();
    if !args.no_el2 && args.payload.is_none() {
        needed.push(Image::El2);
    }
    if args.host == HostKind::Demo && args.kernel.is_none() {
        needed.push(Image::DemoHost);
    }
    build::build(&needed)?;

    let host = match args.host {
        HostKind::Demo => Host {
            kernel: args
                .kernel
                .clone()
                .unwrap_or_else(|| Image::DemoHost.path()),
            initrd: args.initrd.clone(),
            bootargs: args.append.clone().unwrap_or_default(),
        },
        HostKind::Linux => {
            // Fetch Debian's kernel and build the initramfs only if one of them is used.
            let fetched = if args.kernel.is_none() || args.initrd.is_none() {
                Some(linux::ensure()?)
            } else {
                None
            };
            Host {
                kernel: pick(&args.kernel, fetched.as_ref().map(|l| &l.kernel)),
                initrd: Some(pick(&args.initrd, fetched.as_ref().map(|l| &l.initrd))),
                bootargs: args
                    .append
                    .clone()
                    .unwrap_or_else(|| linux::default_append(args.machine).into()),
            }
        }
    };
    let with_rng = args.host == HostKind::Linux && args.machine == Board::Virt;
    Ok(Plan {
        machine: Machine {
            board: args.machine,
            virtualization: !args.no_el2,
            smp: args.smp.unwrap_or(4),
            mem: mem(args),
            // Linux gets an entropy source behind the SMMUv3, which EL2 owns (virt only).
            smmu: with_rng,
            devices: if with_rng {
                vec![linux::RNG_DEVICE.into()]
            } else {
                Vec::new()
            },
            cpu: match (args.machine.fixed_cpus(), &args.cpu) {
                (Some((_, model)), _) => model.into(),
                (None, Some(cpu)) => cpu.clone(),
                (None, None) => qemu::DEFAULT_CPU.into(),
            },
            mte: args.mte,
        },
        via: args.via,
        payload: if args.no_el2 {
            None
        } else {
            Some(args.payload.clone().unwrap_or_else(|| Image::El2.path()))
        },
        host,
        dtb: if args.without_module_nodes {
            DtbVariant::WithoutModules
        } else if args.unconfined_dma {
            DtbVariant::UnconfinedDma
        } else {
            DtbVariant::WithModules
        },
        work_dir: paths::qemu().join("run"),
    })
}

/// The path given on the command line, else the fetched default.
fn pick(given: &Option<PathBuf>, default: Option<&PathBuf>) -> PathBuf {
    given
        .clone()
        .or_else(|| default.cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};
    use clap::Parser;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn run_args(extra: &[&str]) -> RunArgs {
        let argv = ["cargo xtask", "run"].iter().chain(extra).copied();
        match Cli::try_parse_from(argv).unwrap().command {
            Cmd::Run(args) => args,
            _ => unreachable!(),
        }
    }

    fn exited(code: i32) -> Outcome {
        Outcome::Exited(ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn a_failure_line_makes_the_run_fail_even_if_qemu_exits_0() {
        let fatal = Failure::Line("[el2] FATAL: invalid device tree".into());
        let (code, message) = verdict(&Outcome::Stopped, Some(&fatal));
        assert_eq!(code, 1);
        assert_eq!(
            message.as_deref(),
            Some("run failed: [el2] FATAL: invalid device tree")
        );
        assert_eq!(verdict(&exited(0), Some(&fatal)).0, 1);
    }

    #[test]
    fn a_timeout_exits_124_and_says_so() {
        let (code, message) = verdict(&Outcome::TimedOut(Duration::from_secs(300)), None);
        assert_eq!(code, 124);
        assert!(message.unwrap().contains("no end after 300 s"));
    }

    #[test]
    fn a_signal_to_xtask_exits_128_plus_it() {
        let (code, message) = verdict(&Outcome::Interrupted(libc::SIGTERM), None);
        assert_eq!(code, 128 + 15);
        assert_eq!(
            message.as_deref(),
            Some("interrupted by SIGTERM: QEMU killed")
        );
    }

    #[test]
    fn quitting_qemu_from_its_monitor_is_not_a_pass() {
        assert_eq!(verdict(&exited(0), Some(&Failure::QuitByUser)).0, 130);
    }

    #[test]
    fn a_clean_exit_passes_qemus_status_through() {
        assert_eq!(verdict(&exited(0), None), (0, None));
        assert_eq!(verdict(&exited(1), None).0, 1);
    }

    #[test]
    fn no_el2_is_refused_for_the_demo_host_with_the_reason() {
        let err = check_options(&run_args(&["--no-el2"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--no-el2 works only with --host linux"),
            "{err}"
        );
        let err = check_options(&run_args(&["--no-el2", "--kernel", "/x/abi-host.bin"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("need the payload"), "{err}");
        check_options(&run_args(&["--no-el2", "--host", "linux"])).unwrap();
    }

    #[test]
    fn zcu102_refuses_what_the_board_does_not_have_with_the_reason() {
        let err = |extra: &[&str]| {
            let argv = [&["--machine", "zcu102"], extra].concat();
            check_options(&run_args(&argv)).unwrap_err().to_string()
        };
        assert!(err(&["--smp", "2"]).contains("exactly 4 CPUs (cortex-a53)"));
        assert!(err(&["--smp", "6"]).contains("exactly 4 CPUs"));
        assert!(err(&["--cpu", "max"]).contains("cortex-a53 CPUs only"));
        assert!(err(&["--via", "uboot"]).contains("--via uboot works only on --machine virt"));
        assert!(err(&["--mte"]).contains("--mte works only on --machine virt"));
        assert!(err(&["--mem", "1G"]).contains("at least 1280M"));
        assert!(err(&["--mem", "4G"]).contains("at most 2048M"));
        for ok in [
            &[][..],
            &["--smp", "4", "--cpu", "cortex-a53", "--mem", "1536M"],
            &["--host", "linux", "--no-el2"],
        ] {
            let argv = [&["--machine", "zcu102"], ok].concat();
            check_options(&run_args(&argv)).unwrap();
        }
        // On virt the same options are the user's choice.
        check_options(&run_args(&["--smp", "2", "--cpu", "max", "--mem", "4G"])).unwrap();
    }

    #[test]
    fn zcu102_defaults_to_its_whole_low_bank() {
        let args = run_args(&["--machine", "zcu102"]);
        assert_eq!(mem(&args), MemSize::from_bytes(2 * layout::GIB));
        assert_eq!(mem(&run_args(&[])), MemSize::from_bytes(layout::GIB));
    }

    #[test]
    fn the_default_run_has_a_timeout() {
        assert_eq!(run_args(&[]).timeout, crate::cli::DEFAULT_TIMEOUT_SECS);
    }
}
