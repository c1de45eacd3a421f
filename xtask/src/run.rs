//! `cargo xtask run`: build what the boot needs, then boot QEMU with the console on stdout.

use std::path::PathBuf;
use std::time::Duration;

use crate::boot::{self, DtbVariant, Host, Plan};
use crate::build::{self, Image};
use crate::cli::{HostKind, RunArgs};
use crate::console::{self, NoWatch, Outcome, RunOptions};
use crate::error::Result;
use crate::qemu::{self, Machine};
use crate::{linux, paths, prereqs};

/// Returns QEMU's exit status, which is the demo's verdict.
pub fn run(args: RunArgs) -> Result<u8> {
    prereqs::ensure()?;
    let plan = plan(&args)?;
    let qemu_args = boot::prepare(&plan)?;
    println!("{}", qemu::display(&qemu_args));
    let log = paths::qemu_logs().join("run.log");
    let outcome = console::run(
        &qemu_args,
        &RunOptions {
            echo: true,
            log: Some(&log),
            timeout: args.timeout.map(Duration::from_secs),
            interactive: args.timeout.is_none(),
        },
        &mut NoWatch,
    )?;
    if let Outcome::TimedOut(after) = outcome {
        eprintln!(
            "\nxtask: QEMU killed after {:.0} s (--timeout)",
            after.as_secs_f64()
        );
    }
    Ok(outcome.exit_code())
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
                    .unwrap_or_else(|| linux::DEFAULT_APPEND.into()),
            }
        }
    };
    Ok(Plan {
        machine: Machine {
            virtualization: !args.no_el2,
            smp: args.smp,
            mem: args.mem,
            // Linux gets an entropy source behind the SMMUv3, which EL2 owns.
            smmu: args.host == HostKind::Linux,
            devices: if args.host == HostKind::Linux {
                vec![linux::RNG_DEVICE.into()]
            } else {
                Vec::new()
            },
            cpu: args.cpu.clone(),
            mte: args.mte,
        },
        via: args.via,
        payload: if args.no_el2 {
            None
        } else {
            Some(args.payload.clone().unwrap_or_else(|| Image::El2.path()))
        },
        host,
        dtb: if args.unconfined_dma {
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
