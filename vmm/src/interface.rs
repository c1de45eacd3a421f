//! Checks of the driver's interface from user space: the behaviours Linux's own
//! guest_memfd selftest checks, on this driver's guest memory fd (`vmm gmem`), and bad
//! arguments, each refused with its errno (`vmm bad-input`).

use crate::check::Checks;
use crate::guest::{Event, Guest};
use crate::probe::{self, Outcome};
use crate::pvm::{Device, Errno, Mapping, Result, ioctl};
use crate::uapi::{
    self, CreateGuestMemfd, CreateVcpu, CreateVm, GUEST_MEMFD_FLAG_MMAP, MemoryRegion, PAGE_SIZE,
};
use libc::{E2BIG, EBADF, EBUSY, EEXIST, EFAULT, EINTR, EINVAL, ENODEV, ENOTTY};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use test_guest::{Command, Report, Step};

/// `_IO(EL2_PVM_IO, 0xff)`: no ioctl of the driver.
const UNKNOWN_IOCTL: u64 = 0xe2ff;

fn open(c: &mut Checks) -> Option<Device> {
    match Device::open() {
        Ok(dev) => Some(dev),
        Err(e) => {
            c.check(false, "open /dev/el2-pvm", e);
            None
        }
    }
}

fn rw(fd: i32, write: bool) -> Result<isize> {
    let mut buf = [0u8; 16];
    // SAFETY: a read into / write from a live 16-byte buffer.
    let n = unsafe {
        if write {
            libc::write(fd, buf.as_ptr().cast(), buf.len())
        } else {
            libc::read(fd, buf.as_mut_ptr().cast(), buf.len())
        }
    };
    if n < 0 {
        Err(Errno(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    } else {
        Ok(n)
    }
}

/// `vmm gmem`: Linux's guest_memfd selftest behaviours (tools/testing/selftests/kvm/
/// guest_memfd_test.c), on our fd. Write-then-read-back on a shared page is a step of the
/// story (`vmm story`).
pub fn guest_memfd() -> bool {
    let mut c = Checks::new("gmem");
    let Some(dev) = open(&mut c) else {
        return c.finish();
    };
    let vm = match dev.create_vm(1, 32) {
        Ok(vm) => vm,
        Err(e) => {
            c.check(false, "create a VM", e);
            return c.finish();
        }
    };
    for (size, errno, what) in [
        (0, EINVAL, "a guest memory fd of size 0"),
        (PAGE_SIZE - 1, EINVAL, "a guest memory fd of 4095 bytes"),
        (PAGE_SIZE + 1, EINVAL, "a guest memory fd of 4097 bytes"),
        (2 << 30, E2BIG, "a guest memory fd of 2 GiB"),
    ] {
        c.errno(
            what,
            vm.create_guest_memfd(size, GUEST_MEMFD_FLAG_MMAP),
            errno,
        );
    }
    for bit in 1..64 {
        let got = vm.create_guest_memfd(PAGE_SIZE, 1 << bit);
        if got.as_ref().err() != Some(&Errno(EINVAL)) {
            c.errno(&format!("guest memory flag bit {bit}"), got, EINVAL);
        }
    }
    c.check(true, "every unknown flag bit (1..63) is refused", "EINVAL");
    let reserved = CreateGuestMemfd {
        size: PAGE_SIZE as u64,
        reserved: [0, 0, 0, 0, 0, 1],
        ..Default::default()
    };
    c.errno(
        "a nonzero reserved field",
        vm.create_guest_memfd_with(&reserved),
        EINVAL,
    );

    let plain = vm.create_guest_memfd(PAGE_SIZE, 0);
    match &plain {
        Ok(m) => c.errno(
            "mmap of a guest memory fd without the MMAP flag",
            m.map(PAGE_SIZE, libc::MAP_SHARED),
            ENODEV,
        ),
        Err(e) => {
            c.check(false, "create a guest memory fd without MMAP", e);
        }
    }

    let pages = 4;
    let mem = match vm.create_guest_memfd(pages * PAGE_SIZE, GUEST_MEMFD_FLAG_MMAP) {
        Ok(mem) => mem,
        Err(e) => {
            c.check(false, "create a guest memory fd with MMAP", e);
            return c.finish();
        }
    };
    c.errno(
        "mmap(MAP_PRIVATE) of a guest memory fd",
        mem.map(pages * PAGE_SIZE, libc::MAP_PRIVATE),
        EINVAL,
    );
    c.errno("read() of a guest memory fd", rw(mem.fd(), false), EINVAL);
    c.errno("write() to a guest memory fd", rw(mem.fd(), true), EINVAL);

    // Twice the fd's size: the second half lies past its end.
    let map = match mem.map(2 * pages * PAGE_SIZE, libc::MAP_SHARED) {
        Ok(map) => map,
        Err(e) => {
            c.check(false, "mmap(MAP_SHARED) of a guest memory fd", e);
            return c.finish();
        }
    };
    c.check(true, "mmap(MAP_SHARED) of a guest memory fd", "mapped");
    let at = |page: usize| map.addr().wrapping_add(page * PAGE_SIZE) as *const u8;
    let sigbus = Outcome::Sigbus(libc::BUS_ADRERR);
    let o = probe::load(at(0));
    c.check(
        o == sigbus,
        "a page of the fd that backs no guest memory yet",
        o,
    );
    match vm.set_memory(0x8000_0000, &mem, 0, pages * PAGE_SIZE, b"private") {
        Ok(()) => {
            for page in 0..pages {
                let o = probe::load(at(page));
                c.check(o == sigbus, &format!("private page {page} of the fd"), o);
            }
        }
        Err(e) => {
            c.check(false, "bind the fd as guest memory", e);
        }
    }
    let o = probe::load(at(pages + 1));
    c.check(o == sigbus, "a page past the end of the fd", o);

    let other = dev.create_vm(1, 32);
    if let Ok(other) = &other {
        let stranger = other.create_guest_memfd(PAGE_SIZE, 0);
        if let Ok(stranger) = &stranger {
            c.errno(
                "binding another VM's guest memory fd",
                vm.set_memory(0x9000_0000, stranger, 0, PAGE_SIZE, &[]),
                EINVAL,
            );
        }
    }
    c.finish()
}

fn region(gmem: i32, gpa: u64, size: u64, offset: u64) -> MemoryRegion {
    MemoryRegion {
        guest_phys_addr: gpa,
        memory_size: size,
        guest_memfd_offset: offset,
        guest_memfd: gmem as u32,
        ..Default::default()
    }
}

/// `vmm bad-input`: every refusal with its errno (docs/linux.md's tables).
pub fn bad_input(image: &[u8]) -> bool {
    let mut c = Checks::new("bad-input");
    let Some(dev) = open(&mut c) else {
        return c.finish();
    };
    c.check(
        dev.api_version() == Ok(uapi::API_VERSION),
        "GET_API_VERSION",
        format!("{:?}", dev.api_version()),
    );
    c.errno(
        "an unknown ioctl on /dev/el2-pvm",
        ioctl(dev.fd(), UNKNOWN_IOCTL, 0),
        ENOTTY,
    );
    c.errno(
        "GET_STATS to a bad pointer",
        ioctl(dev.fd(), uapi::GET_STATS, 0x10),
        EFAULT,
    );
    for (args, errno, what) in [
        (
            CreateVm {
                nr_vcpus: 0,
                ipa_bits: 32,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VM with 0 vCPUs",
        ),
        (
            CreateVm {
                nr_vcpus: 9,
                ipa_bits: 32,
                ..Default::default()
            },
            E2BIG,
            "CREATE_VM with 9 vCPUs",
        ),
        (
            CreateVm {
                nr_vcpus: 1,
                ipa_bits: 31,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VM with 31 IPA bits",
        ),
        (
            CreateVm {
                nr_vcpus: 1,
                ipa_bits: 41,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VM with 41 IPA bits",
        ),
        (
            CreateVm {
                nr_vcpus: 1,
                ipa_bits: 32,
                flags: 1,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VM with a flag",
        ),
        (
            CreateVm {
                nr_vcpus: 1,
                ipa_bits: 32,
                reserved: [0, 1],
                ..Default::default()
            },
            EINVAL,
            "CREATE_VM with a reserved field",
        ),
    ] {
        c.errno(what, dev.create_vm_with(&args), errno);
    }

    let (Ok(vm), Ok(other)) = (dev.create_vm(2, 32), dev.create_vm(1, 32)) else {
        c.check(false, "create two VMs", "failed");
        return c.finish();
    };
    c.errno(
        "an unknown ioctl on a VM fd",
        ioctl(vm.fd(), UNKNOWN_IOCTL, 0),
        ENOTTY,
    );
    let (Ok(mem), Ok(stranger)) = (
        vm.create_guest_memfd(4 * PAGE_SIZE, 0),
        other.create_guest_memfd(PAGE_SIZE, 0),
    ) else {
        c.check(false, "create guest memory fds", "failed");
        return c.finish();
    };
    let m = mem.fd();
    let p = PAGE_SIZE as u64;
    let gpa = 0x4000_0000;
    for (r, errno, what) in [
        (region(-1, gpa, p, 0), EBADF, "SET_MEMORY with a bogus fd"),
        (
            region(1 << 20, gpa, p, 0),
            EBADF,
            "SET_MEMORY with an fd number nothing has",
        ),
        (
            region(dev.fd(), gpa, p, 0),
            EINVAL,
            "SET_MEMORY with an fd that is no guest memory",
        ),
        (
            region(vm.fd(), gpa, p, 0),
            EINVAL,
            "SET_MEMORY with the VM's own fd",
        ),
        (
            region(stranger.fd(), gpa, p, 0),
            EINVAL,
            "SET_MEMORY with another VM's guest memory",
        ),
        (region(m, gpa, 0, 0), EINVAL, "SET_MEMORY of size 0"),
        (
            region(m, gpa + 1, p, 0),
            EINVAL,
            "SET_MEMORY at an unaligned address",
        ),
        (
            region(m, gpa, p + 1, 0),
            EINVAL,
            "SET_MEMORY of an unaligned size",
        ),
        (
            region(m, gpa, p, 1),
            EINVAL,
            "SET_MEMORY at an unaligned fd offset",
        ),
        (
            region(m, (1 << 32) - p, 2 * p, 0),
            E2BIG,
            "SET_MEMORY past the VM's IPA space",
        ),
        (region(m, !0xfff, 2 * p, 0), E2BIG, "SET_MEMORY that wraps"),
        (
            region(m, gpa, 5 * p, 0),
            E2BIG,
            "SET_MEMORY larger than the fd",
        ),
        (
            region(m, gpa, p, 4 * p),
            E2BIG,
            "SET_MEMORY at an offset past the fd's end",
        ),
        (
            region(m, gpa, 1 << 40, 0),
            E2BIG,
            "SET_MEMORY of a huge size",
        ),
        (
            MemoryRegion {
                flags: 1,
                ..region(m, gpa, p, 0)
            },
            EINVAL,
            "SET_MEMORY with a flag",
        ),
        (
            MemoryRegion {
                init_size: 2 * p,
                init_addr: 0x1000,
                ..region(m, gpa, p, 0)
            },
            EINVAL,
            "SET_MEMORY with more initial data than memory",
        ),
        (
            MemoryRegion {
                init_size: 8,
                ..region(m, gpa, p, 0)
            },
            EINVAL,
            "SET_MEMORY with initial data at address 0",
        ),
    ] {
        c.errno(what, vm.set_memory_with(&r), errno);
    }
    c.check(
        vm.set_memory_with(&region(m, gpa, 2 * p, 0)).is_ok(),
        "SET_MEMORY of 2 pages",
        "bound",
    );
    c.errno(
        "SET_MEMORY overlapping a bound range",
        vm.set_memory_with(&region(m, gpa + p, 2 * p, 2 * p)),
        EEXIST,
    );
    c.errno(
        "SET_MEMORY of fd pages already bound",
        vm.set_memory_with(&region(m, gpa + 0x10_0000, p, p)),
        EEXIST,
    );

    for (args, errno, what) in [
        (
            CreateVcpu {
                index: 2,
                ..Default::default()
            },
            E2BIG,
            "CREATE_VCPU beyond the VM's vCPUs",
        ),
        (
            CreateVcpu {
                index: 1,
                entry_ipa: gpa,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VCPU of a secondary vCPU with an entry point",
        ),
        (
            CreateVcpu {
                index: 1,
                x0: 1,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VCPU of a secondary vCPU with an x0",
        ),
        (
            CreateVcpu {
                index: 0,
                entry_ipa: gpa + 2,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VCPU with an unaligned entry",
        ),
        (
            CreateVcpu {
                index: 0,
                entry_ipa: 1 << 32,
                ..Default::default()
            },
            E2BIG,
            "CREATE_VCPU with an entry past the IPA space",
        ),
        (
            CreateVcpu {
                index: 0,
                flags: 1,
                ..Default::default()
            },
            EINVAL,
            "CREATE_VCPU with a flag",
        ),
    ] {
        c.errno(what, vm.create_vcpu_with(&args), errno);
    }
    drop((vm, other, mem, stranger));

    // A live guest: the Spin command reports a tick now and then, forever.
    let mut guest = match Guest::load(&dev, image, Command::Spin) {
        Ok(g) => g,
        Err(e) => {
            c.check(false, "load the spinning guest", e);
            return c.finish();
        }
    };
    c.errno(
        "an unknown ioctl on a vCPU fd",
        ioctl(guest.vcpu.fd(), UNKNOWN_IOCTL, 0),
        ENOTTY,
    );
    c.errno(
        "RUN with an argument",
        ioctl(guest.vcpu.fd(), uapi::RUN, 1),
        EINVAL,
    );
    c.errno(
        "mmap of 8 KiB of a vCPU fd",
        Mapping::new(guest.vcpu.fd(), 2 * PAGE_SIZE, libc::MAP_SHARED),
        EINVAL,
    );
    c.errno(
        "mmap(MAP_PRIVATE) of a vCPU fd",
        Mapping::new(guest.vcpu.fd(), PAGE_SIZE, libc::MAP_PRIVATE),
        EINVAL,
    );
    c.errno(
        "a second CREATE_VCPU of vCPU 0",
        guest.vm.create_vcpu(0, test_guest::ENTRY_IPA, 0),
        EEXIST,
    );
    guest.vcpu.set_immediate_exit(true);
    let got = guest.vcpu.run_once();
    c.errno("RUN with immediate_exit set", got, EINTR);
    c.check(
        guest.vcpu.run().exit_reason == uapi::exit::INTR,
        "the exit of an interrupted RUN",
        format!("reason {}", guest.vcpu.run().exit_reason),
    );
    guest.vcpu.set_immediate_exit(false);
    let tick = guest.run_until_event();
    c.check(
        tick == Event::Report(Report::Reached(Step::Tick)),
        "the spinning guest runs",
        format!("{tick:?}"),
    );
    c.errno(
        "CREATE_VCPU after launch",
        guest.vm.create_vcpu(0, 0, 0),
        EBUSY,
    );
    let extra = guest.vm.create_guest_memfd(PAGE_SIZE, 0);
    if let Ok(extra) = &extra {
        c.errno(
            "SET_MEMORY with initial data after launch",
            guest
                .vm
                .set_memory(0x5000_0000, extra, 0, PAGE_SIZE, b"late"),
            EBUSY,
        );
    }

    // One vCPU, two threads: whichever RUN comes second gets EBUSY while the other runs.
    let stop = AtomicBool::new(false);
    let busy = AtomicU32::new(0);
    let other_errors = std::sync::Mutex::new(Vec::new());
    let runner = || {
        for _ in 0..20_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match guest.vcpu.run_once() {
                Err(Errno(EBUSY)) => {
                    if busy.fetch_add(1, Ordering::Relaxed) + 1 >= 3 {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    other_errors.lock().map(|mut v| v.push(e)).ok();
                    break;
                }
                Ok(()) => {}
            }
        }
        stop.store(true, Ordering::Relaxed);
    };
    std::thread::scope(|s| {
        s.spawn(runner);
        runner();
    });
    let busy = busy.load(Ordering::Relaxed);
    let other_errors = other_errors.into_inner().unwrap_or_default();
    c.check(
        busy >= 3 && other_errors.is_empty(),
        "RUN of a vCPU another thread is running",
        format!("EBUSY {busy} times, other errors {other_errors:?}"),
    );
    c.finish()
}
