//! The host calls the stress makes, each checked against what docs/abi.md allows for it
//! and counted by outcome. The stress only passes well-formed arguments (no MBZ bits, counts
//! 1..=2, addresses inside RAM and the VM's IPA space), so the stateless errors
//! (INVALID_PARAMETER, RANGE) and NOT_SUPPORTED are never allowed; what remains depends on
//! the races between CPUs, and every such outcome is listed per call below.

use super::violations;
use core::sync::atomic::{AtomicU32, Ordering};
use el1_rt::host_calls;
use el1_rt::say;
use hvc_abi::{Error, HostCall, ReturnError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    ShareHyp,
    UnshareHyp,
    Topup,
    Donate,
    VcpuCreate,
    VcpuRun,
    Destroy,
    Reclaim,
}

const CALLS: usize = 8;

impl Call {
    const ALL: [Call; CALLS] = [
        Call::ShareHyp,
        Call::UnshareHyp,
        Call::Topup,
        Call::Donate,
        Call::VcpuCreate,
        Call::VcpuRun,
        Call::Destroy,
        Call::Reclaim,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Call::ShareHyp => "HOST_SHARE_HYP",
            Call::UnshareHyp => "HOST_UNSHARE_HYP",
            Call::Topup => "VM_TOPUP",
            Call::Donate => "VM_DONATE",
            Call::VcpuCreate => "VCPU_CREATE",
            Call::VcpuRun => "VCPU_RUN",
            Call::Destroy => "VM_DESTROY",
            Call::Reclaim => "VM_RECLAIM",
        }
    }

    /// The errors docs/abi.md allows for this call with the stress's arguments, whatever
    /// other CPUs do meanwhile (success is always allowed):
    /// - a handle may have been destroyed by another CPU: NOT_FOUND;
    /// - a page may be in any state: DENIED (section 7.1);
    /// - an IPA may be mapped already: DENIED;
    /// - the VM's pool may be used up by other CPUs' mappings: NO_MEMORY (section 7.3);
    /// - a vCPU may run on another CPU: BUSY for VCPU_RUN and VM_DESTROY (section 8);
    /// - VCPU_CREATE is only made for vCPU 0, which every stress VM has: BUSY.
    ///
    /// VCPU_RUN never gets INVALID_PARAMETER: the stress always completes with 0.
    fn allowed_errors(self) -> &'static [Error] {
        use Error::*;
        match self {
            Call::ShareHyp | Call::UnshareHyp | Call::Reclaim => &[Denied],
            Call::Topup => &[NotFound, Denied],
            Call::Donate => &[NotFound, Denied, NoMemory],
            Call::VcpuCreate => &[NotFound, Busy],
            Call::VcpuRun | Call::Destroy => &[NotFound, Busy],
        }
    }

    /// Whether a success defines x1..x3 (only VCPU_RUN's exit here).
    fn has_results(self) -> bool {
        self == Call::VcpuRun
    }

    fn matches(self, call: &HostCall) -> bool {
        matches!(
            (self, call),
            (Call::ShareHyp, HostCall::HostShareHyp { .. })
                | (Call::UnshareHyp, HostCall::HostUnshareHyp { .. })
                | (Call::Topup, HostCall::VmTopup { .. })
                | (Call::Donate, HostCall::VmDonate { .. })
                | (Call::VcpuCreate, HostCall::VcpuCreate { .. })
                | (Call::VcpuRun, HostCall::VcpuRun { .. })
                | (Call::Destroy, HostCall::VmDestroy { .. })
                | (Call::Reclaim, HostCall::VmReclaim { .. })
        )
    }
}

/// What a call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok([u64; 3]),
    Err(Error),
    /// x0 held a value the ABI never returns (already reported as a violation).
    Bad,
}

/// Columns of the outcome table: OK, the errors in `Error::ALL` order, anything else.
const COLUMNS: usize = 2 + Error::ALL.len();
const OTHER_COLUMN: usize = COLUMNS - 1;

static COUNTS: [[AtomicU32; COLUMNS]; CALLS] =
    [const { [const { AtomicU32::new(0) }; COLUMNS] }; CALLS];

fn column(error: Error) -> usize {
    1 + Error::ALL
        .iter()
        .position(|&e| e == error)
        .unwrap_or(OTHER_COLUMN - 1)
}

/// Makes `host_call` (which must be a `call`) on CPU `cpu`, counts its outcome and reports
/// a violation if the document does not allow it.
pub fn make(cpu: usize, call: Call, host_call: HostCall) -> Outcome {
    if !call.matches(&host_call) {
        violations::report(
            cpu,
            format_args!("stress bug: {host_call:?} made as {call:?}"),
        );
        return Outcome::Bad;
    }
    let ret = host_calls::raw(host_call);
    let regs = [ret.x1, ret.x2, ret.x3];
    let row = &COUNTS[call as usize];
    match ret.into_result() {
        Ok(results) => {
            row[0].fetch_add(1, Ordering::Relaxed);
            if !call.has_results() && results != [0; 3] {
                violations::report(
                    cpu,
                    format_args!("{} succeeded with x1..x3 = {regs:#x?}, not 0", call.name()),
                );
            }
            Outcome::Ok(results)
        }
        Err(ReturnError::Abi(error)) => {
            row[column(error)].fetch_add(1, Ordering::Relaxed);
            if !call.allowed_errors().contains(&error) {
                violations::report(
                    cpu,
                    format_args!(
                        "{host_call:?} returned {error}, which the document does not allow here"
                    ),
                );
            } else if regs != [0; 3] {
                violations::report(
                    cpu,
                    format_args!(
                        "{} returned {error} with x1..x3 = {regs:#x?}, not 0",
                        call.name()
                    ),
                );
            }
            Outcome::Err(error)
        }
        Err(ReturnError::Unknown(x0)) => {
            row[OTHER_COLUMN].fetch_add(1, Ordering::Relaxed);
            violations::report(
                cpu,
                format_args!("{host_call:?} returned x0 = {x0:#x}, not a value of the ABI"),
            );
            Outcome::Bad
        }
    }
}

/// Total number of calls made.
pub fn total() -> u32 {
    COUNTS
        .iter()
        .flat_map(|row| row.iter())
        .map(|count| count.load(Ordering::Relaxed))
        .sum()
}

/// Prints one line per call: its count and the count of each outcome seen.
pub fn print_table() {
    for call in Call::ALL {
        let row = &COUNTS[call as usize];
        let count = |column: usize| row[column].load(Ordering::Relaxed);
        let calls: u32 = (0..COLUMNS).map(count).sum();
        let mut line = crate::msg::Msg::new(format_args!("{:<18} {calls:>5} calls:", call.name()));
        let mut add = |name: &str, n: u32| {
            if n > 0 {
                let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {name} {n}"));
            }
        };
        add("OK", count(0));
        for error in Error::ALL {
            add(error.name(), count(column(error)));
        }
        add("OTHER", count(OTHER_COLUMN));
        say!("{}", line.as_str());
    }
}
