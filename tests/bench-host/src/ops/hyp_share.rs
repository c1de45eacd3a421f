//! HOST_SHARE_HYP and HOST_UNSHARE_HYP of one page: a run of distinct pages shared one by
//! one, then unshared one by one, so that every call finds its page in the same state.

use crate::config::Counts;
use crate::measured_loop::{Calls, measure};
use crate::pages::Pages;
use hvc_abi::HostCall;

pub fn run(counts: &Counts, pages: &mut Pages) {
    let n = counts.hyp_pages;
    let pfn = pages.alloc(n, 1);
    measure(
        "host_share_hyp",
        &Calls::repeat(HostCall::HostShareHyp { pfn }.encode(), n, [0, 0]).stepping(1, 1),
    );
    measure(
        "host_unshare_hyp",
        &Calls::repeat(HostCall::HostUnshareHyp { pfn }.encode(), n, [0, 0]).stepping(1, 1),
    );
}
