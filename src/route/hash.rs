//! The two fixed, seedless hash functions of routing (contract 6: the same
//! answer on every machine, every run, every word size). Never Rust's
//! randomly keyed `HashMap` hasher.
//!
//! - Events: [`event_hash`] = FNV-1a 64 over the key fields' text, each field
//!   followed by the byte 0x1F (unit separator, so `("ab","c")` and
//!   `("a","bc")` differ), then the murmur3 64-bit finalizer `fmix64`, which
//!   spreads FNV's weak low bits (keys such as "77", "78" differ only there).
//! - Ring points: [`ring_point`] = splitmix64 of (FNV-1a 64 of the engine's
//!   name + the virtual point's index), truncated to 32 bits. A different
//!   function from the event hash, as the seed's durable hash asks.
//!
//! Both use only wrapping u64 arithmetic, so armv7 computes the same values.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Separates fields inside the hashed text.
const FIELD_END: u8 = 0x1f;

/// FNV-1a 64 state, fed field by field.
#[derive(Clone, Copy)]
pub struct Fnv1a(u64);

impl Fnv1a {
    pub fn new() -> Fnv1a {
        Fnv1a(FNV_OFFSET)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.0 = h;
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a::new()
    }
}

/// murmur3's 64-bit finalizer.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// splitmix64's output function.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of an event's key fields, given as their text in order.
pub fn event_hash<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h = Fnv1a::new();
    for f in fields {
        h.write(f);
        h.write(&[FIELD_END]);
    }
    fmix64(h.finish())
}

/// Where virtual point `index` of engine `name` sits on the 32-bit ring.
pub fn ring_point(name: &str, index: u32) -> u32 {
    let mut h = Fnv1a::new();
    h.write(name.as_bytes());
    (splitmix64(h.finish().wrapping_add(u64::from(index))) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_published_vectors() {
        // From the FNV reference test suite (fnv_test.c, FNV-1a 64).
        let h = |s: &[u8]| {
            let mut f = Fnv1a::new();
            f.write(s);
            f.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn field_boundaries_matter() {
        assert_ne!(
            event_hash([&b"ab"[..], b"c"]),
            event_hash([&b"a"[..], b"bc"])
        );
        assert_ne!(event_hash([&b""[..]]), event_hash([]));
    }
}
