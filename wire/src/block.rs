//! A record's payload: its events, each already split into fields, so the
//! sender builds the engine's request body without re-parsing source text.
//!
//! ```text
//! event  := opcode:u8 flags:u8 nfields:varint field*
//! field  := 0                      (null: an empty CSV field)
//!         | varint(len + 1) bytes  (the field's text as the source gave it)
//! ```
//! `opcode` and `flags` are ESP's letters (`i u p d s`, `n p r`). Varints are
//! LEB128 (7 bits a byte, low first), at most 5 bytes for a u32.

/// Appends events to a payload buffer.
#[derive(Debug, Default)]
pub struct BlockWriter {
    pub buf: Vec<u8>,
    pub count: u32,
    /// Each field's text as `buf[start..end]`, event after event, in the
    /// order pushed; `(u32::MAX, 0)` for a null field. What routing hashes,
    /// kept as the events are written so that nobody reads them back.
    pub spans: Vec<(u32, u32)>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl BlockWriter {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
        self.count = 0;
    }

    /// The field spans of event `k` (of `nfields` fields each).
    pub fn event_spans(&self, k: usize, nfields: usize) -> &[(u32, u32)] {
        &self.spans[k * nfields..(k + 1) * nfields]
    }

    /// Adds one event: ESP opcode and flag letters, then each field's text
    /// (`None` for null).
    pub fn push<'a>(
        &mut self,
        opcode: u8,
        flags: u8,
        fields: impl ExactSizeIterator<Item = Option<&'a [u8]>>,
    ) {
        self.buf.push(opcode);
        self.buf.push(flags);
        put_varint(&mut self.buf, fields.len() as u32);
        for f in fields {
            match f {
                None => {
                    self.buf.push(0);
                    self.spans.push((u32::MAX, 0));
                }
                Some(text) => {
                    put_varint(&mut self.buf, text.len() as u32 + 1);
                    let start = self.buf.len() as u32;
                    self.buf.extend_from_slice(text);
                    self.spans.push((start, start + text.len() as u32));
                }
            }
        }
        self.count += 1;
    }
}

/// One event read back from a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub opcode: u8,
    pub flags: u8,
    fields: &'a [u8],
    nfields: u32,
}

impl<'a> EventRef<'a> {
    pub fn field_count(&self) -> usize {
        self.nfields as usize
    }

    /// The fields in schema order; `None` is null.
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            rest: self.fields,
            left: self.nfields,
        }
    }
}

pub struct Fields<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked when the event was read (`Events::next`), so this cannot fail.
        let (v, n) = get_varint(self.rest).expect("field checked by Events::next");
        self.rest = &self.rest[n..];
        if v == 0 {
            return Some(None);
        }
        let len = (v - 1) as usize;
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Some(text))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// A varint's value and length. One byte (every field shorter than 127
/// bytes) is read where it is called, every field of every event;
/// longer ones out of line.
#[inline(always)]
fn get_varint(b: &[u8]) -> Option<(u32, usize)> {
    match b.first() {
        Some(&first) if first & 0x80 == 0 => Some((u32::from(first), 1)),
        _ => get_long_varint(b),
    }
}

fn get_long_varint(b: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &byte) in b.iter().take(5).enumerate() {
        v |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Reads the events of a payload. A malformed payload (only possible from a
/// bug, since the record's CRC held) ends the iteration with `Err`.
pub struct Events<'a> {
    rest: &'a [u8],
}

pub fn events(payload: &[u8]) -> Events<'_> {
    Events { rest: payload }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl<'a> Iterator for Events<'a> {
    type Item = Result<EventRef<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = (|| {
            let b = self.rest;
            if b.len() < 2 {
                return Err(Malformed);
            }
            let (opcode, flags) = (b[0], b[1]);
            let (nfields, n) = get_varint(&b[2..]).ok_or(Malformed)?;
            let start = 2 + n;
            let mut o = start;
            for _ in 0..nfields {
                let (v, n) = get_varint(&b[o..]).ok_or(Malformed)?;
                o += n;
                if v > 0 {
                    o = o
                        .checked_add((v - 1) as usize)
                        .filter(|&e| e <= b.len())
                        .ok_or(Malformed)?;
                }
            }
            self.rest = &b[o..];
            Ok(EventRef {
                opcode,
                flags,
                fields: &b[start..o],
                nfields,
            })
        })();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn events_round_trip(evs in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)), 0..20)),
            0..20,
        )) {
            let mut w = BlockWriter::default();
            for (op, fl, fields) in &evs {
                w.push(*op, *fl, fields.iter().map(|f| f.as_deref()));
            }
            prop_assert_eq!(w.count as usize, evs.len());
            let spans: Vec<Option<Vec<u8>>> = w.spans.iter().map(|&(s, e)| (s != u32::MAX).then(|| w.buf[s as usize..e as usize].to_vec())).collect();
            let fields: Vec<Option<Vec<u8>>> = evs.iter().flat_map(|(_, _, f)| f.iter().cloned()).collect();
            prop_assert_eq!(spans, fields);
            let back: Vec<_> = events(&w.buf).map(|e| e.unwrap()).collect();
            prop_assert_eq!(back.len(), evs.len());
            for (e, (op, fl, fields)) in back.iter().zip(&evs) {
                prop_assert_eq!((e.opcode, e.flags, e.field_count()), (*op, *fl, fields.len()));
                let got: Vec<Option<Vec<u8>>> = e.fields().map(|f| f.map(<[u8]>::to_vec)).collect();
                prop_assert_eq!(&got, fields);
            }
        }

        #[test]
        fn garbage_payloads_end_in_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for e in events(&bytes).flatten() {
                let _ = e.fields().count();
            }
        }
    }
}
