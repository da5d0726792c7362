//! Fingerprints: of the config every manager of a failover group must share,
//! and of a project's XML as deployed (`engine::deployed`).

/// What every manager of a failover group must agree on: its raw-sources,
/// clusters and maps (a standby with another is refused).
pub fn config_fingerprint(config: &super::Config) -> u64 {
    fingerprint(&format!(
        "{:?}{:?}{:?}",
        config.raw_sources, config.clusters, config.esp_maps
    ))
}

/// FNV-1a, 64 bits: the config fingerprint.
pub fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_with_the_text() {
        assert_eq!(fingerprint(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fingerprint("<a/>"), fingerprint("<b/>"));
    }
}
