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

use crate::config::Destination;
use crate::event::Opcode;
use crate::journal::block::{events, Malformed};
use crate::journal::layout::WindowSpec;

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

/// A field's element tags, built once per window so that a field costs
/// three appends (open tag, text, close tag) instead of seven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `<name>`, or `<name key="true">` for a key field.
    open: Box<[u8]>,
    /// `</name>`.
    close: Box<[u8]>,
}

impl Tag {
    pub fn new(name: &str, key: bool) -> Tag {
        let attr = if key { " key=\"true\"" } else { "" };
        Tag {
            open: format!("<{name}{attr}>").into_bytes().into(),
            close: format!("</{name}>").into_bytes().into(),
        }
    }
}

impl Window {
    pub fn of(d: &Destination) -> Window {
        Window::from_spec(&WindowSpec::of(d, false))
    }

    /// The window a journal destination names (`journal::layout`).
    pub fn from_spec(w: &WindowSpec) -> Window {
        Window {
            label: format!("{}/{}/{}", w.project, w.contquery, w.window),
            inject_path: format!(
                "/windows/{}/{}/{}/state?value=injected",
                path_segment(&w.project),
                path_segment(&w.contquery),
                path_segment(&w.window)
            ),
            project: w.project.clone(),
            fields: w.fields.iter().map(|(n, k)| Tag::new(n, *k)).collect(),
            opcode: w.opcode,
            transactional: w.transactional,
        }
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
        out.extend_from_slice(b"<event><opcode>");
        let op = match w.opcode {
            Some(o) => o.letter() as u8,
            None => e.opcode,
        };
        out.push(op);
        out.extend_from_slice(b"</opcode>");
        if e.flags != b'n' && e.flags != b'N' {
            out.extend_from_slice(b"<flags>");
            out.push(e.flags);
            out.extend_from_slice(b"</flags>");
        }
        for (f, tag) in e.fields().zip(&w.fields) {
            let Some(text) = f else {
                continue;
            };
            out.extend_from_slice(&tag.open);
            escape_into(text, out);
            out.extend_from_slice(&tag.close);
        }
        out.extend_from_slice(b"</event>");
        n += 1;
    }
    Ok(n)
}

/// XML text escaping for element content.
pub fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    let mut last = 0;
    for (i, &b) in text.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\r' => b"&#13;",
            _ => continue,
        };
        out.extend_from_slice(&text[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&text[last..]);
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
    use crate::journal::block::BlockWriter;

    fn window(opcode: Option<Opcode>) -> Window {
        Window {
            label: "p/cq/w".into(),
            inject_path: "/windows/p/cq/w/state?value=injected".into(),
            project: "p".into(),
            fields: vec![
                Tag::new("id", true),
                Tag::new("sym", false),
                Tag::new("note", false),
            ],
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
        let mut out = Vec::new();
        assert_eq!(events_xml(&b.buf, &window(None), &mut out), Ok(2));
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "<events><event><opcode>i</opcode><id key=\"true\">1</id><sym>A&amp;B</sym></event>\
             <event><opcode>u</opcode><flags>p</flags><id key=\"true\">2</id><sym>&lt;x&gt;</sym><note>a&#13;\nb</note></event></events>"
        );
        events_xml(&b.buf, &window(Some(Opcode::Upsert)), &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .matches("<opcode>p</opcode>")
                .count()
                == 2
        );
        assert_eq!(path_segment("my proj/x"), "my%20proj%2Fx");
    }

    #[test]
    fn a_damaged_payload_is_an_error() {
        let mut out = Vec::new();
        assert_eq!(events_xml(b"i", &window(None), &mut out), Err(Malformed));
    }
}
