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
        let Some(image_pages) = image_pages(image) else {
            return Err(crate::pvm::Errno(libc::EINVAL));
        };
        let vm = dev.create_vm(1, IPA_BITS)?;
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

    /// Runs until something the caller must see; console output is printed on the way.
    pub fn run_until_event(&mut self) -> Event {
        loop {
            if let Err(e) = self.vcpu.run_once() {
                return Event::Unexpected(format!("RUN failed: {e}"));
            }
            let run = self.vcpu.run();
            match run.exit_reason {
                exit::MMIO => {
                    // SAFETY: the driver wrote the mmio member for an MMIO exit.
                    let mmio = unsafe { run.exit.mmio };
                    if mmio.is_write == 0 {
                        self.vcpu.set_mmio_data(0);
                        return Event::Unexpected(format!("MMIO read at {:#x}", mmio.phys_addr));
                    }
                    if mmio.phys_addr == PRINT_IPA && mmio.len == 1 {
                        self.console(mmio.data as u8);
                    } else if mmio.phys_addr == REPORT_IPA && mmio.len == 8 {
                        return match Report::decode(mmio.data) {
                            Some(report) => Event::Report(report),
                            None => Event::BadReport(mmio.data),
                        };
                    } else {
                        return Event::Unexpected(format!("MMIO write at {:#x}", mmio.phys_addr));
                    }
                }
                exit::MEM_SHARED | exit::MEM_UNSHARED => {
                    // SAFETY: the driver wrote the memory member for these exits.
                    let m = unsafe { run.exit.memory };
                    println!(
                        "vmm: exit {} gpa {:#x} pages {}",
                        if run.exit_reason == exit::MEM_SHARED {
                            "MEM_SHARED"
                        } else {
                            "MEM_UNSHARED"
                        },
                        m.gpa,
                        m.nr_pages
                    );
                    return if run.exit_reason == exit::MEM_SHARED {
                        Event::MemShared {
                            gpa: m.gpa,
                            nr: m.nr_pages,
                        }
                    } else {
                        Event::MemUnshared {
                            gpa: m.gpa,
                            nr: m.nr_pages,
                        }
                    };
                }
                exit::SYSTEM_OFF => return Event::SystemOff,
                other => return Event::Unexpected(format!("exit reason {other}")),
            }
        }
    }

    fn console(&mut self, byte: u8) {
        if byte == b'\n' {
            println!("guest: {}", String::from_utf8_lossy(&self.line));
            self.line.clear();
        } else {
            self.line.push(byte);
        }
    }
}
