//! Names of the SMMUv3's event records (Arm IHI 0070 7.3), for the log.

/// Event IDs (IHI 0070 7.3) and their names.
pub fn event_name(id: u8) -> &'static str {
    match id {
        0x01 => "F_UUT",
        0x02 => "C_BAD_STREAMID",
        0x03 => "F_STE_FETCH",
        0x04 => "C_BAD_STE",
        0x06 => "F_STREAM_DISABLED",
        0x07 => "F_TRANSL_FORBIDDEN",
        0x08 => "C_BAD_SUBSTREAMID",
        0x09 => "F_CD_FETCH",
        0x0a => "C_BAD_CD",
        0x0b => "F_WALK_EABT",
        0x10 => "F_TRANSLATION",
        0x11 => "F_ADDR_SIZE",
        0x12 => "F_ACCESS",
        0x13 => "F_PERMISSION",
        0x20 => "F_TLB_CONFLICT",
        0x21 => "F_CFG_CONFLICT",
        _ => "event",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn translation_faults_are_named() {
        assert_eq!(super::event_name(0x10), "F_TRANSLATION");
        assert_eq!(super::event_name(0x02), "C_BAD_STREAMID");
        assert_eq!(super::event_name(0xff), "event");
    }
}
