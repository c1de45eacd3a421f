//! Which console lines end a `cargo xtask run`: the payload's fatal stop, a host kernel
//! panic, a host that says it failed. The payload halts forever after `[el2] FATAL` and
//! Linux spins after a panic, so without this a failed boot looks like a hang.

use std::time::Duration;

use crate::console::{Verdict, Watcher};

/// After a failure line, how long to keep reading so that the rest of the message (a
/// panic's backtrace, the payload's register dump) reaches the console and the log.
pub const FAILURE_GRACE: Duration = Duration::from_secs(2);

/// Lines that end the run at once, with a failure.
///
/// - `[el2] FATAL`: the payload stopped (el2/src/fatal.rs); it then halts forever.
/// - `Kernel panic - not syncing`: Linux's panic() (kernel/panic.c); with the default
///   `panic=0` it then spins forever.
/// - `init: HOST-FAIL`: the Linux host's /init found a check failed (xtask/src/linux.rs).
const FAILURE_MARKERS: &[&str] = &[
    "[el2] FATAL",
    "Kernel panic - not syncing",
    "init: HOST-FAIL",
];

/// Why a run did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A failure line; the run was ended.
    Line(String),
    /// QEMU's own "Terminated" (Ctrl-A x at its monitor).
    QuitByUser,
}

/// Watches a `cargo xtask run` console.
#[derive(Default)]
pub struct RunWatch {
    failure: Option<Failure>,
}

impl RunWatch {
    /// The first failure seen, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }
}

/// Whether `line` says the host or the payload failed:
/// [`FAILURE_MARKERS`]; a test host's `<prefix>FAIL: <reason>` (tests/el1-rt/src/exit.rs,
/// e.g. `demo: FAIL: ...`); a test host's summary `N passed, M failed` with M > 0
/// (tests/el1-rt/src/testing.rs), which comes after all its `test ... FAILED` lines.
pub fn is_failure_line(line: &str) -> bool {
    if FAILURE_MARKERS.iter().any(|m| line.contains(m)) {
        return true;
    }
    let line = line.trim();
    if line.starts_with("FAIL: ") {
        return true;
    }
    if let Some((prefix, rest)) = line.split_once(": ")
        && !prefix.is_empty()
        && !prefix.contains(char::is_whitespace)
        && rest.starts_with("FAIL: ")
    {
        return true;
    }
    failed_count(line).is_some_and(|failed| failed > 0)
}

/// M of a summary line `N passed, M failed`.
fn failed_count(line: &str) -> Option<u64> {
    let (passed, failed) = line.split_once(" passed, ")?;
    passed.parse::<u64>().ok()?;
    failed.strip_suffix(" failed")?.parse().ok()
}

impl Watcher for RunWatch {
    fn on_line(&mut self, line: &str) -> Verdict {
        if self.failure.is_none() {
            if is_failure_line(line) {
                self.failure = Some(Failure::Line(line.trim().to_string()));
            } else if line.trim() == "QEMU: Terminated" {
                self.failure = Some(Failure::QuitByUser);
            }
        }
        match self.failure {
            Some(Failure::Line(_)) => Verdict::StopWithin(FAILURE_GRACE),
            _ => Verdict::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payloads_fatal_stop_is_a_failure() {
        assert!(is_failure_line(
            "[el2] FATAL: invalid device tree: no /psci node"
        ));
    }

    #[test]
    fn a_linux_panic_is_a_failure() {
        assert!(is_failure_line(
            "[    1.234567] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
        ));
    }

    #[test]
    fn the_linux_inits_host_fail_is_a_failure() {
        assert!(is_failure_line(
            "init: HOST-FAIL: reading the EL2 carve-out did not fault (status 0)"
        ));
    }

    #[test]
    fn a_test_hosts_fail_line_and_failed_summary_are_failures() {
        assert!(is_failure_line("demo: FAIL: VM_CREATE returned DENIED"));
        assert!(is_failure_line("abi-host: FAIL: no free pages"));
        assert!(is_failure_line("FAIL: panic at src/main.rs:3"));
        assert!(is_failure_line("12 passed, 1 failed"));
    }

    #[test]
    fn passing_lines_are_not_failures() {
        for line in [
            "demo: PASS",
            "init: HOST-OK",
            "13 passed, 0 failed",
            "[el2] starting",
            "test a ... ok",
            // A failed test is reported at the summary, after the host's other tests.
            "test a ... FAILED: x",
            "[    0.1] pci 0000:00:01.0: FAIL: something a driver says in passing",
            "Booting Linux on physical CPU 0x0000000000 [0x000f0510]",
        ] {
            assert!(!is_failure_line(line), "{line}");
        }
    }

    #[test]
    fn the_first_failure_line_is_kept_and_the_run_stops_soon() {
        let mut w = RunWatch::default();
        assert_eq!(w.on_line("[el2] hello"), Verdict::Continue);
        assert_eq!(
            w.on_line("[el2] FATAL: memory plan: no room\r"),
            Verdict::StopWithin(FAILURE_GRACE)
        );
        assert_eq!(
            w.on_line("Kernel panic - not syncing: later"),
            Verdict::StopWithin(FAILURE_GRACE)
        );
        assert_eq!(
            w.failure(),
            Some(&Failure::Line("[el2] FATAL: memory plan: no room".into()))
        );
    }

    #[test]
    fn qemus_terminated_line_is_a_quit_not_a_pass() {
        let mut w = RunWatch::default();
        assert_eq!(w.on_line("QEMU: Terminated"), Verdict::Continue);
        assert_eq!(w.failure(), Some(&Failure::QuitByUser));
    }
}
