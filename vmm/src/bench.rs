//! `vmm bench`: what the driver and a VMM add, measured from user space. Each figure is
//! nanoseconds of CLOCK_MONOTONIC; under the bench's `-icount shift=0,sleep=off` one
//! nanosecond is one instruction (of every exception level: user space, Linux, EL2 and
//! the guest). Lines `vmm: bench: <key> <value>` are parsed by `cargo xtask bench`.
//!
//! The guest is the bench host's own (tests/bench-host/src/asm/guest.S): loops that make
//! exactly one exit per RUN, so a RUN is one guest exit and nothing else.

use crate::guest::{Event, next_event};
use crate::pvm::{Device, Vm};
use crate::uapi::{GUEST_MEMFD_FLAG_MMAP, PAGE_SIZE};

core::arch::global_asm!(include_str!("../../tests/bench-host/src/asm/guest.S"));

unsafe extern "C" {
    static bench_guest_start: u8;
    static bench_guest_boot: u8;
    static bench_guest_mmio_exit: u8;
    static bench_guest_share_seq: u8;
    static bench_guest_unshare_seq: u8;
    static bench_guest_end: u8;
}

const IMAGE_IPA: u64 = 0x4000_0000;
/// The (entry, x0) table of the boot loop, in the image page after the guest's code.
const TABLE_OFFSET: usize = 0x800;
const MMIO_IPA: u64 = 0x0900_0000;
const DATA_IPA: u64 = 0x4100_0000;
/// Calls per measured figure.
const RUNS: u32 = 500;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the current time into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn guest_bytes() -> &'static [u8] {
    let start = &raw const bench_guest_start;
    let len = &raw const bench_guest_end as usize - start as usize;
    // SAFETY: the two symbols delimit the guest's bytes in this binary's .rodata
    // (guest.S), which nothing writes.
    unsafe { std::slice::from_raw_parts(start, len) }
}

fn entry(label: *const u8) -> u64 {
    IMAGE_IPA + (label as usize - &raw const bench_guest_start as usize) as u64
}

/// One page at IMAGE_IPA: the guest, and at TABLE_OFFSET the boot loop's table.
fn image_page(table: &[(u64, u64)]) -> Vec<u8> {
    let mut page = vec![0u8; PAGE_SIZE];
    let code = guest_bytes();
    page[..code.len()].copy_from_slice(code);
    for (i, (e, x0)) in table.iter().enumerate() {
        let at = TABLE_OFFSET + 16 * i;
        page[at..at + 8].copy_from_slice(&e.to_le_bytes());
        page[at + 8..at + 16].copy_from_slice(&x0.to_le_bytes());
    }
    page
}

fn load_image(vm: &Vm, page: &[u8]) -> Result<(), String> {
    let mem = vm
        .create_guest_memfd(PAGE_SIZE, 0)
        .map_err(|e| e.to_string())?;
    vm.set_memory(IMAGE_IPA, &mem, 0, PAGE_SIZE, page)
        .map_err(|e| e.to_string())
}

fn print(key: &str, value: u64) {
    println!("vmm: bench: {key} {value}");
}

/// VCPU_RUN round trip: the guest stores to its MMIO page at once on every run.
fn run_round_trip(dev: &Device) -> Result<(), String> {
    let vm = dev.create_vm(1, 32).map_err(|e| e.to_string())?;
    load_image(&vm, &image_page(&[]))?;
    let vcpu = vm
        .create_vcpu(0, entry(&raw const bench_guest_mmio_exit), MMIO_IPA)
        .map_err(|e| e.to_string())?;
    for _ in 0..10 {
        vcpu.run_once().map_err(|e| e.to_string())?;
    }
    let start = now_ns();
    for _ in 0..RUNS {
        vcpu.run_once().map_err(|e| e.to_string())?;
    }
    print("vcpu_run_mmio_exit", (now_ns() - start) / u64::from(RUNS));
    Ok(())
}

/// Shares `calls` x `nr` pages one call per RUN on vCPU 0, then unshares them on vCPU 1;
/// with 512 pages also the read throughput over the shared memory through a mapping.
fn share_unshare(dev: &Device, nr: u64, calls: u64) -> Result<(), String> {
    let vm = dev.create_vm(6, 32).map_err(|e| e.to_string())?;
    let seq_x0 = DATA_IPA | (nr - 1);
    let idle = (entry(&raw const bench_guest_mmio_exit), MMIO_IPA);
    let table = [
        (entry(&raw const bench_guest_share_seq), seq_x0),
        (entry(&raw const bench_guest_unshare_seq), seq_x0),
        idle,
        idle,
        idle,
        idle,
    ];
    load_image(&vm, &image_page(&table))?;
    let size = (nr * calls) as usize * PAGE_SIZE;
    let data = vm
        .create_guest_memfd(size, GUEST_MEMFD_FLAG_MMAP)
        .map_err(|e| e.to_string())?;
    vm.set_memory(DATA_IPA, &data, 0, size, &[])
        .map_err(|e| e.to_string())?;
    let boot = vm
        .create_vcpu(
            0,
            entry(&raw const bench_guest_boot),
            IMAGE_IPA + TABLE_OFFSET as u64,
        )
        .map_err(|e| e.to_string())?;
    let unsharer = vm.create_vcpu(1, 0, 0).map_err(|e| e.to_string())?;
    let others: Vec<_> = (2..6)
        .map(|i| vm.create_vcpu(i, 0, 0))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    for i in 1..6 {
        let started = next_event(&boot, &mut line);
        if started != Event::VcpuStarted(i) {
            return Err(format!("boot: {started:?}"));
        }
    }
    let mut timed = |vcpu, want: fn(u64, u64) -> Event| -> Result<u64, String> {
        let mut total = 0;
        for call in 0..calls {
            let start = now_ns();
            let got = next_event(vcpu, &mut line);
            total += now_ns() - start;
            let want = want(DATA_IPA + call * nr * PAGE_SIZE as u64, nr);
            if got != want {
                return Err(format!("{got:?}, expected {want:?}"));
            }
        }
        Ok(total / calls)
    };
    let share = timed(&boot, |gpa, nr| Event::MemShared { gpa, nr })?;
    print(&format!("mem_share_{nr}"), share);
    if nr == 512 {
        read_throughput(&data, size)?;
    }
    let unshare = timed(&unsharer, |gpa, nr| Event::MemUnshared { gpa, nr })?;
    print(&format!("mem_unshare_{nr}"), unshare);
    drop(others);
    Ok(())
}

/// Copies the shared memory out through its mapping (first touch: each page faults in;
/// then again, mapped), and the same number of bytes of ordinary memory.
fn read_throughput(data: &crate::pvm::GuestMemfd, size: usize) -> Result<(), String> {
    let map = data
        .map(size, libc::MAP_SHARED)
        .map_err(|e| e.to_string())?;
    let mut out = vec![0u8; size];
    let ordinary = vec![0x5au8; size];
    let mut copy_from = |src: *const u8| {
        let start = now_ns();
        // SAFETY: `src` is `size` readable bytes (the mapping of shared guest pages, or
        // `ordinary`), `out` is `size` bytes of its own.
        unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), size) };
        now_ns() - start
    };
    let first = copy_from(map.addr());
    let mapped = copy_from(map.addr());
    let plain = copy_from(ordinary.as_ptr());
    let per_page = |ns: u64| ns * PAGE_SIZE as u64 / size as u64;
    print("read_shared_first_touch_ns_per_page", per_page(first));
    print("read_shared_mapped_ns_per_page", per_page(mapped));
    print("memcpy_ordinary_ns_per_page", per_page(plain));
    Ok(())
}

pub fn run() -> bool {
    let Ok(dev) = Device::open() else {
        println!("vmm: FAIL: open /dev/el2-pvm");
        return false;
    };
    let result = run_round_trip(&dev)
        .and_then(|()| share_unshare(&dev, 1, 64))
        .and_then(|()| share_unshare(&dev, 512, 8));
    match result {
        Ok(()) => {
            println!("vmm: bench: done");
            true
        }
        Err(e) => {
            println!("vmm: FAIL: bench: {e}");
            false
        }
    }
}
