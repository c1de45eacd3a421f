//! `vmm`: runs the el2 payload's protected guests on Linux through the `el2_pvm` driver
//! (linux-driver/, docs/linux.md). A static aarch64 Linux binary that the Linux host's
//! `/init` runs (`cargo xtask run --host linux`).
//!
//! ```text
//! vmm story GUEST.bin      the issue-10 story, each step checked
//! vmm gmem GUEST.bin       Linux's guest_memfd selftest behaviours on the driver's fd
//! vmm bad-input GUEST.bin  bad arguments from user space, each with its errno
//! vmm exits GUEST.bin      MEM_RELINQUISHED, MMIO read, MEM_FAULT, VCPU_STARTED, VCPU_OFF
//! vmm kill GUEST.bin N     N VMMs killed with SIGKILL at random points: nothing leaks
//! vmm smp GUEST.bin        4 threads x 5 guests sharing and unsharing at once
//! vmm bench                what the driver adds, from user space (`cargo xtask bench`)
//! ```
//! Every check prints `vmm: ok: ...` or `vmm: FAIL: ...`; the exit status is 1 if any
//! failed.

mod bench;
mod check;
mod exits;
mod guest;
mod interface;
mod probe;
mod pvm;
mod story;
mod stress;
mod uapi;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: vmm story|gmem|bad-input|exits|smp GUEST.bin | vmm kill GUEST.bin N");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("bench") {
        return if bench::run() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let (Some(command), Some(path)) = (args.get(1), args.get(2)) else {
        return usage();
    };
    let image = match std::fs::read(path) {
        Ok(image) => image,
        Err(e) => {
            println!("vmm: FAIL: reading the guest image {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = match command.as_str() {
        "story" => story::run(&image),
        "gmem" => interface::guest_memfd(),
        "exits" => exits::run(&image),
        "bad-input" => interface::bad_input(&image),
        "kill" => match args.get(3).and_then(|n| n.parse().ok()) {
            Some(rounds) => stress::kill(&image, rounds),
            None => return usage(),
        },
        "smp" => stress::smp(&image, 4, 5),
        _ => return usage(),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
