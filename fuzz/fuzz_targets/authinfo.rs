//! The authinfo/netrc parser and lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(a) = edgecm::auth::AuthInfo::parse(text, std::path::Path::new("fuzz")) {
            let _ = a.lookup("host", Some(80), Some("user"));
            let _ = a.lookup("HOST", None, None);
        }
    }
});
