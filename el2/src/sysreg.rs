//! System registers that `aarch64-cpu` does not model (yet), accessed by their names or
//! by their encodings. Everything else goes through `aarch64_cpu::registers`.

macro_rules! sysreg_ro {
    ($read:ident, $name:literal) => {
        pub fn $read() -> u64 {
            let value: u64;
            // SAFETY: reading this register has no side effects.
            unsafe {
                core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags));
            }
            value
        }
    };
}

macro_rules! sysreg_rw {
    ($read:ident, $write:ident, $name:literal) => {
        #[allow(dead_code)]
        pub fn $read() -> u64 {
            let value: u64;
            // SAFETY: reading this register has no side effects.
            unsafe {
                core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack, preserves_flags));
            }
            value
        }

        /// # Safety
        /// The caller must know what the new value does to the CPU's configuration.
        #[allow(dead_code)]
        pub unsafe fn $write(value: u64) {
            // SAFETY: the caller upholds this function's contract.
            unsafe {
                core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) value, options(nostack, preserves_flags));
            }
        }
    };
}

sysreg_rw!(vpidr_el2, set_vpidr_el2, "vpidr_el2");
sysreg_rw!(hstr_el2, set_hstr_el2, "hstr_el2");
sysreg_rw!(pmcr_el0, set_pmcr_el0, "pmcr_el0");
// SVE and SME vector-length limits (ZCR_EL2, SMCR_EL2), by encoding so that no target
// feature is needed to assemble them.
sysreg_rw!(zcr_el2, set_zcr_el2, "s3_4_c1_c2_0");
sysreg_rw!(smcr_el2, set_smcr_el2, "s3_4_c1_c2_6");
// FEAT_HCX's HCRX_EL2.
sysreg_rw!(hcrx_el2, set_hcrx_el2, "s3_4_c1_c2_2");
sysreg_ro!(ctr_el0, "ctr_el0");
sysreg_ro!(dczid_el0, "dczid_el0");
sysreg_rw!(cnthp_ctl_el2, set_cnthp_ctl_el2, "cnthp_ctl_el2");
sysreg_rw!(cnthp_cval_el2, set_cnthp_cval_el2, "cnthp_cval_el2");
// ID registers aarch64-cpu does not model, by encoding.
sysreg_ro!(id_aa64isar2_el1, "s3_0_c0_c6_2");
sysreg_ro!(id_aa64mmfr2_el1, "s3_0_c0_c7_2");
// The physical GICv3 priority mask (at EL2, ICC_PMR_EL1 is always the physical one) and
// the virtual CPU interface's trap controls.
sysreg_rw!(icc_pmr_el1, set_icc_pmr_el1, "s3_0_c4_c6_0");
// PMU counter enables.
sysreg_rw!(pmcntenset_el0, set_pmcntenset_el0, "pmcntenset_el0");
sysreg_rw!(pmcntenclr_el0, set_pmcntenclr_el0, "pmcntenclr_el0");
// FEAT_TRF's trace filter control for EL1&0.
sysreg_rw!(trfcr_el1, set_trfcr_el1, "s3_0_c1_c2_1");
// SME's SVCR (streaming mode and ZA enables).
sysreg_ro!(svcr, "s3_3_c4_c2_2");
