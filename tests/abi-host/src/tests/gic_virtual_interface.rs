//! The host cannot reach the GIC's virtual interface.
//!
//! On a GICv2 (GIC-400: zcu102) the virtual interface is memory-mapped: GICH, the control
//! registers (GICH_HCR, the list registers), and GICV, the virtual CPU interface. A host
//! that could write GICH could make a protected guest take virtual interrupts it never
//! asked for (GICH_HCR.En and a pending list register assert the CPU's virtual IRQ, which
//! a guest running with HCR_EL2.IMO set takes) and read back what a guest acknowledged.
//! The payload gives guests no virtual GIC, so neither block may be in the host's stage 2:
//! a host access must end in an injected abort. On a GICv3 the same controls are the
//! ICH_*_EL2 system registers, which EL1 cannot access at all; the check there is that the
//! GIC node lists no memory-mapped virtual interface for the host to reach (QEMU `virt`
//! lists none; a GICv3 with the legacy interface would list GICH/GICV, which are probed).

use crate::runner::{Ctx, TestResult, bail};
use el1_rt::exceptions::{DFSC_SYNC_EXTERNAL_ABORT, EC_DATA_ABORT_SAME_EL};
use el1_rt::probe;

pub fn host_cannot_reach_the_gic_virtual_interface(ctx: &mut Ctx) -> TestResult {
    let Some(gic) = ctx.platform.board.gic else {
        bail!("the DTB describes no GICv2 or GICv3");
    };
    let blocks = [
        ("GICH (virtual interface control)", gic.hypervisor_interface),
        ("GICV (virtual CPU interface)", gic.virtual_cpu_interface),
    ];
    for (name, region) in blocks {
        let Some(region) = region else { continue };
        let base = region.base as usize;
        // Offset 0: GICH_HCR / GICV_CTLR. Reading either has no side effect.
        match probe::read_u32(base) {
            Ok(value) => bail!("the host read {name} at {base:#x}: {value:#x}"),
            Err(abort)
                if abort.ec() == EC_DATA_ABORT_SAME_EL
                    && abort.dfsc() == DFSC_SYNC_EXTERNAL_ABORT => {}
            Err(abort) => {
                bail!("reading {name} at {base:#x}: expected an injected abort, got {abort}")
            }
        }
    }
    Ok(())
}
