//! The scenarios, in the order they run. Each name reads as the behaviour it checks.

mod destroy;
mod discovery;
mod errors;
mod gic_virtual_interface;
mod guest_address_space;
mod guest_calls;
mod host_faults;
mod host_features;
mod host_state;
mod irq_exit;
mod locked_launch;
mod private_memory;
mod psci_relay;
mod relinquish;
mod second_cpu;
pub(crate) mod sharing;
mod world_switch;

use crate::runner::Test;

pub const ALL: &[Test] = &[
    Test {
        name: "discovery_reports_abi_2_0",
        run: discovery::discovery_reports_abi_2_0,
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
        name: "host_virtual_timer_deadline_ends_a_guest_run_on_another_cpu",
        run: irq_exit::host_virtual_timer_deadline_ends_a_guest_run_on_another_cpu,
    },
    Test {
        name: "host_cannot_reach_the_gic_virtual_interface",
        run: gic_virtual_interface::host_cannot_reach_the_gic_virtual_interface,
    },
    Test {
        name: "guest_relinquish_returns_page_zeroed",
        run: relinquish::guest_relinquish_returns_page_zeroed,
    },
    Test {
        name: "host_cannot_add_a_vcpu_to_a_launched_vm",
        run: locked_launch::host_cannot_add_a_vcpu_to_a_launched_vm,
    },
    Test {
        name: "guest_cpu_on_starts_vcpu_1_at_the_guest_entry",
        run: locked_launch::guest_cpu_on_starts_vcpu_1_at_the_guest_entry,
    },
    Test {
        name: "host_cannot_lend_a_page_into_a_protected_vm",
        run: guest_address_space::host_cannot_lend_a_page_into_a_protected_vm,
    },
    Test {
        name: "unbacked_store_gives_the_host_no_data",
        run: guest_address_space::unbacked_store_gives_the_host_no_data,
    },
    Test {
        name: "memory_donated_after_launch_is_fresh",
        run: guest_address_space::memory_donated_after_launch_is_fresh,
    },
    Test {
        name: "guest_smccc_and_trng_queries_never_reach_the_host",
        run: locked_launch::guest_smccc_and_trng_queries_never_reach_the_host,
    },
    Test {
        name: "second_run_of_running_vcpu_is_busy",
        run: second_cpu::second_run_of_running_vcpu_is_busy,
    },
    Test {
        name: "host_priority_mask_does_not_keep_an_irq_from_ending_a_guest_run",
        run: irq_exit::host_priority_mask_does_not_keep_an_irq_from_ending_a_guest_run,
    },
    Test {
        name: "guest_sees_no_sve_or_pmu_in_its_id_registers",
        run: world_switch::guest_sees_no_sve_or_pmu_in_its_id_registers,
    },
    Test {
        name: "guest_access_to_trapped_registers_is_undefined",
        run: world_switch::guest_access_to_trapped_registers_is_undefined,
    },
    Test {
        name: "guest_write_to_actlr_el1_does_not_reach_the_host",
        run: world_switch::guest_write_to_actlr_el1_does_not_reach_the_host,
    },
    Test {
        name: "guest_cannot_read_or_write_the_hosts_tpidr2_el0",
        run: world_switch::guest_cannot_read_or_write_the_hosts_tpidr2_el0,
    },
    Test {
        name: "host_pmu_counts_nothing_while_a_guest_runs",
        run: world_switch::host_pmu_counts_nothing_while_a_guest_runs,
    },
    Test {
        name: "host_sve_state_survives_vcpu_run",
        run: world_switch::host_sve_state_survives_vcpu_run,
    },
    Test {
        name: "host_in_streaming_mode_can_run_a_guest",
        run: world_switch::host_in_streaming_mode_can_run_a_guest,
    },
    Test {
        name: "host_features_in_its_id_registers_work_at_el1",
        run: host_features::host_features_in_its_id_registers_work_at_el1,
    },
    Test {
        name: "host_spectre_workaround_queries_reach_the_firmware",
        run: world_switch::host_spectre_workaround_queries_reach_the_firmware,
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
    Test {
        name: "host_cpu_suspend_smc32_is_not_supported",
        run: psci_relay::host_cpu_suspend_smc32_is_not_supported,
    },
    Test {
        name: "host_cannot_switch_mem_protect_and_unsupported_reset2_changes_nothing",
        run: psci_relay::host_cannot_switch_mem_protect_and_unsupported_reset2_changes_nothing,
    },
    Test {
        name: "host_instruction_fetch_from_mmio_is_an_abort_not_a_retry_loop",
        run: host_faults::host_instruction_fetch_from_mmio_is_an_abort_not_a_retry_loop,
    },
];
