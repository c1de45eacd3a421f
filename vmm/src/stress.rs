//! Abuse from user space: VMMs killed with SIGKILL at random points (`vmm kill`), and
//! several VMs sharing and unsharing on all CPUs at once (`vmm smp`). Afterwards no VM is
//! left, in the driver or in EL2, and no page is lost.

use crate::check::Checks;
use crate::guest::{Event, Guest};
use crate::pvm::Device;
use crate::story::mem_free_kb;
use crate::uapi::{PAGE_SIZE, Stats};
use test_guest::{Command, DATA_GFN, REPLY, REPLY_OFFSET, Report, SHARED_GFN, Step};

/// How far free memory (MemFree plus the per-CPU lists, `story::mem_free_kb`) may drop
/// after many processes died (slab, page tables of the survivors). The driver's own count
/// of the pages it holds is the exact check. A rise is no loss. MemFree alone moved by
/// 2.6 MiB up (xlnx-zcu102) and 3.7 MiB down (cortex-a72) with no page lost, because freed
/// pages sit on the per-CPU lists; with them counted the runs move by under 200 kB.
const MEM_FREE_SLACK_KB: i64 = 2048;

/// EL2's VM slots (docs/abi.md section 9, MAX_VMS).
const MAX_VMS: usize = 16;

/// A small xorshift generator seeded from the clock: where each kill lands.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self(now | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Checks what must hold when no VMM runs: the driver holds what it held before, no page
/// is lost or came back dirty, and EL2 has every VM slot free again.
/// `mem_free` is MemFree (kB) before the VMs and after them, taken with the same other
/// processes alive (freed pages of a process that just died sit on per-CPU lists, which
/// MemFree does not count).
fn nothing_left(c: &mut Checks, dev: &Device, before: &Stats, mem_free: (i64, i64)) {
    let (mem_free_before, mem_free_after) = mem_free;
    match dev.stats() {
        Ok(after) => {
            c.check(
                after.vms == before.vms,
                "no VM is left in the driver",
                format!("{} VMs", after.vms),
            );
            c.check(
                after.pages_held == before.pages_held,
                "the driver holds no page of them",
                format!(
                    "{} pages held, {} before",
                    after.pages_held, before.pages_held
                ),
            );
            c.check(
                after.pages_lost == before.pages_lost
                    && after.pages_reclaimed_nonzero == before.pages_reclaimed_nonzero,
                "every page came back from EL2, zeroed",
                format!(
                    "{} reclaimed, {} lost, {} not zeroed",
                    after.pages_reclaimed - before.pages_reclaimed,
                    after.pages_lost - before.pages_lost,
                    after.pages_reclaimed_nonzero - before.pages_reclaimed_nonzero
                ),
            );
        }
        Err(e) => {
            c.check(false, "GET_STATS", e);
        }
    }
    let vms: Vec<_> = (0..MAX_VMS)
        .map_while(|_| dev.create_vm(1, 32).ok())
        .collect();
    c.check(
        vms.len() == MAX_VMS,
        "EL2 has every VM slot free",
        format!("{} VMs created at once", vms.len()),
    );
    drop(vms);
    c.check(
        mem_free_before - mem_free_after <= MEM_FREE_SLACK_KB,
        "Linux's free memory is back where it started",
        format!("MemFree + per-CPU lists {mem_free_before} kB before, {mem_free_after} kB after"),
    );
}

/// A child VMM that loads a spinning guest and runs it until it is killed.
fn spinning_vmm(image: &[u8]) -> ! {
    if let Ok(dev) = Device::open()
        && let Ok(mut guest) = Guest::load(&dev, image, Command::Spin)
    {
        loop {
            guest.run_until_event();
        }
    }
    // SAFETY: ends the child without running the parent's destructors twice.
    unsafe { libc::_exit(1) }
}

/// `vmm kill`: `rounds` VMMs, each SIGKILLed after a random 0..40 ms (while it creates
/// its VM, donates memory or runs the guest).
pub fn kill(image: &[u8], rounds: u32) -> bool {
    let mut c = Checks::new("kill");
    let mem_free_before = mem_free_kb();
    let Ok(dev) = Device::open() else {
        c.check(false, "open /dev/el2-pvm", "failed");
        return c.finish();
    };
    let Ok(before) = dev.stats() else {
        c.check(false, "GET_STATS", "failed");
        return c.finish();
    };
    let mut rng = Rng::new();
    let mut killed = 0;
    for _ in 0..rounds {
        // SAFETY: the process is single-threaded here; the child only runs the VMM code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            spinning_vmm(image);
        }
        if pid < 0 {
            c.check(false, "fork", "failed");
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(rng.below(40_000)));
        let mut status = 0;
        // SAFETY: signals and reaps the child just forked.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL {
            killed += 1;
        }
    }
    c.check(
        killed == rounds,
        "VMMs killed with SIGKILL at random points",
        format!("{killed} of {rounds}"),
    );
    nothing_left(&mut c, &dev, &before, (mem_free_before, mem_free_kb()));
    c.finish()
}

/// One guest's share/unshare round trip, the VMM replying through its mapping.
fn share_round(dev: &Device, image: &[u8]) -> Result<(), String> {
    let mut guest = Guest::load(dev, image, Command::SecretAndShare).map_err(|e| e.to_string())?;
    let map = guest
        .data
        .map(3 * PAGE_SIZE, libc::MAP_SHARED)
        .map_err(|e| e.to_string())?;
    let shared = map
        .addr()
        .wrapping_add((SHARED_GFN - DATA_GFN) as usize * PAGE_SIZE);
    let mut seen = Vec::new();
    loop {
        match guest.run_until_event() {
            Event::Report(Report::Reached(Step::Shared)) => {
                for (i, &b) in REPLY.as_bytes().iter().chain(&[0]).enumerate() {
                    // SAFETY: inside the page the guest just shared (REPLY fits after
                    // REPLY_OFFSET, test_guest's own test).
                    unsafe { shared.add(REPLY_OFFSET + i).write_volatile(b) };
                }
            }
            Event::SystemOff => break,
            Event::MemShared { .. } | Event::MemUnshared { .. } => {}
            Event::Report(Report::Reached(_)) => {}
            other => return Err(format!("{other:?} after {seen:?}")),
        }
        seen.push(());
    }
    Ok(())
}

/// Processes that compete for the CPUs and for memory while the VMs run: each dirties
/// 4 MiB over and over until it is killed.
fn start_noise(count: usize) -> Vec<libc::pid_t> {
    (0..count)
        .filter_map(|_| {
            // SAFETY: the process is single-threaded here; the child only touches its own
            // memory until it is killed.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let mut buffer = vec![0u8; 4 << 20];
                let mut i = 0usize;
                loop {
                    // SAFETY: an index inside `buffer`.
                    unsafe {
                        std::ptr::write_volatile(buffer.as_mut_ptr().add(i % buffer.len()), i as u8)
                    };
                    i = i.wrapping_add(4096 + 64);
                }
            }
            (pid > 0).then_some(pid)
        })
        .collect()
}

fn stop_noise(pids: &[libc::pid_t]) {
    for &pid in pids {
        let mut status = 0;
        // SAFETY: signals and reaps a child this process forked.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
        }
    }
}

/// `vmm smp`: `threads` VMM threads at once, each building `rounds` guests that share,
/// get a reply and unshare, while two other processes keep the CPUs and memory busy.
pub fn smp(image: &[u8], threads: u32, rounds: u32) -> bool {
    let mut c = Checks::new("smp");
    let Ok(dev) = Device::open() else {
        c.check(false, "open /dev/el2-pvm", "failed");
        return c.finish();
    };
    let Ok(before) = dev.stats() else {
        c.check(false, "GET_STATS", "failed");
        return c.finish();
    };
    let noise = start_noise(2);
    // Each busy process has touched all of its memory by now.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mem_free_before = mem_free_kb();
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| (0..rounds).try_for_each(|_| share_round(&dev, image))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err("panicked".into())))
            .collect()
    });
    let mem_free_after = mem_free_kb();
    stop_noise(&noise);
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    c.check(
        failures.is_empty() && noise.len() == 2,
        "VMs sharing and unsharing on every CPU at once",
        format!(
            "{threads} threads x {rounds} guests next to {} busy processes, failures {failures:?}",
            noise.len()
        ),
    );
    nothing_left(&mut c, &dev, &before, (mem_free_before, mem_free_after));
    c.finish()
}
