//! The scenarios, in the order they run. Each name reads as the behaviour it checks.

mod destroy;
mod discovery;
mod errors;
mod guest_calls;
mod host_state;
mod irq_exit;
mod private_memory;
mod relinquish;
mod second_cpu;
mod sharing;

use crate::runner::Test;

pub const ALL: &[Test] = &[
    Test {
        name: "discovery_reports_abi_1_0",
        run: discovery::discovery_reports_abi_1_0,
    },
    Test {
        name: "guest_discovery_reports_guest_bitmap_and_granule",
        run: guest_calls::guest_discovery_reports_guest_bitmap_and_granule,
    },
    Test {
        name: "guest_call_errors_follow_the_tables",
        run: guest_calls::guest_call_errors_follow_the_tables,
    },
    Test {
        name: "guest_cannot_reach_mte_registers",
        run: guest_calls::guest_cannot_reach_mte_registers,
    },
    Test {
        name: "guest_shares_page_and_host_reads_and_writes_it",
        run: sharing::guest_shares_page_and_host_reads_and_writes_it,
    },
    Test {
        name: "host_access_to_private_page_aborts",
        run: private_memory::host_access_to_private_page_aborts,
    },
    Test {
        name: "destroy_then_reclaim_returns_zeroed_pages",
        run: destroy::destroy_then_reclaim_returns_zeroed_pages,
    },
    Test {
        name: "host_el1_state_survives_a_guest_run",
        run: host_state::host_el1_state_survives_a_guest_run,
    },
    Test {
        name: "irq_during_guest_run_exits_to_host",
        run: irq_exit::irq_during_guest_run_exits_to_host,
    },
    Test {
        name: "host_virtual_timer_deadline_ends_a_guest_run",
        run: irq_exit::host_virtual_timer_deadline_ends_a_guest_run,
    },
    Test {
        name: "guest_relinquish_returns_page_zeroed",
        run: relinquish::guest_relinquish_returns_page_zeroed,
    },
    Test {
        name: "second_run_of_running_vcpu_is_busy",
        run: second_cpu::second_run_of_running_vcpu_is_busy,
    },
    Test {
        name: "zero_page_count_is_invalid_parameter",
        run: errors::zero_page_count_is_invalid_parameter,
    },
    Test {
        name: "page_count_513_is_range",
        run: errors::page_count_513_is_range,
    },
    Test {
        name: "nonzero_mbz_register_is_invalid_parameter",
        run: errors::nonzero_mbz_register_is_invalid_parameter,
    },
    Test {
        name: "donating_el2_carve_out_page_is_denied",
        run: errors::donating_el2_carve_out_page_is_denied,
    },
    Test {
        name: "unknown_handle_is_not_found",
        run: errors::unknown_handle_is_not_found,
    },
    Test {
        name: "donate_without_pool_is_no_memory_until_topped_up",
        run: errors::donate_without_pool_is_no_memory_until_topped_up,
    },
];
