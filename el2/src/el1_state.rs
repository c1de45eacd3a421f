//! The EL1 state that the host and a guest each own and that EL2 swaps on a world switch:
//! the EL1/EL0 system registers, the pointer-authentication keys and the FP/SIMD registers.
//!
//! Everything a guest could read that held host data is in this list, so a protected
//! guest sees nothing of the host and the host nothing of the guest (beyond what the guest
//! puts into an exit). Not switched: SVE/SME state beyond the 128-bit V registers (the
//! payload gives guests no SVE: CPTR_EL2.TZ/TSM trap it, see `vcpu`), debug and PMU
//! registers (trapped for guests through MDCR_EL2), and registers of features the payload
//! does not advertise to guests.

use core::arch::asm;

macro_rules! el1_sysregs {
    ($($field:ident => $reg:literal),* $(,)?) => {
        /// EL1/EL0 system registers of one world.
        #[repr(C)]
        #[derive(Clone, Copy, Default, Debug)]
        pub struct SysRegs {
            $(pub $field: u64,)*
        }

        impl SysRegs {
            /// Reads every register of the world currently loaded.
            pub fn save() -> Self {
                let mut s = Self::default();
                $(
                    // SAFETY: reading an EL1 register at EL2 has no side effect.
                    unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) s.$field, options(nomem, nostack, preserves_flags)) };
                )*
                s
            }

            /// Loads every register; takes effect for EL1 after the next ERET.
            pub fn load(&self) {
                $(
                    // SAFETY: EL1's registers only affect EL1/EL0, which is not running
                    // while EL2 executes; the values come from the same world.
                    unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) self.$field, options(nostack, preserves_flags)) };
                )*
            }
        }
    };
}

el1_sysregs! {
    sctlr => "sctlr_el1",
    cpacr => "cpacr_el1",
    ttbr0 => "ttbr0_el1",
    ttbr1 => "ttbr1_el1",
    tcr => "tcr_el1",
    esr => "esr_el1",
    afsr0 => "afsr0_el1",
    afsr1 => "afsr1_el1",
    far => "far_el1",
    mair => "mair_el1",
    amair => "amair_el1",
    vbar => "vbar_el1",
    contextidr => "contextidr_el1",
    tpidr_el1 => "tpidr_el1",
    tpidr_el0 => "tpidr_el0",
    tpidrro_el0 => "tpidrro_el0",
    cntkctl => "cntkctl_el1",
    par => "par_el1",
    csselr => "csselr_el1",
    sp_el0 => "sp_el0",
    sp_el1 => "sp_el1",
    elr => "elr_el1",
    spsr => "spsr_el1",
    mdscr => "mdscr_el1",
    cntv_ctl => "cntv_ctl_el0",
    cntv_cval => "cntv_cval_el0",
}

/// Pointer-authentication keys (five 128-bit keys), switched only where FEAT_PAuth exists.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PauthKeys([u64; 10]);

macro_rules! pauth_keys {
    ($($i:literal => $reg:literal),*) => {
        impl PauthKeys {
            pub fn save() -> Self {
                let mut k = Self::default();
                $(
                    // SAFETY: reading a key register at EL2 has no side effect (HCR_EL2.APK).
                    unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) k.0[$i], options(nomem, nostack, preserves_flags)) };
                )*
                k
            }

            pub fn load(&self) {
                $(
                    // SAFETY: the keys only affect EL1/EL0 pointer authentication.
                    unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) self.0[$i], options(nostack, preserves_flags)) };
                )*
            }
        }
    };
}

pauth_keys! {
    0 => "s3_0_c2_c1_0", 1 => "s3_0_c2_c1_1",
    2 => "s3_0_c2_c1_2", 3 => "s3_0_c2_c1_3",
    4 => "s3_0_c2_c2_0", 5 => "s3_0_c2_c2_1",
    6 => "s3_0_c2_c2_2", 7 => "s3_0_c2_c2_3",
    8 => "s3_0_c2_c3_0", 9 => "s3_0_c2_c3_1"
}

/// FP/SIMD registers V0-V31, FPSR and FPCR.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct FpRegs {
    v: [u128; 32],
    fpsr: u64,
    fpcr: u64,
}

impl Default for FpRegs {
    fn default() -> Self {
        Self { v: [0; 32], fpsr: 0, fpcr: 0 }
    }
}

impl FpRegs {
    pub fn save(&mut self) {
        // SAFETY: stores 512 bytes into `self.v` (16-byte aligned) and reads FPSR/FPCR.
        unsafe {
            asm!(
                "stp q0, q1, [{p}, #0]", "stp q2, q3, [{p}, #32]",
                "stp q4, q5, [{p}, #64]", "stp q6, q7, [{p}, #96]",
                "stp q8, q9, [{p}, #128]", "stp q10, q11, [{p}, #160]",
                "stp q12, q13, [{p}, #192]", "stp q14, q15, [{p}, #224]",
                "stp q16, q17, [{p}, #256]", "stp q18, q19, [{p}, #288]",
                "stp q20, q21, [{p}, #320]", "stp q22, q23, [{p}, #352]",
                "stp q24, q25, [{p}, #384]", "stp q26, q27, [{p}, #416]",
                "stp q28, q29, [{p}, #448]", "stp q30, q31, [{p}, #480]",
                p = in(reg) self.v.as_mut_ptr(),
                options(nostack, preserves_flags),
            );
            asm!("mrs {}, fpsr", out(reg) self.fpsr, options(nomem, nostack, preserves_flags));
            asm!("mrs {}, fpcr", out(reg) self.fpcr, options(nomem, nostack, preserves_flags));
        }
    }

    pub fn load(&self) {
        // SAFETY: reads 512 bytes from `self.v`; the V registers, FPSR and FPCR belong to the
        // world being loaded (EL2's own Rust code does not keep values in them across this
        // call: it is an out-of-line asm block that clobbers them all).
        unsafe {
            asm!(
                "ldp q0, q1, [{p}, #0]", "ldp q2, q3, [{p}, #32]",
                "ldp q4, q5, [{p}, #64]", "ldp q6, q7, [{p}, #96]",
                "ldp q8, q9, [{p}, #128]", "ldp q10, q11, [{p}, #160]",
                "ldp q12, q13, [{p}, #192]", "ldp q14, q15, [{p}, #224]",
                "ldp q16, q17, [{p}, #256]", "ldp q18, q19, [{p}, #288]",
                "ldp q20, q21, [{p}, #320]", "ldp q22, q23, [{p}, #352]",
                "ldp q24, q25, [{p}, #384]", "ldp q26, q27, [{p}, #416]",
                "ldp q28, q29, [{p}, #448]", "ldp q30, q31, [{p}, #480]",
                "msr fpsr, {fpsr}", "msr fpcr, {fpcr}",
                p = in(reg) self.v.as_ptr(),
                fpsr = in(reg) self.fpsr,
                fpcr = in(reg) self.fpcr,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _,
                out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _,
                out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _,
                out("v17") _, out("v18") _, out("v19") _, out("v20") _, out("v21") _,
                out("v22") _, out("v23") _, out("v24") _, out("v25") _, out("v26") _,
                out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
                options(nostack),
            );
        }
    }
}

/// One world's complete EL1 state.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct El1State {
    pub sys: SysRegs,
    pub pauth: PauthKeys,
    pub fp: FpRegs,
}

fn has_pointer_auth() -> bool {
    use aarch64_cpu::registers::{ID_AA64ISAR1_EL1, Readable};
    ID_AA64ISAR1_EL1.get() & 0xff_0000_0ff0 != 0
}

impl El1State {
    pub fn save(&mut self) {
        self.sys = SysRegs::save();
        if has_pointer_auth() {
            self.pauth = PauthKeys::save();
        }
        self.fp.save();
    }

    pub fn load(&self) {
        self.sys.load();
        if has_pointer_auth() {
            self.pauth.load();
        }
        self.fp.load();
    }
}
