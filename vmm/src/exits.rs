//! The exits the story does not meet, through the driver (`vmm exits`): a guest that
//! relinquishes a page (MEM_RELINQUISHED, then an MMIO read completed with the VMM's
//! data), a guest that stores to an IPA with no page (MEM_FAULT, resolved by binding
//! memory after launch, which the guest finds zeroed), and a guest that starts its second
//! vCPU with PSCI CPU_ON (VCPU_STARTED; the VMM runs vCPU 1 on a thread of its own until
//! VCPU_OFF).

use crate::check::Checks;
use crate::guest::{Event, Guest, next_event};
use crate::probe::{self, Outcome};
use crate::pvm::Device;
use crate::uapi::{GUEST_MEMFD_FLAG_MMAP, PAGE_SIZE};
use test_guest::{
    Command, DATA_GFN, RELINQUISHED_READ_VALUE, Report, SPARE_GFN, Step, UNBACKED_IPA, ipa,
};

fn load(c: &mut Checks, dev: &Device, image: &[u8], command: Command, vcpus: u32) -> Option<Guest> {
    match Guest::load_with_vcpus(dev, image, command, vcpus) {
        Ok(g) => Some(g),
        Err(e) => {
            c.check(false, &format!("load the {command:?} guest"), e);
            None
        }
    }
}

fn expect(c: &mut Checks, got: Event, want: Event, what: &str) -> bool {
    c.check(got == want, what, format!("{got:?}"))
}

fn relinquish(c: &mut Checks, dev: &Device, image: &[u8]) {
    let Some(mut g) = load(c, dev, image, Command::Relinquish, 1) else {
        return;
    };
    let Ok(map) = g.data.map(3 * PAGE_SIZE, libc::MAP_SHARED) else {
        c.check(false, "mmap the data pages", "failed");
        return;
    };
    let spare = ipa(SPARE_GFN);
    expect(
        c,
        g.run_until_event(),
        Event::MemRelinquished { gpa: spare, nr: 1 },
        "the guest relinquishes a page: MEM_RELINQUISHED",
    );
    expect(
        c,
        g.run_until_event(),
        Event::Report(Report::Reached(Step::Relinquished)),
        "the guest goes on after MEM_RELINQUISHED",
    );
    let o = probe::load(
        map.addr()
            .wrapping_add((SPARE_GFN - DATA_GFN) as usize * PAGE_SIZE),
    );
    c.check(
        o == Outcome::Sigbus(libc::BUS_ADRERR),
        "a fault on the relinquished page",
        o,
    );
    if expect(
        c,
        g.run_until_event(),
        Event::MmioRead { gpa: spare, len: 8 },
        "the guest's load from the relinquished IPA: an MMIO read exit",
    ) {
        g.vcpu.set_mmio_data(RELINQUISHED_READ_VALUE);
    }
    expect(
        c,
        g.run_until_event(),
        Event::Report(Report::Reached(Step::Done)),
        "the guest got the VMM's MMIO read data",
    );
    expect(
        c,
        g.run_until_event(),
        Event::SystemOff,
        "the relinquishing guest powers off",
    );
}

fn mem_fault(c: &mut Checks, dev: &Device, image: &[u8]) {
    let Some(mut g) = load(c, dev, image, Command::StoreUnbacked, 1) else {
        return;
    };
    if !expect(
        c,
        g.run_until_event(),
        Event::MemFault { gpa: UNBACKED_IPA },
        "a store to an IPA with no page and no MMIO registration: MEM_FAULT",
    ) {
        return;
    }
    expect(
        c,
        g.run_until_event(),
        Event::MemFault { gpa: UNBACKED_IPA },
        "the store is re-executed until memory is there",
    );
    let bound =
        g.vm.create_guest_memfd(PAGE_SIZE, GUEST_MEMFD_FLAG_MMAP)
            .and_then(|m| g.vm.set_memory(UNBACKED_IPA, &m, 0, PAGE_SIZE, &[]));
    c.check(
        bound.is_ok(),
        "SET_MEMORY after launch",
        format!("{bound:?}"),
    );
    expect(
        c,
        g.run_until_event(),
        Event::Report(Report::Reached(Step::Done)),
        "the store landed and the page was zeroed (memory after launch is fresh)",
    );
    expect(
        c,
        g.run_until_event(),
        Event::SystemOff,
        "the storing guest powers off",
    );
}

fn cpu_on(c: &mut Checks, dev: &Device, image: &[u8]) {
    let Some(mut g) = load(c, dev, image, Command::CpuOn, 2) else {
        return;
    };
    let second = match g.vm.create_vcpu(1, 0, 0) {
        Ok(v) => v,
        Err(e) => {
            c.check(false, "create vCPU 1 (powered off)", e);
            return;
        }
    };
    if !expect(
        c,
        g.run_until_event(),
        Event::VcpuStarted(1),
        "the guest starts vCPU 1 with PSCI CPU_ON: VCPU_STARTED",
    ) {
        return;
    }
    expect(
        c,
        g.run_until_event(),
        Event::Report(Report::Reached(Step::SecondaryOn)),
        "vCPU 0 goes on after CPU_ON",
    );
    let events = std::thread::scope(|s| {
        s.spawn(|| {
            let mut line = Vec::new();
            [
                next_event(&second, &mut line),
                next_event(&second, &mut line),
            ]
        })
        .join()
    });
    match events {
        Ok([ran, off]) => {
            expect(
                c,
                ran,
                Event::Report(Report::Reached(Step::SecondaryRan)),
                "vCPU 1 runs at the guest's entry on its own thread",
            );
            expect(c, off, Event::VcpuOff, "vCPU 1 calls CPU_OFF: VCPU_OFF");
        }
        Err(_) => {
            c.check(false, "run vCPU 1", "the thread panicked");
        }
    }
    expect(
        c,
        g.run_until_event(),
        Event::Report(Report::Reached(Step::Done)),
        "vCPU 0 sees vCPU 1 off",
    );
    expect(
        c,
        g.run_until_event(),
        Event::SystemOff,
        "the two-vCPU guest powers off",
    );
}

pub fn run(image: &[u8]) -> bool {
    let mut c = Checks::new("exits");
    let Ok(dev) = Device::open() else {
        c.check(false, "open /dev/el2-pvm", "failed");
        return c.finish();
    };
    relinquish(&mut c, &dev, image);
    mem_fault(&mut c, &dev, image);
    cpu_on(&mut c, &dev, image);
    let stats = dev.stats();
    c.check(
        stats.is_ok_and(|s| {
            s.vms == 0 && s.pages_held == 0 && s.pages_lost == 0 && s.pages_reclaimed_nonzero == 0
        }),
        "every VM ended and gave back every page, zeroed",
        format!("{stats:?}"),
    );
    c.finish()
}
