//! The admin API's request handling before the core: the HTTP head parser
//! with its limits, the credential check, and the router.
#![no_main]

use edgecm::http::server::{parse_head, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        body_max: edgecm::admin::BODY_MAX,
        ..Limits::default()
    };
    let auth = edgecm::auth::AdminAuth::new(None, &[], 0, None).expect("no files");
    if let Ok(Some(head)) = parse_head(data, &limits) {
        let authz = head
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_slice());
        let _ = auth.accepts(authz);
        let _ = edgecm::admin::route(&head.method, &head.url);
        let body = &data[head.used.min(data.len())..];
        if let Ok(text) = std::str::from_utf8(body) {
            let _ = edgecm::config::parse_engine("fuzz", text);
        }
    }
});
