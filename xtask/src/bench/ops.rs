//! The operations the bench host measures (tests/bench-host/src/ops), what each number
//! means, and the targets of the issue that asked for the bench.
//!
//! From the raw sums of one `bench: result` line (a loop of `n` calls and its NOP twin):
//! - EL2 per call = el2 / n (PMU: INST_RETIRED at EL2 only), except for calls that run a
//!   guest ([`enters_guest`]): the payload stops the host's counters for the guest run, so
//!   there EL2 per call = hvc -> return - EL1 per call (EL2 plus the bench guest's few EL1
//!   instructions per run);
//! - EL1 per call = (el1 - nop_el1) / n + 1: the HVC itself plus what else the host ran at
//!   EL1 (the exception handler for the host abort);
//! - hvc -> return = (ticks - nop_ticks) * 16 / n + 1: virtual time at `-icount shift=0`
//!   (one CNTVCT tick = 16 instructions) from the HVC (or faulting load) to the instruction
//!   after it, the way the peer was measured. It equals EL2 + EL1 per call.

use super::parse::RawOp;

/// Instructions per CNTVCT_EL0 tick at `-icount shift=0` (62.5 MHz counter, 1 ns/insn).
pub const INSTRUCTIONS_PER_TICK: f64 = 16.0;

/// How an operation's headline number is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A host HVC: its own EL2 instructions.
    HostCall,
    /// A guest call made inside a VCPU_RUN: the run's EL2 instructions minus those of the
    /// VCPU_RUN round trip (`vcpu_run_hvc_exit`).
    GuestCall,
    /// A host load that EL2 answers with an injected abort.
    Abort,
}

/// A limit from the issue, and the number it applies to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// hvc -> return below this many instructions.
    HvcToReturn(f64),
    /// EL2 instructions of the call below this.
    El2(f64),
    /// EL2 instructions of the call per page below this.
    El2PerPage(f64),
}

pub struct OpSpec {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// Pages per call (0 if the call names no page).
    pub pages: u32,
    pub target: Option<Target>,
}

/// Every operation, in table order. `floor` comes from its own boot (floor.rs).
pub const OPS: &[OpSpec] = &[
    OpSpec {
        key: "floor",
        label: "floor: bare 8-instruction EL2 handler",
        kind: Kind::HostCall,
        pages: 0,
        target: None,
    },
    OpSpec {
        key: "unknown_hvc",
        label: "unknown HVC (dispatch floor)",
        kind: Kind::HostCall,
        pages: 0,
        target: Some(Target::HvcToReturn(40.0)),
    },
    OpSpec {
        key: "smccc_version",
        label: "SMCCC_VERSION (Rust dispatcher, no decode)",
        kind: Kind::HostCall,
        pages: 0,
        target: None,
    },
    OpSpec {
        key: "unknown_vendor_hvc",
        label: "unknown owner-6 HVC (full decode)",
        kind: Kind::HostCall,
        pages: 0,
        target: None,
    },
    OpSpec {
        key: "features",
        label: "FEATURES",
        kind: Kind::HostCall,
        pages: 0,
        target: Some(Target::HvcToReturn(60.0)),
    },
    OpSpec {
        key: "host_share_hyp",
        label: "HOST_SHARE_HYP, 1 page",
        kind: Kind::HostCall,
        pages: 1,
        target: Some(Target::HvcToReturn(560.0)),
    },
    OpSpec {
        key: "host_unshare_hyp",
        label: "HOST_UNSHARE_HYP, 1 page",
        kind: Kind::HostCall,
        pages: 1,
        target: Some(Target::HvcToReturn(670.0)),
    },
    OpSpec {
        key: "vm_donate_1",
        label: "VM_DONATE, 1 page",
        kind: Kind::HostCall,
        pages: 1,
        target: None,
    },
    OpSpec {
        key: "vm_donate_512",
        label: "VM_DONATE, 512 pages",
        kind: Kind::HostCall,
        pages: 512,
        target: None,
    },
    OpSpec {
        key: "vm_destroy",
        label: "VM_DESTROY of the donation VM (all pages above + 128 pool pages)",
        kind: Kind::HostCall,
        pages: 0,
        target: None,
    },
    OpSpec {
        key: "vm_reclaim_1",
        label: "VM_RECLAIM, 1 page (zeroed)",
        kind: Kind::HostCall,
        pages: 1,
        target: None,
    },
    OpSpec {
        key: "vm_reclaim_512",
        label: "VM_RECLAIM, 512 pages (zeroed)",
        kind: Kind::HostCall,
        pages: 512,
        target: None,
    },
    OpSpec {
        key: "vcpu_run_hvc_exit",
        label: "VCPU_RUN round trip (guest exits at once: GUEST_HVC)",
        kind: Kind::HostCall,
        pages: 0,
        target: Some(Target::El2(1500.0)),
    },
    OpSpec {
        key: "vcpu_run_mmio_exit",
        label: "VCPU_RUN round trip (guest exits at once: MMIO)",
        kind: Kind::HostCall,
        pages: 0,
        target: None,
    },
    OpSpec {
        key: "mem_share_1",
        label: "guest MEM_SHARE, 1 page",
        kind: Kind::GuestCall,
        pages: 1,
        target: Some(Target::El2(400.0)),
    },
    OpSpec {
        key: "mem_unshare_1",
        label: "guest MEM_UNSHARE, 1 page",
        kind: Kind::GuestCall,
        pages: 1,
        target: Some(Target::El2(500.0)),
    },
    OpSpec {
        key: "mem_share_512",
        label: "guest MEM_SHARE, 512 pages",
        kind: Kind::GuestCall,
        pages: 512,
        target: Some(Target::El2PerPage(40.0)),
    },
    OpSpec {
        key: "mem_unshare_512",
        label: "guest MEM_UNSHARE, 512 pages",
        kind: Kind::GuestCall,
        pages: 512,
        target: Some(Target::El2PerPage(40.0)),
    },
    OpSpec {
        key: "host_abort",
        label: "host load of a guest page until the abort reaches EL1",
        kind: Kind::Abort,
        pages: 1,
        target: None,
    },
];

/// Whether the operation runs a guest (VCPU_RUN, and the guest calls made inside one): its
/// EL2 figure is virtual time minus the host's EL1 instructions, and includes the few EL1
/// instructions of the bench guest's loop.
pub fn enters_guest(spec: &OpSpec) -> bool {
    spec.kind == Kind::GuestCall || spec.key.starts_with("vcpu_run_")
}

/// The round trip a guest call's run is measured against.
pub const ROUND_TRIP: &str = "vcpu_run_hvc_exit";

pub fn spec(key: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|s| s.key == key)
}

/// What one operation cost, per call.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub key: &'static str,
    pub calls: u64,
    /// EL2 instructions per call (for a guest call: of the whole VCPU_RUN).
    pub el2: f64,
    pub el2_min: u64,
    pub el2_max: u64,
    /// EL1 instructions per call, the HVC (or load) included.
    pub el1: f64,
    /// Virtual time from the HVC to its return, in instructions.
    pub hvc_to_return: f64,
    /// For a guest call: EL2 instructions of the call alone (run minus round trip).
    pub call_el2: Option<f64>,
    /// EL2 instructions the call costs above the floor's.
    pub above_floor: Option<f64>,
}

impl Figures {
    /// The EL2 instructions the operation itself costs: the call alone for guest calls.
    pub fn own_el2(&self) -> f64 {
        self.call_el2.unwrap_or(self.el2)
    }

    /// `own_el2` per page, for calls on more than one page.
    pub fn per_page(&self) -> Option<f64> {
        let pages = spec(self.key)?.pages;
        (pages > 1).then(|| self.own_el2() / f64::from(pages))
    }

    /// Whether the target is met, if the operation has one.
    pub fn meets(&self) -> Option<(Target, bool)> {
        let target = spec(self.key)?.target?;
        let ok = match target {
            Target::HvcToReturn(limit) => self.hvc_to_return < limit,
            Target::El2(limit) => self.own_el2() < limit,
            Target::El2PerPage(limit) => self.per_page().is_some_and(|p| p < limit),
        };
        Some((target, ok))
    }
}

/// Per-call figures of `raw`; `round_trip` is the EL2 count of a VCPU_RUN round trip and
/// `floor` the floor's, when known.
pub fn figures(
    spec: &'static OpSpec,
    raw: &RawOp,
    round_trip: Option<f64>,
    floor: Option<f64>,
) -> Figures {
    let n = raw.n as f64;
    let el1 = (raw.el1 as f64 - raw.nop_el1 as f64) / n + 1.0;
    let hvc_to_return = (raw.ticks as f64 - raw.nop_ticks as f64) * INSTRUCTIONS_PER_TICK / n + 1.0;
    // The payload stops the host's PMU counters for a guest run (the host must count
    // nothing of a guest), so for those calls the PMU sees only EL2's work before and
    // after the run; virtual time still counts everything.
    let el2 = if enters_guest(spec) {
        hvc_to_return - el1
    } else {
        raw.el2 as f64 / n
    };
    let call_el2 = match spec.kind {
        Kind::GuestCall => round_trip.map(|trip| el2 - trip),
        _ => None,
    };
    let own = call_el2.unwrap_or(el2);
    Figures {
        key: spec.key,
        calls: raw.n,
        el2,
        el2_min: raw.el2_min,
        el2_max: raw.el2_max,
        el1,
        hvc_to_return,
        call_el2,
        above_floor: match (spec.kind, floor) {
            (Kind::HostCall | Kind::GuestCall, Some(floor)) if spec.key != "floor" => {
                Some(own - floor)
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(
        op: &str,
        n: u64,
        ticks: u64,
        nop_ticks: u64,
        el2: u64,
        el1: u64,
        nop_el1: u64,
    ) -> RawOp {
        RawOp {
            op: op.into(),
            n,
            ticks,
            nop_ticks,
            el2,
            el2_min: 0,
            el2_max: 0,
            el1,
            nop_el1,
        }
    }

    #[test]
    fn host_call_figures_come_from_the_loop_and_its_twin() {
        let f = figures(
            spec("unknown_hvc").unwrap(),
            &raw("unknown_hvc", 20000, 50001, 35001, 240000, 560004, 560004),
            None,
            Some(8.0),
        );
        assert_eq!(f.el2, 12.0);
        assert_eq!(f.el1, 1.0);
        assert_eq!(f.hvc_to_return, 13.0);
        assert_eq!(f.above_floor, Some(4.0));
        assert_eq!(f.meets(), Some((Target::HvcToReturn(40.0), true)));
    }

    #[test]
    fn guest_calls_take_el2_from_virtual_time_subtract_the_round_trip_and_count_per_page() {
        let f = figures(
            spec("mem_share_512").unwrap(),
            &raw("mem_share_512", 8, 130868, 14, 2093600, 284, 228),
            Some(1003.0),
            None,
        );
        // (130868 - 14) * 16 / 8 + 1 = 261709 instructions from hvc to return, 8 of them
        // the host's at EL1: the PMU's EL2 sum (2093600 / 8) misses the guest run.
        assert_eq!(f.el2, 261701.0);
        assert_eq!(f.call_el2, Some(260698.0));
        assert_eq!(f.el1, 8.0);
        let per_page = f.per_page().unwrap();
        assert!((per_page - 509.17).abs() < 0.01, "{per_page}");
        assert_eq!(f.meets(), Some((Target::El2PerPage(40.0), false)));
    }

    #[test]
    fn every_key_is_listed_once() {
        for (i, a) in OPS.iter().enumerate() {
            assert!(OPS[i + 1..].iter().all(|b| b.key != a.key), "{}", a.key);
        }
        assert!(spec(ROUND_TRIP).is_some());
    }
}
