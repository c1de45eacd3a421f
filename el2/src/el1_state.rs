//! The EL1 state that the host and a guest each own and that EL2 swaps on a world switch:
//! the EL1/EL0 system registers, the pointer-authentication keys and the FP/SIMD registers.
//!
//! Everything a guest could read that held host data is in this list, so a protected
//! guest sees nothing of the host and the host nothing of the guest (beyond what the guest
//! puts into an exit). Not switched: SVE/SME state beyond the 128-bit V registers (the
//! payload gives guests no SVE: CPTR_EL2.TZ/TSM trap it, see `vcpu`), debug and PMU
//! registers (trapped for guests through MDCR_EL2), ACTLR_EL1 (trapped, HCR_EL2.TACR, and
//! emulated as zero by `guest_sysregs`), and registers of features the payload does not
//! advertise to guests (their ID registers are sanitised, `guest_sysregs`). The host's own
//! SVE registers beyond the V registers are kept by `host_sve`.

use core::arch::asm;

const _: () = assert!(core::mem::size_of::<FpRegs>() == 528);

macro_rules! el1_sysregs {
    (
        translation { $($tfield:ident => $treg:literal),* $(,)? }
        others { $($field:ident => $reg:literal),* $(,)? }
    ) => {
        /// EL1/EL0 system registers of one world.
        #[repr(C)]
        #[derive(Clone, Copy, Default, Debug)]
        pub struct SysRegs {
            $(pub $tfield: u64,)*
            $(pub $field: u64,)*
        }

        impl SysRegs {
            pub const fn zeroed() -> Self {
                Self { $($tfield: 0,)* $($field: 0,)* }
            }

            /// Reads every register of the world currently loaded.
            pub fn save() -> Self {
                let mut s = Self::default();
                $(
                    // SAFETY: reading an EL1 register at EL2 has no side effect.
                    unsafe { asm!(concat!("mrs {}, ", $treg), out(reg) s.$tfield, options(nomem, nostack, preserves_flags)) };
                )*
                $(
                    // SAFETY: as above.
                    unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) s.$field, options(nomem, nostack, preserves_flags)) };
                )*
                s
            }

            /// Loads every register but the stage-1 translation controls (SCTLR_EL1,
            /// TCR_EL1), which the speculative-AT sequence loads last (`speculative_at`).
            pub fn load_except_translation(&self) {
                $(
                    // SAFETY: EL1's registers only affect EL1/EL0, which is not running
                    // while EL2 executes; the values come from the same world.
                    unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) self.$field, options(nostack, preserves_flags)) };
                )*
            }

            /// Loads every register; takes effect for EL1 after the next ERET.
            pub fn load(&self) {
                self.load_except_translation();
                $(
                    // SAFETY: as above.
                    unsafe { asm!(concat!("msr ", $treg, ", {}"), in(reg) self.$tfield, options(nostack, preserves_flags)) };
                )*
            }
        }
    };
}

el1_sysregs! {
    translation {
        sctlr => "sctlr_el1",
        tcr => "tcr_el1",
    }
    others {
        cpacr => "cpacr_el1",
        ttbr0 => "ttbr0_el1",
        ttbr1 => "ttbr1_el1",
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
}

/// Pointer-authentication keys (five 128-bit keys), switched only where FEAT_PAuth exists.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PauthKeys([u64; 10]);

macro_rules! pauth_keys {
    ($($i:literal => $reg:literal),*) => {
        impl PauthKeys {
            pub const fn zeroed() -> Self {
                Self([0; 10])
            }

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
        Self::zeroed()
    }
}

unsafe extern "C" {
    fn fpsimd_save(regs: *mut FpRegs);
    fn fpsimd_load(regs: *const FpRegs);
}

impl FpRegs {
    pub const fn zeroed() -> Self {
        Self {
            v: [0; 32],
            fpsr: 0,
            fpcr: 0,
        }
    }

    pub fn save(&mut self) {
        // SAFETY: `fpsimd_save` (asm/fpsimd.S) stores exactly size_of::<FpRegs>() bytes
        // at the layout `FpRegs` declares.
        unsafe { fpsimd_save(self) };
    }

    pub fn load(&self) {
        // SAFETY: as above, reading; EL2 is soft-float, so no EL2 value lives in the
        // registers it overwrites.
        unsafe { fpsimd_load(self) };
    }
}

/// One world's complete EL1 state.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct El1State {
    pub sys: SysRegs,
    pub pauth: PauthKeys,
    pub fp: FpRegs,
    /// A guest's virtual SError is pending (HCR_EL2.VSE, see `guest_serror`); always
    /// false for the host.
    pub virtual_serror: bool,
}

impl El1State {
    pub const fn zeroed() -> Self {
        Self {
            sys: SysRegs::zeroed(),
            pauth: PauthKeys::zeroed(),
            fp: FpRegs::zeroed(),
            virtual_serror: false,
        }
    }

    pub fn save(&mut self) {
        self.sys = SysRegs::save();
        if crate::guest_sysregs::has_pointer_auth() {
            self.pauth = PauthKeys::save();
        }
        self.fp.save();
    }

    pub fn load(&self) {
        self.sys.load();
        self.load_keys_and_fp();
    }

    /// Loads everything but SCTLR_EL1 and TCR_EL1: the speculative-AT sequence keeps the
    /// values that stop stage-1 walks until the world's stage 2 is in place, then loads
    /// the world's own (`speculative_at::unblock_stage1_walks`).
    pub fn load_except_translation(&self) {
        self.sys.load_except_translation();
        self.load_keys_and_fp();
    }

    fn load_keys_and_fp(&self) {
        if crate::guest_sysregs::has_pointer_auth() {
            self.pauth.load();
        }
        self.fp.load();
    }
}
