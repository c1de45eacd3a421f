//! QEMU never outlives xtask: SIGINT, SIGTERM and SIGHUP to xtask end the QEMU it runs, and
//! so does xtask dying any other way (SIGKILL, a panic).
//!
//! Two mechanisms, because either alone leaves a gap:
//! - QEMU is started with `PR_SET_PDEATHSIG = SIGKILL` (Linux prctl(2)): the kernel kills it
//!   when the thread that started it exits, whatever ended xtask.
//! - xtask catches SIGINT/SIGTERM/SIGHUP while QEMU runs, kills QEMU itself and notes the
//!   signal, so that it can still restore the terminal, say what happened and exit with
//!   128 + the signal number, as a shell does for a process a signal ended.
//!
//! Hand-written on `libc` (already in the workspace's lock file) rather than a signal crate:
//! the handler does two async-signal-safe things, kill(2) and an atomic store.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// The QEMU xtask is running now (0: none).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The first of SIGINT/SIGTERM/SIGHUP xtask received while a child ran (0: none).
static CAUGHT: AtomicI32 = AtomicI32::new(0);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(signal: libc::c_int) {
    let child = CHILD.load(Ordering::SeqCst);
    if child <= 0 {
        // Nothing of ours to end: behave as if no handler were installed.
        // SAFETY: signal(2) and raise(3) are async-signal-safe; SIG_DFL is a valid action.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        return;
    }
    let _ = CAUGHT.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    // SAFETY: kill(2) is async-signal-safe; `child` is the pid of our own child, which has
    // not been waited for yet (it is cleared before the wait reaps it), so the pid cannot
    // have been reused by another process.
    unsafe {
        libc::kill(child, libc::SIGKILL);
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (once, at start-up).
pub fn install() {
    for signal in SIGNALS {
        // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that only does async-signal-safe
        // work; sigaction with a zeroed, then filled, struct is the documented use.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Makes `command`'s process die with SIGKILL when the thread that starts it exits.
pub fn kill_with_parent(command: &mut Command) {
    // SAFETY of the closure (run between fork and exec in the child): prctl(2), getppid(2)
    // and _exit(2) are async-signal-safe and touch no memory shared with the parent.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: see the closure's comment above; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Records the running child so that a signal to xtask ends it.
pub fn running(pid: u32) {
    CHILD.store(pid as i32, Ordering::SeqCst);
}

/// The child is about to be reaped: a later signal must not go to its (reusable) pid.
pub fn finished() {
    CHILD.store(0, Ordering::SeqCst);
}

/// The signal that ended the run, if one did.
pub fn caught() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// A signal's name for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
