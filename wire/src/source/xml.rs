//! ESP's XML events (esp-protocol.md §5.4):
//! `<events>[<transaction>]<event><opcode>i</opcode><f key="true">v</f>...</event>...`,
//! and the websocket form `<event opcode="insert">`. Each `<event>` is a
//! frame; everything between events (`<events>`, `<transaction>`, the XML
//! declaration, comments) is skipped, so a stream can resume after any event.
//! Values are element text with XML's five entities, character references
//! and CDATA; an empty element is null.

use super::decode::{
    parse_flags, parse_opcode, shown, target, Cursor, Fields, Frame, Layout, Target,
};
use crate::event::{Flags, Opcode};
use memchr::memmem;

fn is_event_tag(b: &[u8]) -> Option<bool> {
    // `<event` then a space, `>` or `/`; not `<events`.
    if b.len() < 7 {
        return if b"<event".starts_with(&b[..b.len().min(6)]) {
            None
        } else {
            Some(false)
        };
    }
    Some(&b[..6] == b"<event" && matches!(b[6], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
}

/// Where the tag starting at `b[0] == '<'` ends (after `>`), quotes honoured.
fn tag_end(b: &[u8]) -> Option<usize> {
    let mut quote = 0u8;
    for (i, &c) in b.iter().enumerate().skip(1) {
        match c {
            b'"' | b'\'' if quote == 0 => quote = c,
            _ if c == quote => quote = 0,
            b'>' if quote == 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn after(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    memmem::find(&b[from..], pat).map(|i| from + i + pat.len())
}

pub fn frame(buf: &[u8], eof: bool) -> Frame {
    let ws = buf.iter().take_while(|c| c.is_ascii_whitespace()).count();
    if ws > 0 {
        return Frame::Skip(ws);
    }
    if buf.is_empty() {
        return Frame::NeedMore;
    }
    let more = |reason| {
        if eof {
            Frame::Bad {
                consumed: buf.len(),
                reason,
            }
        } else {
            Frame::NeedMore
        }
    };
    if buf[0] != b'<' {
        return match memchr::memchr(b'<', buf) {
            Some(i) => Frame::Bad {
                consumed: i,
                reason: "text outside <event> elements",
            },
            None => more("text outside <event> elements"),
        };
    }
    if buf.starts_with(b"<!--") {
        return after(buf, 4, b"-->").map_or_else(|| more("unterminated comment"), Frame::Skip);
    }
    if buf.starts_with(b"<?") {
        return after(buf, 2, b"?>").map_or_else(|| more("unterminated <?...?>"), Frame::Skip);
    }
    match is_event_tag(buf) {
        None => return more("unterminated tag"),
        Some(false) => {
            return tag_end(buf).map_or_else(|| more("unterminated tag"), Frame::Skip);
        }
        Some(true) => {}
    }
    let Some(open_end) = tag_end(buf) else {
        return more("unterminated <event> tag");
    };
    if buf[open_end - 2] == b'/' {
        return Frame::Event {
            start: 0,
            end: open_end,
            consumed: open_end,
        };
    }
    // Find `</event>`, stepping over CDATA and comments.
    let mut i = open_end;
    while let Some(lt) = memchr::memchr(b'<', &buf[i..]) {
        let at = i + lt;
        let rest = &buf[at..];
        if rest.starts_with(b"<![CDATA[") {
            match after(buf, at + 9, b"]]>") {
                Some(e) => i = e,
                None => return more("unterminated CDATA section"),
            }
        } else if rest.starts_with(b"<!--") {
            match after(buf, at + 4, b"-->") {
                Some(e) => i = e,
                None => return more("unterminated comment"),
            }
        } else if rest.starts_with(b"</event") {
            match tag_end(rest) {
                Some(e) if rest[7..e - 1].trim_ascii().is_empty() => {
                    return Frame::Event {
                        start: 0,
                        end: at + e,
                        consumed: at + e,
                    }
                }
                Some(e) => i = at + e,
                None => return more("unterminated </event> tag"),
            }
        } else if rest.len() >= 7 && is_event_tag(rest) == Some(true) {
            return Frame::Bad {
                consumed: at,
                reason: "an <event> inside an <event> (missing </event>?)",
            };
        } else {
            i = at + 1;
        }
    }
    more("unterminated <event>")
}

impl<'a> Cursor<'a> {
    fn name(&mut self) -> &'a [u8] {
        self.until(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/' | b'='))
    }

    /// Reads `name="value"` pairs up to `>` or `/>`; returns whether the
    /// element was self-closing.
    fn attributes(
        &mut self,
        mut on: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), String>,
    ) -> Result<bool, String> {
        loop {
            self.ws();
            match self.rest() {
                [b'/', b'>', ..] => {
                    self.i += 2;
                    return Ok(true);
                }
                [b'>', ..] => {
                    self.i += 1;
                    return Ok(false);
                }
                [] => return Err("unterminated tag".into()),
                _ => {}
            }
            let name = self.name();
            self.ws();
            if name.is_empty() || self.rest().first() != Some(&b'=') {
                return Err(format!("malformed attribute near {}", shown(self.rest())));
            }
            self.i += 1;
            self.ws();
            let q = *self.rest().first().ok_or("unterminated tag")?;
            if q != b'"' && q != b'\'' {
                return Err(format!("attribute {} is not quoted", shown(name)));
            }
            let body = &self.b[self.i + 1..];
            let len = memchr::memchr(q, body).ok_or("unterminated attribute value")?;
            on(name, &body[..len])?;
            self.i += len + 2;
        }
    }
}

/// Appends `text` with entities and character references resolved.
pub(super) fn unescape(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut rest = text;
    while let Some(amp) = memchr::memchr(b'&', rest) {
        out.extend_from_slice(&rest[..amp]);
        let r = &rest[amp + 1..];
        let semi = memchr::memchr(b';', &r[..r.len().min(12)])
            .ok_or_else(|| format!("'&' without an entity near {}", shown(&rest[amp..])))?;
        let ent = &r[..semi];
        match ent {
            b"lt" => out.push(b'<'),
            b"gt" => out.push(b'>'),
            b"amp" => out.push(b'&'),
            b"quot" => out.push(b'"'),
            b"apos" => out.push(b'\''),
            [b'#', num @ ..] => {
                let (digits, radix) = match num {
                    [b'x' | b'X', hex @ ..] => (hex, 16),
                    dec => (dec, 10),
                };
                let c = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u32::from_str_radix(d, radix).ok())
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        format!("bad character reference &{};", String::from_utf8_lossy(ent))
                    })?;
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
            _ => {
                return Err(format!(
                    "unknown entity &{}; (accepted: &lt; &gt; &amp; &quot; &apos; &#N; &#xN;)",
                    String::from_utf8_lossy(ent)
                ))
            }
        }
        rest = &r[semi + 1..];
    }
    out.extend_from_slice(rest);
    Ok(())
}

pub fn decode(
    frame: &[u8],
    layout: &Layout,
    fields: &mut Fields,
    scratch: &mut Vec<u8>,
) -> Result<(Opcode, Flags), String> {
    let mut c = Cursor { b: frame, i: 6 };
    let mut opcode = Opcode::Insert;
    let mut flags = Flags::Normal;
    let self_closing = c.attributes(|name, v| {
        scratch.clear();
        unescape(v, scratch)?;
        match name {
            b"opcode" => opcode = parse_opcode(scratch)?,
            b"flags" => flags = parse_flags(scratch)?,
            _ => {}
        }
        Ok(())
    })?;
    if self_closing {
        return Ok((opcode, flags));
    }
    let mut hint = 0;
    loop {
        c.ws();
        let rest = c.rest();
        if rest.starts_with(b"</event") {
            return Ok((opcode, flags));
        }
        if rest.starts_with(b"<!--") {
            c.i = after(frame, c.i + 4, b"-->").ok_or("unterminated comment")?;
            continue;
        }
        if rest.first() != Some(&b'<') {
            return Err(format!("text {} between fields", shown(rest)));
        }
        c.i += 1;
        let tag = c.name();
        // `<value name="f">` (a form some clients write) names the field in
        // an attribute.
        let mut named: Option<&[u8]> = None;
        let empty = c.attributes(|name, v| {
            if tag == b"value" && name == b"name" {
                named = Some(v);
            }
            Ok(())
        })?;
        let field_name = named.unwrap_or(tag);
        let target = target(layout, field_name, hint)
            .map_err(|e| format!("<{}> {e}", String::from_utf8_lossy(field_name)))?;
        let start;
        let out: &mut Vec<u8> = match target {
            Target::Field(i) => {
                if fields.is_set(i) {
                    return Err(format!("field '{}' given twice", layout.names[i]));
                }
                start = fields.text.len();
                &mut fields.text
            }
            _ => {
                scratch.clear();
                start = 0;
                scratch
            }
        };
        if !empty {
            content(&mut c, tag, out)?;
        }
        match target {
            Target::Field(i) => {
                fields.close_value(layout, i, start, true);
                hint = i + 1;
            }
            Target::Opcode => opcode = parse_opcode(scratch)?,
            Target::Flags => flags = parse_flags(scratch)?,
        }
    }
}

/// Reads an element's text up to `</tag>`, unescaped into `out`.
fn content(c: &mut Cursor, tag: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    loop {
        let rest = c.rest();
        let lt = memchr::memchr(b'<', rest)
            .ok_or_else(|| format!("<{}> is not closed", String::from_utf8_lossy(tag)))?;
        unescape(&rest[..lt], out)?;
        c.i += lt;
        let rest = c.rest();
        if let Some(cdata) = rest.strip_prefix(b"<![CDATA[") {
            let len = memmem::find(cdata, b"]]>").ok_or("unterminated CDATA section")?;
            out.extend_from_slice(&cdata[..len]);
            c.i += 9 + len + 3;
        } else if let Some(close) = rest.strip_prefix(b"</") {
            let name_end = close.len().min(tag.len());
            if &close[..name_end] != tag
                || close.get(tag.len()).map(|b| b.is_ascii_alphanumeric()) != Some(false)
            {
                return Err(format!(
                    "<{}> is closed by {}",
                    String::from_utf8_lossy(tag),
                    shown(&rest[..rest.len().min(tag.len() + 3)])
                ));
            }
            c.i += 2 + tag.len();
            c.ws();
            if c.rest().first() != Some(&b'>') {
                return Err(format!("malformed </{}>", String::from_utf8_lossy(tag)));
            }
            c.i += 1;
            return Ok(());
        } else {
            return Err(format!(
                "<{}> holds an element; a field's value is text",
                String::from_utf8_lossy(tag)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::{decode_all, Decoder, Frame, Layout, Options, TextEvent};
    use crate::event::Opcode;
    use crate::schema::FsType;
    use crate::schema::Schema;

    fn decoder() -> Decoder {
        let schema = Schema::parse_compact("ID*:int64,symbol:string,price:double").unwrap();
        Decoder::new(
            Layout::new(&schema, false, false),
            Options::new(FsType::Xml),
        )
    }

    /// Every event of `input`, or the first error, frame by frame.
    fn all(d: &mut Decoder, input: &str) -> Vec<Result<TextEvent, String>> {
        decode_all(d, input)
    }

    fn ok(op: Opcode, f: &[Option<&str>]) -> Result<TextEvent, String> {
        Ok((op, f.iter().map(|v| v.map(str::to_string)).collect()))
    }

    #[test]
    fn esp_and_websocket_forms() {
        let mut d = decoder();
        let got = all(
            &mut d,
            r#"<?xml version="1.0"?>
            <!-- a comment with <event> inside -->
            <events><transaction>
              <event><opcode>u</opcode><ID key="true">1</ID><symbol>A&amp;B &#x263A;</symbol><price> 2.5 </price></event>
              <event opcode="delete"><ID>2</ID><symbol><![CDATA[<raw>]]></symbol><price/></event>
            </transaction>
            <event opcode='upsert'><value name="ID">3</value><value name="symbol"></value></event>
            </events>"#,
        );
        assert_eq!(
            got,
            vec![
                ok(
                    Opcode::Update,
                    &[Some("1"), Some("A&B \u{263A}"), Some("2.5")]
                ),
                ok(Opcode::Delete, &[Some("2"), Some("<raw>"), None]),
                ok(Opcode::Upsert, &[Some("3"), None, None]),
            ]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let mut d = decoder();
        let cases = [
            ("<event><ID>1</ID><sym>x</sym></event>", "<sym> is not a field of the window (fields: ID, symbol, price)"),
            ("<event><ID>1</ID><ID>2</ID></event>", "field 'ID' given twice"),
            ("<event><ID>x</ID></event>", "field 'ID' (int64): \"x\" is not a 64-bit integer"),
            ("<event><ID>1</ID><price>1</symbol></event>", "<price> is closed by \"</symbol\""),
            ("<event><ID>1&bogus;</ID></event>", "unknown entity &bogus; (accepted: &lt; &gt; &amp; &quot; &apos; &#N; &#xN;)"),
            ("<event><opcode>z</opcode><ID>1</ID></event>", "opcode \"z\" is not one of i, u, p, d, s (or insert, update, upsert, delete, safedelete)"),
            ("<event><ID><b>1</b></ID></event>", "<ID> holds an element; a field's value is text"),
            ("<event><symbol>x</symbol></event>", "field 'ID' (int64): a key field cannot be empty"),
        ];
        for (input, want) in cases {
            assert_eq!(all(&mut d, input), vec![Err(want.to_string())], "{input}");
        }
    }

    #[test]
    fn framing_garbage_and_partial_input() {
        let mut d = decoder();
        assert_eq!(d.frame(b"<even", false, 0), Frame::NeedMore);
        assert_eq!(d.frame(b"<event><ID>1</ID>", false, 0), Frame::NeedMore);
        assert_eq!(
            d.frame(b"<event><ID>1</ID>", true, 0),
            Frame::Bad {
                consumed: 17,
                reason: "unterminated <event>"
            }
        );
        assert_eq!(
            d.frame(b"junk<events>", false, 0),
            Frame::Bad {
                consumed: 4,
                reason: "text outside <event> elements"
            }
        );
        assert_eq!(
            d.frame(b"<event><ID>1</ID><event>", false, 0),
            Frame::Bad {
                consumed: 17,
                reason: "an <event> inside an <event> (missing </event>?)"
            }
        );
        assert_eq!(d.frame(b"<events>", false, 0), Frame::Skip(8));
    }
}
