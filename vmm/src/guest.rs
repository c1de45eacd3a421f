//! Loading the guest (tests/test-guest's raw image) into a new VM, and running it with a
//! console: 1-byte MMIO stores to the guest's print page are text on stdout
//! (`guest: ...`), 8-byte stores to its report page are `test_guest::Report`s.

use crate::pvm::{Device, GuestMemfd, Result, Vcpu, Vm};
use crate::uapi::{self, exit};
use test_guest::{
    Command, DATA_GFN, DATA_PAGES, ENTRY_IPA, IPA_BITS, PRINT_IPA, REPORT_IPA, Report, ipa,
};

/// A protected guest ready to run: its VM, memory and boot vCPU.
pub struct Guest {
    pub vcpu: Vcpu,
    /// The data pages (secret, shared, spare), mmap()able.
    pub data: GuestMemfd,
    pub vm: Vm,
    pub image_pages: usize,
    line: Vec<u8>,
}

/// What a run of the guest stopped at, as the VMM sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Report(Report),
    /// A store to the report page that is no report.
    BadReport(u64),
    MemShared {
        gpa: u64,
        nr: u64,
    },
    MemUnshared {
        gpa: u64,
        nr: u64,
    },
    MemRelinquished {
        gpa: u64,
        nr: u64,
    },
    MemFault {
        gpa: u64,
    },
    /// An MMIO read: set the data before the next RUN.
    MmioRead {
        gpa: u64,
        len: u32,
    },
    VcpuStarted(u32),
    VcpuOff,
    SystemOff,
    /// Any other exit (its reason), or a RUN error.
    Unexpected(String),
}

/// The image's `image_size` (arm64 Image header, offset 16) in pages.
pub fn image_pages(image: &[u8]) -> Option<usize> {
    let size = u64::from_le_bytes(image.get(16..24)?.try_into().ok()?) as usize;
    (size >= image.len()).then(|| size.div_ceil(uapi::PAGE_SIZE))
}

impl Guest {
    /// A VM with the image at ENTRY_IPA, DATA_PAGES zeroed pages at DATA_GFN, and vCPU 0
    /// about to run `command`.
    pub fn load(dev: &Device, image: &[u8], command: Command) -> Result<Self> {
        Self::load_with_vcpus(dev, image, command, 1)
    }

    /// As [`load`](Self::load), in a VM of `nr_vcpus` vCPUs (only vCPU 0 created).
    pub fn load_with_vcpus(
        dev: &Device,
        image: &[u8],
        command: Command,
        nr_vcpus: u32,
    ) -> Result<Self> {
        let Some(image_pages) = image_pages(image) else {
            return Err(crate::pvm::Errno(libc::EINVAL));
        };
        let vm = dev.create_vm(nr_vcpus, IPA_BITS)?;
        let image_mem = vm.create_guest_memfd(image_pages * uapi::PAGE_SIZE, 0)?;
        vm.set_memory(
            ENTRY_IPA,
            &image_mem,
            0,
            image_pages * uapi::PAGE_SIZE,
            image,
        )?;
        let data_size = DATA_PAGES as usize * uapi::PAGE_SIZE;
        let data = vm.create_guest_memfd(data_size, uapi::GUEST_MEMFD_FLAG_MMAP)?;
        vm.set_memory(ipa(DATA_GFN), &data, 0, data_size, &[])?;
        let vcpu = vm.create_vcpu(0, ENTRY_IPA, command.to_x0())?;
        Ok(Self {
            vcpu,
            data,
            vm,
            image_pages,
            line: Vec::new(),
        })
    }

    /// Runs vCPU 0 until something the caller must see; console output is printed on
    /// the way.
    pub fn run_until_event(&mut self) -> Event {
        let event = next_event(&self.vcpu, &mut self.line);
        match &event {
            Event::MemShared { gpa, nr } => {
                println!("vmm: exit MEM_SHARED gpa {gpa:#x} pages {nr}")
            }
            Event::MemUnshared { gpa, nr } => {
                println!("vmm: exit MEM_UNSHARED gpa {gpa:#x} pages {nr}")
            }
            Event::MemRelinquished { gpa, nr } => {
                println!("vmm: exit MEM_RELINQUISHED gpa {gpa:#x} pages {nr}")
            }
            _ => {}
        }
        event
    }
}

/// A console byte: a line is printed at its newline.
fn console(line: &mut Vec<u8>, byte: u8) {
    if byte == b'\n' {
        println!("guest: {}", String::from_utf8_lossy(line));
        line.clear();
    } else {
        line.push(byte);
    }
}

/// Runs `vcpu` until something the caller must see. An MMIO read is returned as an event
/// (the caller sets the data with [`Vcpu::set_mmio_data`] before the next RUN).
pub fn next_event(vcpu: &Vcpu, line: &mut Vec<u8>) -> Event {
    loop {
        if let Err(e) = vcpu.run_once() {
            return Event::Unexpected(format!("RUN failed: {e}"));
        }
        let run = vcpu.run();
        // SAFETY (each union read below): the driver wrote the member that belongs to
        // `exit_reason` (uapi header).
        match run.exit_reason {
            exit::MMIO => {
                // SAFETY: see above.
                let mmio = unsafe { run.exit.mmio };
                if mmio.is_write == 0 {
                    return Event::MmioRead {
                        gpa: mmio.phys_addr,
                        len: mmio.len,
                    };
                }
                if mmio.phys_addr == PRINT_IPA && mmio.len == 1 {
                    console(line, mmio.data as u8);
                } else if mmio.phys_addr == REPORT_IPA && mmio.len == 8 {
                    return match Report::decode(mmio.data) {
                        Some(report) => Event::Report(report),
                        None => Event::BadReport(mmio.data),
                    };
                } else {
                    return Event::Unexpected(format!("MMIO write at {:#x}", mmio.phys_addr));
                }
            }
            exit::MEM_SHARED | exit::MEM_UNSHARED | exit::MEM_RELINQUISHED => {
                // SAFETY: see above.
                let m = unsafe { run.exit.memory };
                let (gpa, nr) = (m.gpa, m.nr_pages);
                return match run.exit_reason {
                    exit::MEM_SHARED => Event::MemShared { gpa, nr },
                    exit::MEM_UNSHARED => Event::MemUnshared { gpa, nr },
                    _ => Event::MemRelinquished { gpa, nr },
                };
            }
            exit::MEM_FAULT => {
                // SAFETY: see above.
                let gpa = unsafe { run.exit.memory.gpa };
                return Event::MemFault { gpa };
            }
            exit::VCPU_STARTED => {
                // SAFETY: see above.
                return Event::VcpuStarted(unsafe { run.exit.vcpu_started.vcpu });
            }
            exit::VCPU_OFF => return Event::VcpuOff,
            exit::SYSTEM_OFF => return Event::SystemOff,
            other => return Event::Unexpected(format!("exit reason {other}")),
        }
    }
}
