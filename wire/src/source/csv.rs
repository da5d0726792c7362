//! ESP's CSV event lines (esp-protocol.md §5.4): `opcode,flags,f1,...` in
//! schema order, one event per line. A field may be double-quoted, with the
//! delimiter inside and `""` for a quote; an empty field is null. A quoted
//! field cannot span lines: the line is the event.

use super::decode::{names, parse_flags, parse_opcode, put, Fields, Frame, Layout, Options};
use crate::event::{Flags, Opcode};

/// One line, without its `\n` or `\r\n`. `buf[..from]` is known to hold no
/// newline (a partial line seen before), so a line trickling in byte by byte
/// is searched once, not once per byte.
pub fn frame(buf: &[u8], eof: bool, from: usize) -> Frame {
    let found = memchr::memchr(b'\n', &buf[from.min(buf.len())..]).map(|i| i + from);
    let (line_end, consumed) = match found {
        Some(i) => (i, i + 1),
        None if eof && !buf.is_empty() => (buf.len(), buf.len()),
        None => return Frame::NeedMore,
    };
    let end = if line_end > 0 && buf[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    if buf[..end].iter().all(|c| c.is_ascii_whitespace()) {
        return Frame::Skip(consumed);
    }
    Frame::Event {
        start: 0,
        end,
        consumed,
    }
}

/// Splits a line into columns, unquoting into `out` when needed.
struct Columns<'a> {
    line: &'a [u8],
    pos: usize,
    delim: u8,
    done: bool,
}

enum Column<'a> {
    /// Unquoted: the bytes as they are.
    Plain(&'a [u8]),
    /// Quoted: already unquoted into the field buffer, from this offset.
    Quoted(usize),
}

impl<'a> Columns<'a> {
    fn next(&mut self, text: &mut Vec<u8>) -> Option<Result<Column<'a>, String>> {
        if self.done {
            return None;
        }
        let rest = &self.line[self.pos..];
        if rest.first() != Some(&b'"') {
            let len = memchr::memchr(self.delim, rest).unwrap_or_else(|| {
                self.done = true;
                rest.len()
            });
            self.pos += len + 1;
            return Some(Ok(Column::Plain(&rest[..len])));
        }
        let start = text.len();
        let mut i = 1;
        loop {
            let Some(q) = memchr::memchr(b'"', &rest[i..]) else {
                return Some(Err(format!(
                    "column starting at byte {}: unterminated quote",
                    self.pos + 1
                )));
            };
            text.extend_from_slice(&rest[i..i + q]);
            i += q + 1;
            if rest.get(i) == Some(&b'"') {
                text.push(b'"');
                i += 1;
                continue;
            }
            break;
        }
        match rest.get(i) {
            None => self.done = true,
            Some(&c) if c == self.delim => {}
            Some(_) => {
                return Some(Err(format!(
                    "column starting at byte {}: text after the closing quote",
                    self.pos + 1
                )))
            }
        }
        self.pos += i + 1;
        Some(Ok(Column::Quoted(start)))
    }
}

fn column_text<'a>(c: &Column<'a>, text: &'a [u8]) -> &'a [u8] {
    match *c {
        Column::Plain(v) => v,
        Column::Quoted(start) => &text[start..],
    }
}

pub fn decode(
    line: &[u8],
    layout: &Layout,
    opts: &Options,
    fields: &mut Fields,
) -> Result<(Opcode, Flags), String> {
    let mut cols = Columns {
        line,
        pos: 0,
        delim: opts.delimiter,
        done: false,
    };
    let lead = usize::from(opts.opcode_column) + usize::from(opts.fixed_flags.is_none());
    let expected = lead + layout.len() - usize::from(layout.absent.is_some());
    let mut opcode = Opcode::Insert;
    let mut flags = opts.fixed_flags.unwrap_or_default();
    let mut col = 0;
    let mut field = 0;
    while let Some(c) = cols.next(&mut fields.text) {
        let c = c?;
        if col >= expected {
            col += 1;
            continue;
        }
        if opts.opcode_column && col == 0 {
            let v = column_text(&c, &fields.text).trim_ascii();
            opcode = parse_opcode(v)?;
        } else if opts.fixed_flags.is_none() && col == usize::from(opts.opcode_column) {
            let v = column_text(&c, &fields.text).trim_ascii();
            flags = parse_flags(v)?;
        } else {
            if Some(field) == layout.absent {
                field += 1;
            }
            match c {
                Column::Plain(v) => put(fields, layout, field, v),
                // A quoted empty string is an empty string, not null.
                Column::Quoted(start) => fields.close_value(layout, field, start, false),
            }
            field += 1;
        }
        col += 1;
    }
    if col != expected {
        let what = match (opts.opcode_column, opts.fixed_flags.is_none()) {
            (true, true) => "opcode, flags and ",
            (true, false) => "opcode and ",
            (false, true) => "flags and ",
            (false, false) => "",
        };
        let fields = expected - lead;
        return Err(format!(
            "{col} {} where {expected} {} expected ({what}{fields} {}: {})",
            if col == 1 { "column" } else { "columns" },
            if expected == 1 { "was" } else { "were" },
            if fields == 1 { "field" } else { "fields" },
            names(layout)
        ));
    }
    Ok((opcode, flags))
}

#[cfg(test)]
mod tests {
    use super::super::decode::{Decoder, Layout, Options};
    use crate::event::{Flags, Opcode};
    use crate::schema::FsType;
    use crate::schema::Schema;

    fn decoder(schema: &str, f: impl FnOnce(&mut Options)) -> Decoder {
        let schema = Schema::parse_compact(schema).unwrap();
        let mut o = Options::new(FsType::Csv);
        f(&mut o);
        Decoder::new(Layout::new(&schema, false, false), o)
    }

    fn fields(d: &mut Decoder, line: &str) -> Result<(Opcode, Flags, Vec<Option<String>>), String> {
        let e = d.decode(line.as_bytes())?;
        let f = e
            .fields()
            .map(|f| f.map(|v| String::from_utf8(v.to_vec()).unwrap()))
            .collect();
        Ok((e.opcode, e.flags, f))
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn quotes_nulls_and_padding() {
        let mut d = decoder("id*:int64,name:string,price:double,note:string", |_| {});
        let (op, fl, f) = fields(&mut d, r#"I,N, 7 ,"a, ""quoted"" name",1.5,"#).unwrap();
        assert_eq!((op, fl), (Opcode::Insert, Flags::Normal));
        assert_eq!(f, vec![s("7"), s(r#"a, "quoted" name"#), s("1.5"), None]);
        let (op, _, f) = fields(&mut d, r#"upsert,n,8,"",,"x""#).unwrap();
        assert_eq!(op, Opcode::Upsert);
        assert_eq!(f, vec![s("8"), s(""), None, s("x")]);
    }

    #[test]
    fn column_errors_say_what_was_expected() {
        let mut d = decoder("symbol*:string,venue*:int32,restricted:int32", |_| {});
        assert_eq!(
            fields(&mut d, "i,n,1012112,Joe,ESP").unwrap_err(),
            "field 'venue' (int32): \"Joe\" is not an integer from -2147483648 to 2147483647"
        );
        let e = fields(&mut d, "i,n,1012112,Joe,ESP,x").unwrap_err();
        assert_eq!(
            e,
            "6 columns where 5 were expected (opcode, flags and 3 fields: symbol, venue, restricted)"
        );
        let e = fields(&mut d, "i,n,IBM,x,1").unwrap_err();
        assert_eq!(
            e,
            "field 'venue' (int32): \"x\" is not an integer from -2147483648 to 2147483647"
        );
        let e = fields(&mut d, "q,n,IBM,1,1").unwrap_err();
        assert!(
            e.starts_with("opcode \"q\" is not one of i, u, p, d, s"),
            "{e}"
        );
        let e = fields(&mut d, "i,z,IBM,1,1").unwrap_err();
        assert!(e.starts_with("flags \"z\" are not one of n, p, r"), "{e}");
        let e = fields(&mut d, "i,n,,1,1").unwrap_err();
        assert_eq!(e, "field 'symbol' (string): a key field cannot be empty");
        let e = fields(&mut d, r#"i,n,"IBM,1,1"#).unwrap_err();
        assert_eq!(e, "column starting at byte 5: unterminated quote");
        let e = fields(&mut d, r#"i,n,"IBM"x,1,1"#).unwrap_err();
        assert_eq!(e, "column starting at byte 5: text after the closing quote");
    }

    #[test]
    fn options_change_the_columns() {
        let mut d = decoder("id*:int32,v:string", |o| {
            o.opcode_column = false;
            o.fixed_flags = Some(Flags::PartialUpdate);
            o.delimiter = b';';
            o.upsert = true;
        });
        let (op, fl, f) = fields(&mut d, "1;a,b").unwrap();
        assert_eq!((op, fl), (Opcode::Upsert, Flags::PartialUpdate));
        assert_eq!(f, vec![s("1"), s("a,b")]);
        let e = fields(&mut d, "i;n;1;a").unwrap_err();
        assert_eq!(e, "4 columns where 2 were expected (2 fields: id, v)");
    }

    #[test]
    fn autogen_key_absent_with_noautogenfield() {
        let schema = Schema::parse_compact("id*:int64,v:string").unwrap();
        let mut d = Decoder::new(Layout::new(&schema, true, true), Options::new(FsType::Csv));
        let (_, _, f) = fields(&mut d, "i,n,hello").unwrap();
        assert_eq!(f, vec![None, s("hello")]);
        // Without noautogenfield the column is there but may be empty (`I,n,,`).
        let mut d = Decoder::new(Layout::new(&schema, true, false), Options::new(FsType::Csv));
        let (_, _, f) = fields(&mut d, "I,n,,hello").unwrap();
        assert_eq!(f, vec![None, s("hello")]);
    }

    #[test]
    fn frames_lines() {
        use super::super::decode::Frame;
        assert_eq!(
            super::frame(b"a,b\r\nc", false, 0),
            Frame::Event {
                start: 0,
                end: 3,
                consumed: 5
            }
        );
        assert_eq!(super::frame(b"c", false, 0), Frame::NeedMore);
        assert_eq!(
            super::frame(b"c", true, 0),
            Frame::Event {
                start: 0,
                end: 1,
                consumed: 1
            }
        );
        assert_eq!(super::frame(b" \r\nx", false, 0), Frame::Skip(3));
        assert_eq!(super::frame(b"", true, 0), Frame::NeedMore);
    }
}
