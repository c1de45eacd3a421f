//! Touching memory that may kill the toucher: the access is made in a forked child, whose
//! end says what happened. A SIGBUS handler in the child exits with the signal's `si_code`,
//! which tells the driver's refusal (`BUS_ADRERR`, the fault handler's VM_FAULT_SIGBUS)
//! from the hardware's (`BUS_OBJERR`, arm64's synchronous external abort: the payload
//! injected it because the page is in no host stage 2).

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The load completed (the low byte of the value read, as the child's exit status).
    Read,
    /// SIGBUS with this `si_code`.
    Sigbus(i32),
    /// Killed by another signal, or an unexpected exit status.
    Other(i32),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Read => write!(f, "the load completed"),
            Outcome::Sigbus(code) if *code == libc::BUS_ADRERR => {
                write!(f, "SIGBUS (BUS_ADRERR: the driver refused the fault)")
            }
            Outcome::Sigbus(code) if *code == libc::BUS_OBJERR => {
                write!(
                    f,
                    "SIGBUS (BUS_OBJERR: synchronous external abort from EL2)"
                )
            }
            Outcome::Sigbus(code) => write!(f, "SIGBUS (si_code {code})"),
            Outcome::Other(status) => write!(f, "wait status {status:#x}"),
        }
    }
}

const READ_STATUS: i32 = 0;
const SIGBUS_STATUS_BASE: i32 = 100;

extern "C" fn on_sigbus(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; _exit is
    // async-signal-safe.
    unsafe { libc::_exit(SIGBUS_STATUS_BASE + (*info).si_code) }
}

/// Loads one byte at `addr` in a child process.
pub fn load(addr: *const u8) -> Outcome {
    // SAFETY: fork in a process whose other threads (if any) hold no lock the child
    // needs: the child only installs a handler, makes one load and calls _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Outcome::Other(-1);
    }
    if pid == 0 {
        // SAFETY: the child: a handler that only calls _exit, then one volatile load from
        // a mapping inherited from the parent (it may fault: that is the probe).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
            std::ptr::read_volatile(addr);
            libc::_exit(READ_STATUS);
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            READ_STATUS => Outcome::Read,
            s if s > SIGBUS_STATUS_BASE => Outcome::Sigbus(s - SIGBUS_STATUS_BASE),
            _ => Outcome::Other(status),
        }
    } else {
        Outcome::Other(status)
    }
}
