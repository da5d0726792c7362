//! `cargo fuzz run decode_csv`: the csv decoder on arbitrary bytes, split
//! arbitrarily (see `edgecm::source::fuzz_stream` for what is checked).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edgecm::source::fuzz_stream(edgecm::config::FsType::Csv, data);
});
