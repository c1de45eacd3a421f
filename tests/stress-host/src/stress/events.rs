//! Counts of what happened during the stress beyond call outcomes: VM life cycles, guest
//! exits and protocol steps, host reads of the shared pages.

use core::sync::atomic::{AtomicU32, Ordering};
use el1_rt::say;
use hvc_abi::{Exit, ExitReason};

#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A stress VM built (created, topped up, guest loaded, vCPU created) and published.
    Built,
    /// A stress VM destroyed by the stress and its private pages reclaimed and found zero.
    Retired,
    /// Pages reclaimed when retiring VMs.
    ReclaimedPages,
    /// The guest shared its page and the host wrote its reply into it.
    ReplyWritten,
    /// The guest's VM was destroyed before the host could write the reply (allowed).
    ReplyTooLate,
    /// Another CPU ran the guest before the reply was written: the guest's reply check
    /// failed (a race of the host's protocol, not of the payload).
    ReplyRace,
    /// The guest finished its command (report Done).
    GuestDone,
    /// A host read of a shared-set page returned data.
    ReadOk,
    /// A host read of a shared-set page was refused with an injected abort.
    ReadAborted,
    /// DEBUG_CHECK_INVARIANTS in the middle of the stress found I1-I4 holding.
    InvariantsHeld,
}

const EVENTS: usize = 10;
const NAMES: [&str; EVENTS] = [
    "VMs built",
    "VMs retired",
    "pages reclaimed",
    "replies written",
    "replies too late (VM gone)",
    "reply races",
    "guests done",
    "host reads ok",
    "host reads aborted",
    "invariant checks passed mid-run",
];

static EVENT_COUNTS: [AtomicU32; EVENTS] = [const { AtomicU32::new(0) }; EVENTS];
/// Indexed by the exit reason's x1[7:0] (1..=9).
static EXIT_COUNTS: [AtomicU32; 10] = [const { AtomicU32::new(0) }; 10];

pub fn count(event: Event) {
    add(event, 1);
}

pub fn add(event: Event, n: u32) {
    EVENT_COUNTS[event as usize].fetch_add(n, Ordering::Relaxed);
}

pub fn get(event: Event) -> u32 {
    EVENT_COUNTS[event as usize].load(Ordering::Relaxed)
}

pub fn exit(exit: &Exit) {
    if let Some(slot) = EXIT_COUNTS.get(exit.reason() as usize) {
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn print() {
    let mut line = crate::msg::Msg::new(format_args!("VCPU_RUN exits:"));
    for reason in ExitReason::ALL {
        let n = EXIT_COUNTS
            .get(reason as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed));
        if n > 0 {
            let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {} {n}", reason.name()));
        }
    }
    say!("{}", line.as_str());
    // A few per line, so that no line outgrows a message.
    for (names, counts) in NAMES.chunks(4).zip(EVENT_COUNTS.chunks(4)) {
        let mut line = crate::msg::Msg::new(format_args!("events:"));
        for (name, count) in names.iter().zip(counts) {
            let _ = core::fmt::Write::write_fmt(
                &mut line,
                format_args!(" {name} {},", count.load(Ordering::Relaxed)),
            );
        }
        say!("{}", line.as_str().trim_end_matches(','));
    }
}
