//! What the runner needs from the thing under test. The payload on QEMU implements it in
//! `tests/conformance/host` (HVC, loads that may be aborted, a guest driven through
//! VCPU_RUN, a second CPU); the model implements it in [`crate::model_backend`].

use crate::plan::Special;
use core::fmt;
use hvc_abi::Exit;

/// The completion the host gives a guest's forwarded HVC (exit GUEST_HVC): the guest's x0
/// afterwards (section 5.4).
pub const FORWARD_REPLY: u64 = 0x600D_F00D_0000_0001;
/// The data the host gives an MMIO read of the guest's load operation when the IPA has no
/// page (section 6, MMIO read completion).
pub const LOAD_SENTINEL: u64 = 0x5E47_1E10_0000_0002;

/// What a host read of a page's first word did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostRead {
    /// The read was performed.
    Value(u64),
    /// EL2 refused it: a synchronous external abort at EL1 with FAR = the address.
    Abort,
    /// Some other fault (ESR_EL1): not what section 7.4 promises.
    OtherFault(u64),
    /// A device register was read (the value is the device's, not compared).
    Device,
    /// The backend cannot read this page (outside the host's own stage-1 map).
    Unprobed,
}

/// What the conformance guest does when told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestOp {
    /// `HVC #0` with x0..x7 = these.
    Hvc([u64; 8]),
    /// A 64-bit load from this IPA (an MMIO read exit if it has no page).
    Load(u64),
}

/// Exits a guest operation caused besides the conformance guest's own channel traffic, in
/// order, and how the operation ended. Mirrors [`crate::outcome::Summary::Guest`] but
/// keeps raw registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestOutcome {
    pub exit: Option<Exit>,
    pub end: GuestOpEnd,
}

/// How a guest operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuestOpEnd {
    /// The guest reported x0..x3 after its HVC or load.
    Returned([u64; 4]),
    /// SYSTEM_OFF or SYSTEM_RESET: the guest does not return.
    Stopped,
    /// VCPU_RUN failed with these x0..x3.
    RunFailed([u64; 4]),
    /// The vCPU exited in a way the conformance guest never causes (or a second
    /// non-channel exit in one operation).
    Unexpected(Exit),
}

/// The backend cannot do what was asked (not a finding about the ABI, but it fails the
/// case all the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendError(pub &'static str);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The thing under test, as the runner drives it.
pub trait Backend {
    /// One host HVC: x0..x7 in, x0..x3 out, registers exactly as given.
    fn hvc(&mut self, regs: [u64; 8]) -> Result<[u64; 4], BackendError>;

    /// The host reads the first word of page `pfn`.
    fn host_read(&mut self, pfn: u64) -> HostRead;

    /// The host writes [`crate::states::marker`]`(pfn)` into the first word of host page
    /// `pfn` and cleans it to the point of coherency (a guest reads it with its MMU off).
    fn write_marker(&mut self, pfn: u64);

    /// The host copies the conformance guest's code into host page `pfn` and cleans it to
    /// the point of coherency.
    fn write_guest_code(&mut self, pfn: u64);

    /// vCPU `vcpu` of VM `handle`, running the conformance guest and idle (its last exit
    /// completed), performs `op`.
    fn guest_op(
        &mut self,
        handle: u64,
        vcpu: u32,
        op: GuestOp,
    ) -> Result<GuestOutcome, BackendError>;

    /// Makes vCPU `vcpu` of VM `handle` spin inside VCPU_RUN on another CPU, watching the
    /// first word of the control page `ctrl_pfn` (donated at [`crate::plan::CTRL_GFN`] and shared by the guest).
    /// Returns once the guest is known to be running.
    fn start_spinning(&mut self, handle: u64, vcpu: u32, ctrl_pfn: u64)
    -> Result<(), BackendError>;

    /// Stops the spinning vCPU and waits until its VCPU_RUN has returned and the guest's
    /// spin operation has completed (the vCPU is idle again).
    fn stop_spinning(&mut self) -> Result<GuestOutcome, BackendError>;

    /// `nr` contiguous fresh host pages (host RAM in state HOST that nothing uses).
    fn alloc_pages(&mut self, nr: u32) -> Option<u64>;

    /// The case is done with these host pages.
    fn retire_pages(&mut self, pfn: u64, nr: u32);

    /// A page whose state the platform fixes.
    fn special_pfn(&self, page: Special) -> u64;
}
