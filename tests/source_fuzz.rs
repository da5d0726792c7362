//! The fuzz harness (`edgecm::source::fuzz_stream`, also run by cargo-fuzz
//! in fuzz/) on random bytes and on mutated valid input, for each format, so
//! CI checks what the fuzzer checks: no panic, offsets forward and inside the
//! input, the same events however the input is split.

use edgecm::config::FsType;
use edgecm::source::fuzz_stream;
use proptest::prelude::*;

const CSV: &[u8] = b"i,n,1,2,1.5,3.25,\"a,\"\"b\"\"\",2020-01-01 00:00:00,2020-01-01 00:00:00.5,aGk=,[1.0;2.0],[1;2]\r\nu,p,2,,,,,,,,,\n";
const XML: &[u8] = b"<events><transaction><event><opcode>i</opcode><id key=\"true\">1</id><s>a&amp;b<![CDATA[<x>]]></s><a>[1;2]</a></event></transaction><event opcode='d'><id>2</id></event></events>";
const JSON: &[u8] = b"[{\"id\":1,\"s\":\"x\\u00e9\",\"a\":[1.5,2],\"opcode\":\"upsert\"},\n{\"id\":2}]\n{\"opcode\":\"i\",\"event\":{\"id\":3}}\n";

fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8).prop_map(
        move |edits| {
            let mut v = seed.repeat(3);
            for (at, byte, op) in edits {
                let i = at.index(v.len());
                match op {
                    0 => v[i] = byte,
                    1 => v.insert(i, byte),
                    _ => {
                        v.remove(i);
                    }
                }
            }
            v
        },
    )
}

#[test]
fn the_seeds_decode_without_errors() {
    // `fuzz_stream` sets a dateformat when the first byte is odd: 'i' (0x69) is.
    assert_eq!(fuzz_stream(FsType::Csv, CSV), 2);
    assert_eq!(fuzz_stream(FsType::Xml, XML), 2);
    assert_eq!(fuzz_stream(FsType::Json, JSON), 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600), fmt in 0u8..3) {
        let f = [FsType::Csv, FsType::Xml, FsType::Json][fmt as usize];
        fuzz_stream(f, &data);
    }

    #[test]
    fn mutated_csv(data in mutated(CSV)) {
        fuzz_stream(FsType::Csv, &data);
    }

    #[test]
    fn mutated_xml(data in mutated(XML)) {
        fuzz_stream(FsType::Xml, &data);
    }

    #[test]
    fn mutated_json(data in mutated(JSON)) {
        fuzz_stream(FsType::Json, &data);
    }
}

#[test]
fn an_endless_line_is_bounded() {
    // Longer than limits::EVENT_MAX, without newline: one error, no growth.
    let mut data = b"i,n,".to_vec();
    data.resize(600_000, b'7');
    data.extend_from_slice(
        b"\ni,n,1,2,1.5,3.25,s,2020-01-01 00:00:00,2020-01-01 00:00:00,aGk=,[1.0],[1]\n",
    );
    assert_eq!(fuzz_stream(FsType::Csv, &data), 1);
    let mut x = b"<event><id>".to_vec();
    x.resize(600_000, b'1');
    fuzz_stream(FsType::Xml, &x);
    let mut j = b"{\"id\":\"".to_vec();
    j.resize(600_000, b'a');
    fuzz_stream(FsType::Json, &j);
}
