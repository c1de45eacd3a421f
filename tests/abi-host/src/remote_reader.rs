//! A second CPU that reads host memory on request, for checks that another CPU's TLB
//! cannot keep a mapping EL2 removed.
//!
//! Under QEMU, every VCPU_RUN rewrites VTTBR_EL2 on the CPU that runs the guest, which
//! flushes that CPU's TLB: a stale entry left by an EL2 that forgot `tlbi vmalle1is`
//! (docs/abi.md 8: "no CPU can use the old mapping afterwards") only survives on a CPU
//! that did not run the guest. This helper is such a CPU: it loads the mapping into its
//! TLB with a read before the change and reads again after it.
//!
//! Protocol: the boot CPU stores the address, then a new request number; the helper
//! answers by storing the outcome, then the request number in DONE. Every wait is bounded.

use crate::runner::{Ctx, Failure, TestResult, bail};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use el1_rt::exceptions::Abort;
use el1_rt::timeout::wait_until;
use el1_rt::{cpus, probe, psci};

/// How long a CPU may take to come up, answer, or be reported off.
const TIMEOUT_MS: u64 = 10_000;

static ADDRESS: AtomicUsize = AtomicUsize::new(0);
static REQUEST: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
static EXIT: AtomicBool = AtomicBool::new(false);
static READ_OK: AtomicBool = AtomicBool::new(false);
static VALUE: AtomicU64 = AtomicU64::new(0);
static ESR: AtomicU64 = AtomicU64::new(0);
static FAR: AtomicU64 = AtomicU64::new(0);

/// The running helper CPU. Call [`stop`](Self::stop) on every path.
pub struct RemoteReader {
    index: usize,
    mpidr: u64,
    next: u64,
}

impl RemoteReader {
    /// Starts the first CPU other than this one.
    pub fn start(ctx: &Ctx) -> Result<Self, Failure> {
        let (index, mpidr) = crate::runner::another_cpu(ctx)?;
        EXIT.store(false, Ordering::Relaxed);
        REQUEST.store(0, Ordering::Relaxed);
        DONE.store(0, Ordering::Release);
        let status = cpus::start(index, mpidr, &ctx.platform.mmu, serve);
        if status != 0 {
            bail!("PSCI CPU_ON of cpu {index} returned {status}");
        }
        Ok(Self {
            index,
            mpidr,
            next: 1,
        })
    }

    /// Has the helper CPU read the u64 at `address` (a probe: an abort comes back as
    /// `Err`). `Err(Failure)` if it does not answer in time.
    pub fn read(&mut self, address: usize) -> Result<Result<u64, Abort>, Failure> {
        let request = self.next;
        self.next += 1;
        ADDRESS.store(address, Ordering::Relaxed);
        REQUEST.store(request, Ordering::Release);
        if !wait_until(TIMEOUT_MS, || DONE.load(Ordering::Acquire) == request) {
            bail!(
                "cpu {} did not answer a read within {TIMEOUT_MS} ms",
                self.index
            );
        }
        Ok(if READ_OK.load(Ordering::Relaxed) {
            Ok(VALUE.load(Ordering::Relaxed))
        } else {
            Err(Abort {
                esr: ESR.load(Ordering::Relaxed),
                far: FAR.load(Ordering::Relaxed),
            })
        })
    }

    /// Tells the helper to stop and waits until PSCI reports its CPU off.
    pub fn stop(self) -> TestResult {
        EXIT.store(true, Ordering::Release);
        if !wait_until(TIMEOUT_MS, || {
            psci::affinity_info(self.mpidr) == psci::AFFINITY_OFF
        }) {
            bail!(
                "cpu {} was not reported off (CPU_OFF error {})",
                self.index,
                cpus::cpu_off_error(self.index)
            );
        }
        Ok(())
    }
}

/// The helper CPU's task: answer read requests until EXIT; el1-rt then calls CPU_OFF.
fn serve(_index: usize) {
    let mut answered = 0;
    while !EXIT.load(Ordering::Acquire) {
        let request = REQUEST.load(Ordering::Acquire);
        if request == answered {
            core::hint::spin_loop();
            continue;
        }
        match probe::read_u64(ADDRESS.load(Ordering::Relaxed)) {
            Ok(value) => {
                VALUE.store(value, Ordering::Relaxed);
                READ_OK.store(true, Ordering::Relaxed);
            }
            Err(abort) => {
                ESR.store(abort.esr, Ordering::Relaxed);
                FAR.store(abort.far, Ordering::Relaxed);
                READ_OK.store(false, Ordering::Relaxed);
            }
        }
        answered = request;
        DONE.store(request, Ordering::Release);
    }
}
