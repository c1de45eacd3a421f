//! The story `cargo xtask run --host linux` tells (issue 10): a protected guest prints,
//! keeps a secret and shares a message; the VMM reads the message through the guest
//! memory fd and replies; the private page is refused by the driver (SIGBUS) and, when
//! the test knob makes the driver map it anyway, by the hardware (SIGBUS from EL2's
//! injected abort); after the guest unshares, the next access is refused; the VM ends,
//! its pages come back zeroed and Linux's free memory is back where it was.

use crate::check::Checks;
use crate::guest::{Event, Guest};
use crate::probe::{self, Outcome};
use crate::pvm::Device;
use crate::uapi::PAGE_SIZE;
use test_guest::{
    Command, DATA_GFN, DATA_PAGES, MESSAGE, REPLY, REPLY_OFFSET, Report, SHARED_GFN, Step, ipa,
};

/// The driver's test-only knob (linux-driver/gmem.c).
pub const FORCE_MAP_PARAM: &str = "/sys/module/el2_pvm/parameters/test_force_map_private";

/// Free memory may move by this much for reasons of its own (page cache, slab, the probes'
/// children).
const MEM_FREE_SLACK_KB: i64 = 1024;

/// Free memory in kB as the page allocator holds it: MemFree plus the pages on the per-CPU
/// lists (`/proc/zoneinfo`, each CPU's `count` under `pagesets`), which MemFree leaves out.
/// Pages a process frees go to its CPU's list first, so MemFree alone moves by megabytes
/// with no page lost. -1 if /proc/meminfo cannot be read.
pub fn mem_free_kb() -> i64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let Some(mem_free) = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemFree:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
    else {
        return -1;
    };
    let zoneinfo = std::fs::read_to_string("/proc/zoneinfo").unwrap_or_default();
    mem_free + per_cpu_list_pages(&zoneinfo) * (crate::uapi::PAGE_SIZE as i64 / 1024)
}

/// The pages on every CPU's free lists, from `/proc/zoneinfo`: the `count:` lines of each
/// zone's `pagesets` (one per CPU).
fn per_cpu_list_pages(zoneinfo: &str) -> i64 {
    zoneinfo
        .lines()
        .filter_map(|l| l.trim().strip_prefix("count:"))
        .filter_map(|v| v.trim().parse::<i64>().ok())
        .sum()
}

pub fn set_force_map(on: bool) -> std::io::Result<()> {
    std::fs::write(FORCE_MAP_PARAM, if on { "1" } else { "0" })
}

fn expect_event(c: &mut Checks, guest: &mut Guest, want: Event, what: &str) -> bool {
    let got = guest.run_until_event();
    c.check(got == want, what, format!("{got:?}"))
}

/// Reads a NUL-terminated string of at most `max` bytes at `addr`.
fn read_c_string(addr: *const u8, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..max {
        // SAFETY: `addr..addr+max` lies in a live mapping of a shared guest page (checked
        // by the caller's state: the guest shared it and has not unshared it).
        let byte = unsafe { addr.add(i).read_volatile() };
        if byte == 0 {
            break;
        }
        out.push(byte);
    }
    out
}

pub fn run(image: &[u8]) -> bool {
    let mut c = Checks::new("story");
    let mem_free_before = mem_free_kb();
    let dev = match Device::open() {
        Ok(dev) => dev,
        Err(e) => {
            c.check(false, "open /dev/el2-pvm", e);
            return c.finish();
        }
    };
    let Ok(stats_before) = dev.stats() else {
        c.check(false, "GET_STATS", "failed");
        return c.finish();
    };
    let mut guest = match Guest::load(&dev, image, Command::LinuxStory) {
        Ok(guest) => guest,
        Err(e) => {
            c.check(false, "create the protected VM", e);
            return c.finish();
        }
    };
    c.check(
        true,
        "protected VM created",
        format!(
            "{} image pages at {:#x}, {} private data pages at {:#x}, boot vCPU",
            guest.image_pages,
            test_guest::ENTRY_IPA,
            DATA_PAGES,
            ipa(DATA_GFN)
        ),
    );
    let map = match guest
        .data
        .map(DATA_PAGES as usize * PAGE_SIZE, libc::MAP_SHARED)
    {
        Ok(map) => map,
        Err(e) => {
            c.check(false, "mmap the guest memory fd", e);
            return c.finish();
        }
    };
    let secret = map.addr();
    // SAFETY: SHARED_GFN is inside the DATA_PAGES-page mapping.
    let shared = unsafe {
        map.addr()
            .add(((SHARED_GFN - DATA_GFN) as usize) * PAGE_SIZE)
    };

    let share = Event::MemShared {
        gpa: ipa(SHARED_GFN),
        nr: 1,
    };
    expect_event(
        &mut c,
        &mut guest,
        share,
        "the guest shares its message page",
    );
    if !expect_event(
        &mut c,
        &mut guest,
        Event::Report(Report::Reached(Step::Shared)),
        "the guest wrote its secret and message",
    ) {
        return c.finish();
    }

    let message = read_c_string(shared, REPLY_OFFSET);
    c.check(
        message == MESSAGE.as_bytes(),
        "the VMM reads the guest's message through its mapping",
        format!("\"{}\"", String::from_utf8_lossy(&message)),
    );
    for (i, &b) in REPLY.as_bytes().iter().chain(&[0]).enumerate() {
        // SAFETY: REPLY_OFFSET + REPLY.len() < 4096 (test_guest's own test): inside the
        // shared page, which the guest reads only after this run of the VMM.
        unsafe { shared.add(REPLY_OFFSET + i).write_volatile(b) };
    }
    // SAFETY: as above.
    let back = read_c_string(
        unsafe { shared.add(REPLY_OFFSET) },
        PAGE_SIZE - REPLY_OFFSET,
    );
    c.check(
        back == REPLY.as_bytes(),
        "the VMM writes its reply into the shared page and reads it back",
        format!("\"{}\"", String::from_utf8_lossy(&back)),
    );

    let outcome = probe::load(secret);
    c.check(
        outcome == Outcome::Sigbus(libc::BUS_ADRERR),
        "reading the guest's private page",
        outcome,
    );
    let forced = set_force_map(true).map(|()| probe::load(secret));
    let restored = set_force_map(false);
    match forced {
        Ok(outcome) => c.check(
            outcome == Outcome::Sigbus(libc::BUS_OBJERR),
            "reading the private page the driver was forced to map (test_force_map_private)",
            outcome,
        ),
        Err(e) => c.check(false, "set test_force_map_private", e),
    };
    c.check(
        restored.is_ok(),
        "test_force_map_private back to 0",
        "written",
    );

    let unshare = Event::MemUnshared {
        gpa: ipa(SHARED_GFN),
        nr: 1,
    };
    expect_event(
        &mut c,
        &mut guest,
        unshare,
        "the guest read the reply and unshares the page",
    );
    expect_event(
        &mut c,
        &mut guest,
        Event::Report(Report::Reached(Step::Unshared)),
        "the guest unshared the page",
    );
    let outcome = probe::load(shared);
    c.check(
        outcome == Outcome::Sigbus(libc::BUS_ADRERR),
        "reading the page the guest unshared, through the mapping that read it before",
        outcome,
    );
    expect_event(
        &mut c,
        &mut guest,
        Event::Report(Report::Reached(Step::Done)),
        "the guest found its secret intact",
    );
    expect_event(
        &mut c,
        &mut guest,
        Event::SystemOff,
        "the guest powers off (PSCI SYSTEM_OFF)",
    );

    let donated = guest.image_pages as u64 + u64::from(DATA_PAGES);
    drop(map);
    drop(guest);
    match dev.stats() {
        Ok(after) => {
            let reclaimed = after.pages_reclaimed - stats_before.pages_reclaimed;
            c.check(
                after.vms == stats_before.vms && reclaimed >= donated,
                "the VM ended and EL2 gave back every page",
                format!(
                    "{reclaimed} pages reclaimed ({donated} guest pages and the VM's page tables)"
                ),
            );
            c.check(
                after.pages_reclaimed_nonzero == stats_before.pages_reclaimed_nonzero
                    && after.pages_lost == stats_before.pages_lost,
                "every reclaimed page came back zeroed, none lost",
                format!(
                    "{} not zeroed, {} lost",
                    after.pages_reclaimed_nonzero - stats_before.pages_reclaimed_nonzero,
                    after.pages_lost - stats_before.pages_lost
                ),
            );
            c.check(
                after.pages_held == stats_before.pages_held,
                "the driver holds no page of the VM",
                format!(
                    "{} pages held, {} before",
                    after.pages_held, stats_before.pages_held
                ),
            );
        }
        Err(e) => {
            c.check(false, "GET_STATS after the VM", e);
        }
    }
    drop(dev);
    let mem_free_after = mem_free_kb();
    c.check(
        mem_free_before > 0 && (mem_free_after - mem_free_before).abs() <= MEM_FREE_SLACK_KB,
        "Linux's free memory is back where it started",
        format!("MemFree + per-CPU lists {mem_free_before} kB before, {mem_free_after} kB after"),
    );
    c.finish()
}
