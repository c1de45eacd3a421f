//! Fuzz bytes to calls. Addresses come from a small window around a few places (the
//! carve-out's edges, 2 MiB boundaries, the ends of both banks, MMIO, far beyond RAM and the
//! IPA space) so that calls collide on the same pages; or they are picked, when the call
//! runs, among the pages or guest frames in the state the call needs, so that sequences
//! reach successful calls and not only refusals (the proptests' `Addr::Pick`).

use super::model::{Call, Model};
use super::world::{CARVE_OUT, FAKE_BASE, FAKE_BYTES, MAX_VMS, REAL_BYTES};
use crate::bytes::Bytes;
use stage2::{Borrower, Owner, PAGE_SIZE, PageState, VmId};

const MIB2: usize = 2 << 20;

/// Operation table: an opcode byte selects an entry modulo the length, so the more often an
/// operation appears the more often it runs (the proptests' weights).
const OPS: [u8; 24] = [
    0, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 8, 9, 9, 10, 11, 11, 12, 13, 14, 14, 14, 15, 16,
];

/// VM ids: mostly the two every run starts with, the other slots, and ids with no slot.
const VMS: [u16; 8] = [1, 1, 2, 2, 3, 4, 5, VmId::MAX];

fn pfn(pa: usize) -> usize {
    pa / PAGE_SIZE
}

/// Where host page numbers cluster.
fn host_anchors(real: (usize, usize)) -> [usize; 15] {
    let fake_end = FAKE_BASE + FAKE_BYTES;
    [
        pfn(FAKE_BASE),
        pfn(CARVE_OUT.0) - 8,
        pfn(CARVE_OUT.1) - 4,
        pfn(fake_end - MIB2 / 2),
        pfn(fake_end) - 16,
        pfn(real.0),
        pfn(real.0) + 256,
        pfn(real.1) - 16,
        pfn(0x0900_0000),     // UART (MMIO: not RAM)
        pfn(0x0801_0000) - 1, // the hole between GICD and GICR
        pfn(0x3eff_0000) - 8, // end of the PCIe window
        0,
        (1 << 36) - 8,
        usize::MAX / PAGE_SIZE - 8, // the byte address is near the top of the address space
        usize::MAX - 64,            // pfn + nr wraps
    ]
}

/// Guest frame anchors: 0x200 is 2 MiB-aligned; the last ones leave the 48-bit IPA space
/// or wrap.
const GFN_ANCHORS: [usize; 8] = [
    0,
    0x200,
    0x3f0,
    0x4_0000,
    (1 << 36) - 16,
    usize::MAX / PAGE_SIZE - 8,
    usize::MAX - 16,
    0x1ff,
];

/// Page counts: mostly small, sometimes a whole 2 MiB, sometimes invalid.
fn count(b: &mut Bytes<'_>) -> usize {
    let c = b.u8();
    match c {
        0..=9 => 0,
        10..=19 => 512,
        20..=24 => 513,
        25..=29 => 511,
        30..=34 => usize::MAX,
        35..=159 => 1 + usize::from(c % 4),
        160..=219 => 5 + usize::from(c % 60),
        _ => 1 + usize::from(c % 32) * 16,
    }
}

/// A small offset in pages: usually below 16, sometimes up to about 550.
fn offset(b: &mut Bytes<'_>) -> usize {
    let o = usize::from(b.u8());
    if o < 200 { o % 16 } else { (o - 200) * 10 }
}

/// The `sel`-th (modulo) page whose model state `want` accepts.
fn pick_page(
    model: &Model,
    banks: &[(usize, usize)],
    sel: usize,
    want: impl Fn(usize, PageState) -> bool,
) -> Option<usize> {
    let pages: std::vec::Vec<usize> = banks
        .iter()
        .flat_map(|&(s, e)| (s..e).step_by(PAGE_SIZE))
        .filter(|&pa| model.state(pa).is_some_and(|st| want(pa, st)))
        .collect();
    (!pages.is_empty()).then(|| pfn(pages[sel % pages.len()]))
}

/// Decodes calls from fuzz bytes against the current state.
pub struct Decoder {
    /// Real RAM bank.
    pub real: (usize, usize),
    /// Both banks.
    pub banks: [(usize, usize); 2],
}

impl Decoder {
    /// A host page number: picked (high bit of the first byte) among pages `want` accepts,
    /// or an anchor plus an offset.
    fn host_pfn(
        &self,
        b: &mut Bytes<'_>,
        model: &Model,
        want: impl Fn(usize, PageState) -> bool,
    ) -> usize {
        let a = b.u8();
        let anchors = host_anchors(self.real);
        if a & 0x80 != 0 {
            let sel = usize::from(b.u16());
            return pick_page(model, &self.banks, sel, want)
                .unwrap_or(anchors[sel % anchors.len()]);
        }
        // Three times in four an anchor in RAM (the first eight), else any.
        let n = if a.is_multiple_of(4) {
            anchors.len()
        } else {
            8
        };
        anchors[usize::from(a >> 2) % n].wrapping_add(offset(b))
    }

    /// A page number for a table pool: real RAM only (fake pages must never be written), or
    /// just past its end.
    fn pool_pfn(&self, b: &mut Bytes<'_>, model: &Model) -> usize {
        let a = b.u8();
        let first = pfn(self.real.0);
        let pages = REAL_BYTES / PAGE_SIZE;
        if a & 0x80 != 0 {
            let sel = usize::from(b.u16());
            let real = self.real;
            return pick_page(model, &self.banks, sel, |pa, s| {
                real.0 <= pa && pa < real.1 && s == PageState::Owned(Owner::Host)
            })
            .unwrap_or(first + sel % pages);
        }
        first + usize::from(b.u16()) % (pages + 32)
    }

    /// A VM and one of its guest frames: picked (high bit of the first byte) among the
    /// mapped frames whose page `want(vm, state)` accepts, the given VM's first and any
    /// VM's if it has none; or the given VM and an anchor plus an offset.
    fn guest_frame(
        &self,
        b: &mut Bytes<'_>,
        model: &Model,
        vm: u16,
        want: impl Fn(VmId, PageState) -> bool,
    ) -> (u16, usize) {
        let a = b.u8();
        if a & 0x80 == 0 {
            let gfn = GFN_ANCHORS[usize::from(a) % GFN_ANCHORS.len()].wrapping_add(offset(b));
            return (vm, gfn);
        }
        let sel = usize::from(b.u16());
        let frames_of = |v: u16| -> std::vec::Vec<(u16, usize)> {
            let (Some(id), Some(Some(g))) = (
                VmId::new(v),
                model.guests.get(usize::from(v).wrapping_sub(1)),
            ) else {
                return std::vec::Vec::new();
            };
            g.map
                .iter()
                .filter(|&(_, &pa)| model.state(pa).is_some_and(|s| want(id, s)))
                .map(|(&f, _)| (v, f))
                .collect()
        };
        let mut frames = frames_of(vm);
        if frames.is_empty() {
            frames = (1..=MAX_VMS as u16).flat_map(frames_of).collect();
        }
        if frames.is_empty() {
            return (vm, sel % 0x400);
        }
        frames[sel % frames.len()]
    }

    /// A VM id: with the high bit of the byte, one of the live VMs (if any); else from
    /// [`VMS`], which also names slots that are empty or do not exist.
    fn vm(&self, b: &mut Bytes<'_>, model: &Model) -> u16 {
        let v = b.u8();
        let live: std::vec::Vec<u16> = (1..)
            .zip(&model.guests)
            .filter(|(_, g)| g.is_some())
            .map(|(i, _)| i)
            .collect();
        if v & 0x80 != 0 && !live.is_empty() {
            return live[usize::from(v & 0x7f) % live.len()];
        }
        VMS[usize::from(v) % VMS.len()]
    }

    /// The next call.
    pub fn call(&self, b: &mut Bytes<'_>, model: &Model) -> Call {
        let host = PageState::Owned(Owner::Host);
        let is_host = move |_: usize, s: PageState| s == host;
        match b.pick(&OPS) {
            0 => Call::HostShareHyp {
                pfn: self.host_pfn(b, model, is_host),
                nr: count(b),
            },
            1 => Call::HostUnshareHyp {
                pfn: self.host_pfn(b, model, |_, s| {
                    s == PageState::HostSharedWith(Borrower::Hyp)
                }),
                nr: count(b),
            },
            2 => Call::HostDonateHyp {
                pfn: self.host_pfn(b, model, is_host),
                nr: count(b),
            },
            3 => Call::HypDonateHost {
                pfn: self.host_pfn(b, model, |pa, s| {
                    s == PageState::Owned(Owner::Hyp) && !(CARVE_OUT.0..CARVE_OUT.1).contains(&pa)
                }),
                nr: count(b),
            },
            4 => Call::VmCreate {
                pfn: self.pool_pfn(b, model),
                nr: 1 + usize::from(b.u8() % 4),
            },
            5 => {
                let vm = self.vm(b, model);
                Call::VmTopup {
                    vm,
                    pfn: self.pool_pfn(b, model),
                    nr: 1 + usize::from(b.u8() % 6),
                }
            }
            6 | 7 => {
                let vm = self.vm(b, model);
                let pfn = self.host_pfn(b, model, is_host);
                // Never picked among mapped frames: those are taken (Busy).
                let (_, gfn) = self.guest_frame(b, model, vm, |_, _| false);
                let nr = count(b);
                if b.u8() & 1 == 0 {
                    Call::HostDonateGuest { vm, pfn, gfn, nr }
                } else {
                    Call::HostDonateGuestZeroed { vm, pfn, gfn, nr }
                }
            }
            op @ 8..=11 => {
                // (Op 8 was HOST_UNSHARE_GUEST, retired with lending in ABI 2.0; it now
                // shares like op 9, so that committed corpora keep their meaning elsewhere.)
                let want = move |id: VmId, s: PageState| match op {
                    10 => s == PageState::SharedWithHost(id),
                    _ => s == PageState::Owned(Owner::Guest(id)),
                };
                let first = self.vm(b, model);
                let (vm, gfn) = self.guest_frame(b, model, first, want);
                let nr = match b.u8() {
                    0..=159 => 1,
                    160..=229 => 2 + usize::from(b.u8() % 3),
                    230..=239 => 512,
                    _ => 0,
                };
                match op {
                    8 | 9 => Call::GuestShareHost { vm, gfn, nr },
                    10 => Call::GuestUnshareHost { vm, gfn, nr },
                    _ => Call::GuestRelinquish { vm, gfn, nr },
                }
            }
            12 => Call::VmTeardown {
                vm: self.vm(b, model),
            },
            13 => Call::HostReclaim {
                pfn: self.host_pfn(b, model, |_, s| matches!(s, PageState::PendingReclaim(_))),
                nr: count(b),
            },
            14 => {
                let page = self.host_pfn(b, model, |_, _| true);
                Call::HostFault {
                    ipa: page
                        .wrapping_mul(PAGE_SIZE)
                        .wrapping_add(usize::from(b.u8()) * 16),
                }
            }
            15 => Call::ToggleActive {
                vm: self.vm(b, model),
            },
            _ => Call::HostMapAll,
        }
    }
}
