//! What the bench host was asked to do: the words of `/chosen/bootargs`, which xtask sets
//! through the payload (the host kernel module's `bootargs`).

use fdt::Fdt;

/// The run, from the bootargs.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Mode {
    /// Every operation, with [`Counts::FULL`] (`full`, or no bootargs word).
    Full,
    /// Every operation, with [`Counts::QUICK`] (`quick`): only checks that the bench works.
    Quick,
    /// Only the memory report (`memory`): the boots at 4 and 16 GiB.
    Memory,
}

/// How many times each operation runs.
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    /// Calls that touch no memory (unknown HVC, FEATURES).
    pub trivial: u64,
    /// Pages shared with EL2 (and unshared again) one by one.
    pub hyp_pages: u64,
    /// VM_DONATE / VM_RECLAIM of one page.
    pub vm_pages: u64,
    /// VM_DONATE / VM_RECLAIM of 512 pages.
    pub vm_blocks: u64,
    /// VCPU_RUN round trips.
    pub runs: u64,
    /// Guest MEM_SHARE / MEM_UNSHARE of one page.
    pub guest_pages: u64,
    /// Guest MEM_SHARE / MEM_UNSHARE of 512 pages.
    pub guest_blocks: u64,
    /// Host reads of a guest-private page.
    pub aborts: u64,
}

impl Counts {
    /// The full bench: long loops (20,000 calls like the peer's measurement where the
    /// operation is cheap), a few MiB of pages per operation.
    pub const FULL: Counts = Counts {
        trivial: 20_000,
        hyp_pages: 4096,
        vm_pages: 2048,
        vm_blocks: 16,
        runs: 4096,
        guest_pages: 1024,
        guest_blocks: 8,
        aborts: 1024,
    };

    /// Enough calls to see that every operation works and gives numbers.
    pub const QUICK: Counts = Counts {
        trivial: 256,
        hyp_pages: 64,
        vm_pages: 64,
        vm_blocks: 2,
        runs: 64,
        guest_pages: 32,
        guest_blocks: 2,
        aborts: 32,
    };
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub mode: Mode,
}

impl Config {
    /// Reads `/chosen/bootargs` of the DTB at `dtb`; a DTB that cannot be read or has no
    /// bootargs means the full run.
    pub fn from_dtb(dtb: usize) -> Self {
        // SAFETY: `dtb` is the DTB the payload handed over (el1-rt checked its header and
        // size at boot); nothing writes it, the bench allocates no pages there.
        let Ok(fdt) = (unsafe { Fdt::from_ptr(dtb as *const u8) }) else {
            return Self { mode: Mode::Full };
        };
        let bootargs = fdt
            .find_node("/chosen")
            .and_then(|chosen| chosen.property("bootargs"))
            .and_then(|property| property.as_str());
        Self {
            mode: bootargs.map(parse).unwrap_or(Mode::Full),
        }
    }

    pub fn counts(&self) -> Counts {
        match self.mode {
            Mode::Quick => Counts::QUICK,
            _ => Counts::FULL,
        }
    }
}

fn parse(bootargs: &str) -> Mode {
    let mut mode = Mode::Full;
    for word in bootargs.split_ascii_whitespace() {
        match word {
            "full" => mode = Mode::Full,
            "quick" => mode = Mode::Quick,
            "memory" => mode = Mode::Memory,
            _ => {}
        }
    }
    mode
}
