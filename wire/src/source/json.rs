//! JSON events: flat objects, one per frame, either in an array
//! (`[{"id":"1","opcode":"insert"},...]`, as ESP's writers produce) or one per
//! line. `opcode` and `flags` are optional keys; the websocket form
//! `{"opcode":"insert","event":{...}}` is read too. Strings, numbers and
//! booleans are kept as their text; `null` is null; an array of numbers
//! becomes ESP's `[a;b]`.

use super::decode::{
    parse_flags, parse_opcode, shown, target, Cursor, Fields, Frame, Layout, Target,
};
use crate::event::{Flags, Opcode};

pub fn frame(buf: &[u8], eof: bool) -> Frame {
    let skip = buf
        .iter()
        .take_while(|c| c.is_ascii_whitespace() || matches!(c, b'[' | b']' | b','))
        .count();
    if skip > 0 {
        return Frame::Skip(skip);
    }
    let Some(&first) = buf.first() else {
        return Frame::NeedMore;
    };
    if first != b'{' {
        // Skip to the next line: a line-per-object stream resyncs there.
        return match memchr::memchr(b'\n', buf) {
            Some(i) => Frame::Bad {
                consumed: i + 1,
                reason: "expected a JSON object",
            },
            None if eof => Frame::Bad {
                consumed: buf.len(),
                reason: "expected a JSON object",
            },
            None => Frame::NeedMore,
        };
    }
    let mut depth = 0u32;
    let mut in_str = false;
    let mut i = 0;
    while i < buf.len() {
        let c = buf[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Frame::Event {
                            start: 0,
                            end: i + 1,
                            consumed: i + 1,
                        };
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    if eof {
        Frame::Bad {
            consumed: buf.len(),
            reason: "unterminated JSON object",
        }
    } else {
        Frame::NeedMore
    }
}

impl<'a> Cursor<'a> {
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at byte {} near {}",
                c as char,
                self.i,
                shown(&self.b[self.i..])
            ))
        }
    }

    /// A string after its opening quote, unescaped into `out`.
    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        loop {
            let rest = &self.b[self.i..];
            let j = memchr::memchr2(b'"', b'\\', rest).ok_or("unterminated string")?;
            out.extend_from_slice(&rest[..j]);
            self.i += j + 1;
            if rest[j] == b'"' {
                return Ok(());
            }
            let e = *self.b.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let hi = self.hex4()?;
                    let code = if (0xD800..0xDC00).contains(&hi) {
                        if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                            return Err("lone surrogate in \\u escape".into());
                        }
                        self.i += 2;
                        let lo = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Err("bad surrogate pair in \\u escape".into());
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else {
                        hi
                    };
                    char::from_u32(code).ok_or("bad \\u escape")?
                }
                other => return Err(format!("bad escape '\\{}'", other as char)),
            };
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        std::str::from_utf8(h)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| "bad \\u escape".into())
    }

    /// A bare literal: number, `true`, `false`, `null`.
    fn literal(&mut self) -> &'a [u8] {
        self.until(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
    }
}

pub fn decode(
    frame: &[u8],
    layout: &Layout,
    fields: &mut Fields,
    scratch: &mut Vec<u8>,
) -> Result<(Opcode, Flags), String> {
    let mut c = Cursor { b: frame, i: 0 };
    let mut head = (Opcode::Insert, Flags::Normal);
    object(&mut c, layout, fields, scratch, &mut head, true)?;
    c.ws();
    if c.i != frame.len() {
        return Err(format!("text after the object: {}", shown(&frame[c.i..])));
    }
    Ok(head)
}

fn object(
    c: &mut Cursor,
    layout: &Layout,
    fields: &mut Fields,
    scratch: &mut Vec<u8>,
    head: &mut (Opcode, Flags),
    top: bool,
) -> Result<(), String> {
    c.expect(b'{')?;
    if c.peek() == Some(b'}') {
        c.i += 1;
        return Ok(());
    }
    let mut hint = 0;
    loop {
        c.expect(b'"')?;
        scratch.clear();
        c.string(scratch)?;
        c.expect(b':')?;
        if top && scratch == b"event" && c.peek() == Some(b'{') {
            object(c, layout, fields, scratch, head, false)?;
        } else {
            let target = target(layout, scratch, hint)
                .map_err(|e| format!("\"{}\" {e}", String::from_utf8_lossy(scratch)))?;
            if let Target::Field(i) = target {
                if fields.is_set(i) {
                    return Err(format!("field '{}' given twice", layout.names[i]));
                }
                hint = i + 1;
            }
            value(c, layout, fields, scratch, head, target)?;
        }
        match c.peek() {
            Some(b',') => c.i += 1,
            Some(b'}') => {
                c.i += 1;
                return Ok(());
            }
            _ => return Err(format!("expected ',' or '}}' at byte {}", c.i)),
        }
    }
}

fn value(
    c: &mut Cursor,
    layout: &Layout,
    fields: &mut Fields,
    scratch: &mut Vec<u8>,
    head: &mut (Opcode, Flags),
    target: Target,
) -> Result<(), String> {
    let Target::Field(i) = target else {
        scratch.clear();
        match c.peek() {
            Some(b'"') => {
                c.i += 1;
                c.string(scratch)?;
            }
            _ => scratch.extend_from_slice(c.literal()),
        }
        match target {
            Target::Opcode => head.0 = parse_opcode(scratch)?,
            _ => head.1 = parse_flags(scratch)?,
        }
        return Ok(());
    };
    let start = fields.text.len();
    match c.peek() {
        Some(b'"') => {
            c.i += 1;
            c.string(&mut fields.text)?;
            fields.close_value(layout, i, start, false);
        }
        Some(b'[') => {
            // An array of numbers, written as ESP's `[a;b]`.
            c.i += 1;
            fields.text.push(b'[');
            let mut first = true;
            loop {
                match c.peek() {
                    Some(b']') => {
                        c.i += 1;
                        break;
                    }
                    Some(b',') if !first => c.i += 1,
                    _ if first => {}
                    _ => return Err(format!("field '{}': malformed array", layout.names[i])),
                }
                if !first {
                    fields.text.push(b';');
                }
                first = false;
                c.ws();
                let v = c.literal();
                if v.is_empty() {
                    return Err(format!("field '{}': malformed array", layout.names[i]));
                }
                fields.text.extend_from_slice(v);
            }
            fields.text.push(b']');
            fields.close(i, start);
        }
        Some(b'{') => {
            return Err(format!(
                "field '{}' holds an object; a field's value is a string, number or array",
                layout.names[i]
            ))
        }
        _ => {
            let v = c.literal();
            if v.is_empty() {
                return Err(format!("field '{}': missing value", layout.names[i]));
            }
            if v != b"null" {
                fields.set(i, v);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::decode::{decode_all, Decoder, Layout, Options, TextEvent};
    use crate::event::Opcode;
    use crate::schema::FsType;
    use crate::schema::Schema;

    fn events(input: &str) -> Vec<Result<TextEvent, String>> {
        let schema = Schema::parse_compact("id*:double,name:string,v:array(dbl)").unwrap();
        let mut d = Decoder::new(
            Layout::new(&schema, false, false),
            Options::new(FsType::Json),
        );
        decode_all(&mut d, input)
    }

    fn ok(op: Opcode, f: &[Option<&str>]) -> Result<TextEvent, String> {
        Ok((op, f.iter().map(|v| v.map(str::to_string)).collect()))
    }

    #[test]
    fn arrays_lines_and_websocket_form() {
        // The router writer's layout (esp-protocol.md §5.4).
        let got = events(
            r#"[{"id":"11.000000","name":"scott","opcode":"insert"},
               {"id":12,"name":"a \"q\" \u00e9 \ud83d\ude00","v":[1.5, -2],"opcode":"delete"}]
{"id":13,"name":null}
{"opcode":"upsert","event":{"id":14,"name":"w"}}
"#,
        );
        assert_eq!(
            got,
            vec![
                ok(Opcode::Insert, &[Some("11.000000"), Some("scott"), None]),
                ok(
                    Opcode::Delete,
                    &[Some("12"), Some("a \"q\" é 😀"), Some("[1.5;-2]")]
                ),
                ok(Opcode::Insert, &[Some("13"), None, None]),
                ok(Opcode::Upsert, &[Some("14"), Some("w"), None]),
            ]
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (r#"{"id":1,"nope":2}"#, "\"nope\" is not a field of the window (fields: id, name, v)"),
            (r#"{"id":"x"}"#, "field 'id' (double): \"x\" is not a number"),
            (r#"{"id":1,"id":2}"#, "field 'id' given twice"),
            (r#"{"id":1,"name":{"a":1}}"#, "field 'name' holds an object; a field's value is a string, number or array"),
            (r#"{"id":1 "name":"a"}"#, "expected ',' or '}' at byte 8"),
            (r#"{"id":1,"name":"\q"}"#, "bad escape '\\q'"),
            (r#"{"id":1,"opcode":"zap"}"#, "opcode \"zap\" is not one of i, u, p, d, s (or insert, update, upsert, delete, safedelete)"),
            ("hello\n", "expected a JSON object"),
            (r#"{"id":1"#, "unterminated JSON object"),
        ];
        for (input, want) in cases {
            assert_eq!(events(input), vec![Err(want.to_string())], "{input}");
        }
    }
}
