//! A boot with `/chosen/el2,unconfined-dma`: the devices EL2 cannot confine are the host's
//! (mapped and in its DTB), and protected VMs are refused (docs/abi.md 4.3, VM_CREATE
//! DENIED). The payload's log names each device (xtask checks that line).

use crate::{fw_cfg, virt};
use el1_rt::testing::{TestCtx, TestResult};
use el1_rt::{bail, host_calls, probe};
use hvc_abi::Error;

/// What fw_cfg's DMA address register reads as: "QEMU CFG" (fw_cfg.txt).
const FW_CFG_DMA_SIGNATURE: u64 = 0x5145_4d55_2043_4647;

/// fw_cfg's registers are mapped for the host: its DMA register reads the signature.
pub fn fw_cfg_reachable(_ctx: &mut TestCtx) -> TestResult {
    match probe::read_u64(fw_cfg::DMA_ADDRESS) {
        // A big-endian register seen through a little-endian 64-bit load.
        Ok(value) if value.swap_bytes() == FW_CFG_DMA_SIGNATURE => Ok(()),
        Ok(value) => bail!("fw_cfg DMA register reads {value:#x}, not \"QEMU CFG\""),
        Err(abort) => bail!("fw_cfg was not handed over: {abort}"),
    }
}

/// The host's DTB keeps fw_cfg, the transports, the ITS and the PCIe bridge.
pub fn devices_in_the_dtb(ctx: &mut TestCtx) -> TestResult {
    let dtb = ctx.platform.dtb.base;
    for compatible in [
        "qemu,fw-cfg-mmio",
        "virtio,mmio",
        "arm,gic-v3-its",
        "pci-host-ecam-generic",
    ] {
        if !virt::dtb_has_compatible(dtb, compatible) {
            bail!("the host's DTB lost its {compatible} node");
        }
    }
    Ok(())
}

/// VM_CREATE answers DENIED, with nothing created.
pub fn vm_create_denied(_ctx: &mut TestCtx) -> TestResult {
    match host_calls::vm_create(1, test_guest::IPA_BITS) {
        Err(e) if e.abi_error() == Some(Error::Denied) => Ok(()),
        Err(e) => bail!("VM_CREATE: {e}, expected DENIED"),
        Ok(handle) => {
            let _ = host_calls::vm_destroy(handle);
            bail!("VM_CREATE created VM {handle:?} after a boot with unconfined DMA")
        }
    }
}
