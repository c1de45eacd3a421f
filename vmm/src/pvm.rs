//! Safe wrappers over the driver's fds: [`Device`], [`Vm`], [`GuestMemfd`], [`Vcpu`] and
//! [`Mapping`]. Errors are the ioctl's errno ([`Errno`]).

use crate::uapi::{self, CreateGuestMemfd, CreateVcpu, CreateVm, MemoryRegion, Run, Stats};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An errno from a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    fn last() -> Self {
        Self(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// `EINVAL`, `EBUSY`... as Linux spells it.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::EINVAL => "EINVAL",
            libc::EBUSY => "EBUSY",
            libc::EBADF => "EBADF",
            libc::EEXIST => "EEXIST",
            libc::E2BIG => "E2BIG",
            libc::ENOTTY => "ENOTTY",
            libc::ENODEV => "ENODEV",
            libc::ENOMEM => "ENOMEM",
            libc::EINTR => "EINTR",
            libc::EPERM => "EPERM",
            libc::ENOSPC => "ENOSPC",
            libc::EFAULT => "EFAULT",
            libc::EIO => "EIO",
            libc::ENOENT => "ENOENT",
            _ => "another errno",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

pub type Result<T> = std::result::Result<T, Errno>;

/// `ioctl(fd, request, arg)`; the driver's result (a count or a new fd) on success.
pub fn ioctl(fd: RawFd, request: u64, arg: u64) -> Result<i32> {
    // SAFETY: every request of the driver either takes no argument or a pointer to a
    // structure of the size encoded in `request`; callers pass a pointer to such a live
    // structure (or a plain value the tests want refused), which the kernel only reads or
    // writes within that size. A wrong fd or request only gives an errno.
    let ret = unsafe { libc::ioctl(fd, request as _, arg) };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

fn ioctl_with<T>(fd: RawFd, request: u64, arg: &T) -> Result<i32> {
    ioctl(fd, request, arg as *const T as u64)
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by the driver as a new fd of this process, owned by
    // nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `/dev/el2-pvm`.
pub struct Device(File);

impl Device {
    pub fn open() -> std::io::Result<Self> {
        File::options()
            .read(true)
            .write(true)
            .open(uapi::DEVICE)
            .map(Self)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn api_version(&self) -> Result<i32> {
        ioctl(self.fd(), uapi::GET_API_VERSION, 0)
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        ioctl(self.fd(), uapi::GET_STATS, &mut stats as *mut Stats as u64)?;
        Ok(stats)
    }

    pub fn create_vm_with(&self, args: &CreateVm) -> Result<Vm> {
        let fd = ioctl_with(self.fd(), uapi::CREATE_VM, args)?;
        Ok(Vm(owned(fd)))
    }

    pub fn create_vm(&self, nr_vcpus: u32, ipa_bits: u32) -> Result<Vm> {
        self.create_vm_with(&CreateVm {
            nr_vcpus,
            ipa_bits,
            ..Default::default()
        })
    }
}

/// A VM fd.
pub struct Vm(OwnedFd);

impl Vm {
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn create_guest_memfd_with(&self, args: &CreateGuestMemfd) -> Result<GuestMemfd> {
        let fd = ioctl_with(self.fd(), uapi::CREATE_GUEST_MEMFD, args)?;
        Ok(GuestMemfd { fd: owned(fd) })
    }

    pub fn create_guest_memfd(&self, size: usize, flags: u64) -> Result<GuestMemfd> {
        self.create_guest_memfd_with(&CreateGuestMemfd {
            size: size as u64,
            flags,
            ..Default::default()
        })
    }

    pub fn set_memory_with(&self, region: &MemoryRegion) -> Result<()> {
        ioctl_with(self.fd(), uapi::SET_MEMORY, region).map(drop)
    }

    /// Binds `memory[offset..offset+size]` at `gpa`, its first bytes `init`.
    pub fn set_memory(
        &self,
        gpa: u64,
        memory: &GuestMemfd,
        offset: u64,
        size: usize,
        init: &[u8],
    ) -> Result<()> {
        self.set_memory_with(&MemoryRegion {
            guest_phys_addr: gpa,
            memory_size: size as u64,
            guest_memfd_offset: offset,
            guest_memfd: memory.fd() as u32,
            init_addr: if init.is_empty() {
                0
            } else {
                init.as_ptr() as u64
            },
            init_size: init.len() as u64,
            ..Default::default()
        })
    }

    pub fn create_vcpu_with(&self, args: &CreateVcpu) -> Result<Vcpu> {
        let fd = owned(ioctl_with(self.fd(), uapi::CREATE_VCPU, args)?);
        let run = Mapping::new(fd.as_raw_fd(), uapi::RUN_MMAP_SIZE, libc::MAP_SHARED)?;
        Ok(Vcpu { fd, run })
    }

    pub fn create_vcpu(&self, index: u32, entry_ipa: u64, x0: u64) -> Result<Vcpu> {
        self.create_vcpu_with(&CreateVcpu {
            index,
            entry_ipa,
            x0,
            ..Default::default()
        })
    }
}

/// A guest memory fd.
pub struct GuestMemfd {
    fd: OwnedFd,
}

impl GuestMemfd {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn map(&self, len: usize, flags: i32) -> Result<Mapping> {
        Mapping::new(self.fd(), len, flags)
    }
}

/// An `mmap()` of an fd, unmapped on drop.
pub struct Mapping {
    addr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with the kernel; it is only accessed with
// volatile accesses through raw pointers and may be used from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub fn new(fd: RawFd, len: usize, flags: i32) -> Result<Self> {
        // SAFETY: a new mapping at an address the kernel chooses; it aliases no Rust
        // object.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(Self {
            addr: addr.cast(),
            len,
        })
    }

    pub fn addr(&self) -> *mut u8 {
        self.addr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this object made; no reference into it
        // outlives the object.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// A vCPU fd and its mmap()ed run structure.
pub struct Vcpu {
    fd: OwnedFd,
    run: Mapping,
}

impl Vcpu {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// `EL2_PVM_RUN`; the exit is in [`run`](Self::run).
    pub fn run_once(&self) -> Result<()> {
        ioctl(self.fd(), uapi::RUN, 0).map(drop)
    }

    /// The run structure as the driver left it.
    pub fn run(&self) -> Run {
        // SAFETY: the mapping is the vCPU's run page (4096 bytes, page aligned), valid
        // while `self` lives; the driver writes it only inside RUN.
        unsafe { std::ptr::read_volatile(self.run.addr().cast::<Run>()) }
    }

    fn run_ptr(&self) -> *mut Run {
        self.run.addr().cast()
    }

    /// The data a pending MMIO read completes with at the next RUN.
    pub fn set_mmio_data(&self, data: u64) {
        // SAFETY: as in `run`; a field of the union the next RUN reads.
        unsafe { std::ptr::addr_of_mut!((*self.run_ptr()).exit.mmio.data).write_volatile(data) }
    }

    pub fn set_immediate_exit(&self, on: bool) {
        // SAFETY: as in `run`.
        unsafe {
            std::ptr::addr_of_mut!((*self.run_ptr()).immediate_exit).write_volatile(u8::from(on))
        }
    }
}
