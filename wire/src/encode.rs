//! A journal record's events as the body ESP's inject endpoint takes: the XML
//! event format (esp-protocol.md §5.4).
//!
//! ```text
//! <events>
//!   <event><opcode>i</opcode><id key="true">1</id><symbol>IBM</symbol>...</event>
//! </events>
//! ```
//! One element per schema field in schema order, `key="true"` on key fields,
//! a null field left out, text escaped (`& < >`, and CR as `&#13;` so it
//! survives XML's newline normalisation). The destination's opcode, when it
//! sets one, replaces each event's. Flags are written only when not normal
//! (`<flags>p</flags>`), as ESP's own XML events do.
//!
//! The body is built straight from the record's payload into one reused
//! buffer: the only copy of the event text between flash and the socket.

use crate::block::{events, Malformed};
use crate::event::Opcode;

/// A target window, as the sender needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `project/contquery/window`, for messages and dead letters.
    pub label: String,
    /// The inject path under the base: `/windows/p/cq/w/state?value=injected`.
    pub inject_path: String,
    /// The project this window belongs to (deployed before publishing).
    pub project: String,
    /// Each schema field's element tags, in schema order.
    pub fields: Vec<Tag>,
    pub opcode: Option<Opcode>,
    /// The source's `transactional`: each record goes as one
    /// `<transaction>`, one record per request.
    pub transactional: bool,
}

/// A field's element tags, built once per window so that a field costs two
/// appends (text, then this tag's close joined with what follows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `<name>`, or `<name key="true">` for a key field.
    open: Box<[u8]>,
    /// `</name>`.
    close: Box<[u8]>,
    /// `</name>` and the next field's open tag (for the last field, empty).
    then_next: Box<[u8]>,
    /// `</name></event>`.
    then_end: Box<[u8]>,
}

impl Tag {
    /// The tags of a schema's fields, `(name, key)` in schema order.
    pub fn all<'a>(fields: impl IntoIterator<Item = (&'a str, bool)>) -> Vec<Tag> {
        let mut tags: Vec<Tag> = fields
            .into_iter()
            .map(|(name, key)| {
                let attr = if key { " key=\"true\"" } else { "" };
                let close = format!("</{name}>").into_bytes();
                Tag {
                    open: format!("<{name}{attr}>").into_bytes().into(),
                    then_next: Box::default(),
                    then_end: [&close[..], b"</event>"].concat().into(),
                    close: close.into(),
                }
            })
            .collect();
        for k in 1..tags.len() {
            tags[k - 1].then_next = [&tags[k - 1].close[..], &tags[k].open[..]].concat().into();
        }
        tags
    }
}

/// Percent-encodes what may not stand in a URL path segment.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Writes `payload`'s events into `out` (cleared first) as an `<events>`
/// document. Returns the number of events.
pub fn events_xml(payload: &[u8], w: &Window, out: &mut Vec<u8>) -> Result<u32, Malformed> {
    out.clear();
    out.extend_from_slice(b"<events>");
    let n = event_elements(payload, w, out)?;
    out.extend_from_slice(b"</events>");
    Ok(n)
}

/// Appends one `<event>` element per event of `payload` to `out` (the body
/// of an `<events>` element; several records may share one). On error,
/// `out` may hold part of the record: the caller cuts it back.
pub fn event_elements(payload: &[u8], w: &Window, out: &mut Vec<u8>) -> Result<u32, Malformed> {
    let mut n = 0;
    for e in events(payload) {
        let e = e?;
        let op = match w.opcode {
            Some(o) => o.letter() as u8,
            None => e.opcode,
        };
        let at = out.len() + b"<event><opcode>".len();
        out.extend_from_slice(b"<event><opcode>i</opcode>");
        out[at] = op;
        if e.flags != b'n' && e.flags != b'N' {
            let at = out.len() + b"<flags>".len();
            out.extend_from_slice(b"<flags>n</flags>");
            out[at] = e.flags;
        }
        // The field written last, whose close tag is still to come.
        let mut last: Option<usize> = None;
        for (k, (f, tag)) in e.fields().zip(&w.fields).enumerate() {
            let Some(text) = f else {
                continue;
            };
            match last {
                Some(p) if p + 1 == k => out.extend_from_slice(&w.fields[p].then_next),
                Some(p) => {
                    out.extend_from_slice(&w.fields[p].close);
                    out.extend_from_slice(&tag.open);
                }
                None => out.extend_from_slice(&tag.open),
            }
            escape_into(text, out);
            last = Some(k);
        }
        match last {
            Some(p) => out.extend_from_slice(&w.fields[p].then_end),
            None => out.extend_from_slice(b"</event>"),
        }
        n += 1;
    }
    Ok(n)
}

/// The bytes element content escapes.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

/// XML text escaping for element content: runs without a byte to escape
/// (nearly all text) are copied whole.
pub fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    let mut rest = text;
    while let Some(k) = rest.iter().position(|&b| ESCAPED[usize::from(b)]) {
        out.extend_from_slice(&rest[..k]);
        out.extend_from_slice(match rest[k] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            _ => b"&#13;",
        });
        rest = &rest[k + 1..];
    }
    out.extend_from_slice(rest);
}

/// `escape_into` for a `str`, returning a `String`.
pub fn escape(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len());
    escape_into(s.as_bytes(), &mut v);
    String::from_utf8(v).expect("escaping keeps UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockWriter;

    fn window(opcode: Option<Opcode>) -> Window {
        Window {
            label: "p/cq/w".into(),
            inject_path: "/windows/p/cq/w/state?value=injected".into(),
            project: "p".into(),
            fields: Tag::all([("id", true), ("sym", false), ("note", false)]),
            opcode,
            transactional: false,
        }
    }

    #[test]
    fn events_become_an_events_document() {
        let mut b = BlockWriter::default();
        b.push(
            b'i',
            b'n',
            [Some(&b"1"[..]), Some(b"A&B"), None].into_iter(),
        );
        b.push(
            b'u',
            b'p',
            [Some(&b"2"[..]), Some(b"<x>"), Some(b"a\r\nb")].into_iter(),
        );
        b.push(b'd', b'n', [Some(&b"3"[..]), None, Some(b"n")].into_iter());
        b.push(b'i', b'n', [None, None, None].into_iter());
        let mut out = Vec::new();
        assert_eq!(events_xml(&b.buf, &window(None), &mut out), Ok(4));
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "<events><event><opcode>i</opcode><id key=\"true\">1</id><sym>A&amp;B</sym></event>\
             <event><opcode>u</opcode><flags>p</flags><id key=\"true\">2</id><sym>&lt;x&gt;</sym><note>a&#13;\nb</note></event>\
             <event><opcode>d</opcode><id key=\"true\">3</id><note>n</note></event>\
             <event><opcode>i</opcode></event></events>"
        );
        events_xml(&b.buf, &window(Some(Opcode::Upsert)), &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .matches("<opcode>p</opcode>")
                .count()
                == 4
        );
        assert_eq!(path_segment("my proj/x"), "my%20proj%2Fx");
    }

    proptest::proptest! {
        #[test]
        fn escaping_replaces_each_special_byte_and_keeps_the_rest(text in proptest::collection::vec(proptest::sample::select(b"ab&<>\"\r\n'".to_vec()), 0..40)) {
            let mut want = Vec::new();
            for &b in &text {
                match b {
                    b'&' => want.extend_from_slice(b"&amp;"),
                    b'<' => want.extend_from_slice(b"&lt;"),
                    b'>' => want.extend_from_slice(b"&gt;"),
                    b'"' => want.extend_from_slice(b"&quot;"),
                    b'\r' => want.extend_from_slice(b"&#13;"),
                    b => want.push(b),
                }
            }
            let mut out = Vec::new();
            escape_into(&text, &mut out);
            proptest::prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn a_damaged_payload_is_an_error() {
        let mut out = Vec::new();
        assert_eq!(events_xml(b"i", &window(None), &mut out), Err(Malformed));
    }
}
