//! From bytes to events: one [`Decoder`] per source, which splits a byte
//! stream into frames (a CSV line, an XML `<event>`, a JSON object), lays each
//! frame's values out by the target window's schema, and checks them against
//! their types.
//!
//! Nothing here allocates per event once the decoder's two scratch buffers
//! have grown to the largest event seen: field text goes into one byte
//! buffer, and each field is a span of it.

use super::value;
use super::{csv, json, xml};
use crate::event::{Flags, Opcode};
use crate::schema::FieldType;
use crate::schema::FsType;

pub use super::layout::{EventView, Fields, Layout, Options};

/// What the framer found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// No whole frame yet: read more (or, at the end of input, nothing is left).
    NeedMore,
    /// Bytes that carry no event (a header line, a blank line, `<events>`).
    Skip(usize),
    /// An event in `buf[start..end]`; the frame ends at `consumed`.
    Event {
        start: usize,
        end: usize,
        consumed: usize,
    },
    /// Bytes that are not the format; `consumed` skips them.
    Bad {
        consumed: usize,
        reason: &'static str,
    },
}

/// Splits and decodes one source's stream.
#[derive(Debug)]
pub struct Decoder {
    pub layout: Layout,
    pub opts: Options,
    fields: Fields,
    /// Header lines still to skip.
    header_left: u32,
    /// Scratch for names and attribute values while parsing XML and JSON.
    pub(super) scratch: Vec<u8>,
    /// The last event's opcode and flags (its fields are in `fields`).
    head: (Opcode, Flags),
}

impl Decoder {
    pub fn new(layout: Layout, opts: Options) -> Decoder {
        let header_left = opts.header;
        Decoder {
            layout,
            opts,
            fields: Fields::default(),
            header_left,
            scratch: Vec::new(),
            head: (Opcode::Insert, Flags::Normal),
        }
    }

    /// No header to skip: the stream resumes mid-file.
    pub fn skip_no_header(&mut self) {
        self.header_left = 0;
    }

    /// A new stream from its first line: the header is skipped again.
    pub fn restart_header(&mut self) {
        self.header_left = self.opts.header;
    }

    /// Finds the next frame in `buf`; `eof` means no more bytes follow, so a
    /// last line without newline is a frame. `scanned`: the length of `buf`
    /// when it last gave `NeedMore` (0 if unknown). CSV resumes its search
    /// there; XML and JSON scan again from the start, so an event trickling in
    /// costs them up to `EVENT_MAX` bytes scanned per read.
    pub fn frame(&mut self, buf: &[u8], eof: bool, scanned: usize) -> Frame {
        match self.opts.fstype {
            FsType::Csv => {
                let f = csv::frame(buf, eof, scanned);
                if let Frame::Event { consumed, .. } = f {
                    if self.header_left > 0 {
                        self.header_left -= 1;
                        return Frame::Skip(consumed);
                    }
                }
                f
            }
            FsType::Xml => xml::frame(buf, eof),
            FsType::Json => json::frame(buf, eof),
        }
    }

    /// Decodes one frame into an event. `Err` says what is wrong and in
    /// which field; the caller adds the source and where.
    pub fn decode(&mut self, frame: &[u8]) -> Result<EventView<'_>, String> {
        let n = self.layout.len();
        self.fields.reset(n);
        let (mut opcode, flags) = match self.opts.fstype {
            FsType::Csv => csv::decode(frame, &self.layout, &self.opts, &mut self.fields)?,
            FsType::Xml => xml::decode(frame, &self.layout, &mut self.fields, &mut self.scratch)?,
            FsType::Json => json::decode(frame, &self.layout, &mut self.fields, &mut self.scratch)?,
        };
        if self.opts.upsert && opcode == Opcode::Insert {
            opcode = Opcode::Upsert;
        }
        for i in 0..n {
            let ty = self.layout.types[i];
            if matches!(ty, FieldType::Date | FieldType::Stamp) && self.time_in_one_pass(i, ty) {
                continue;
            }
            match self.fields.get(i) {
                None if self.layout.keys[i] && self.layout.autogen != Some(i) => {
                    return Err(format!(
                        "field '{}' ({ty}): a key field cannot be empty",
                        self.layout.names[i]
                    ))
                }
                None => {}
                Some(v) => value::check(ty, v, self.opts.dates.as_ref())
                    .or_else(|e| match self.opts.epoch_dates {
                        true => value::check(ty, v, None).map_err(|_| e),
                        false => Err(e),
                    })
                    .map_err(|e| format!("field '{}' ({ty}): {e}", self.layout.names[i]))?,
            }
            if let FieldType::Date | FieldType::Stamp = ty {
                self.rewrite_time(i, ty == FieldType::Stamp)?;
            }
        }
        self.head = (opcode, flags);
        Ok(self.event())
    }

    /// The common case of a time field, read once: its text matches the
    /// source's `dateformat` and names a real day, and it is rewritten in
    /// the engine's form. False when not (or when there is nothing to
    /// rewrite): then the field takes the general path, check then rewrite,
    /// which says what is wrong.
    fn time_in_one_pass(&mut self, i: usize, ty: FieldType) -> bool {
        let (Some(f), Some(_)) = (&self.opts.dates, &self.opts.engine_dates) else {
            return false;
        };
        let Some(micros) = self
            .fields
            .get(i)
            .and_then(|v| f.to_micros(v, ty == FieldType::Stamp))
        else {
            return false;
        };
        self.place_time(i, micros, ty == FieldType::Stamp);
        true
    }

    /// Rewrites time field `i` (checked) into the engine's form, if any.
    fn rewrite_time(&mut self, i: usize, stamp: bool) -> Result<(), String> {
        let (Some(_), Some(v)) = (&self.opts.engine_dates, self.fields.get(i)) else {
            return Ok(());
        };
        let epoch = || {
            let n: i64 = std::str::from_utf8(v).ok()?.parse().ok()?;
            if stamp {
                Some(n)
            } else {
                n.checked_mul(1_000_000)
            }
        };
        let micros = match &self.opts.dates {
            Some(f) => f.to_micros(v, stamp).or_else(|| epoch().filter(|_| self.opts.epoch_dates)),
            None => epoch(),
        }
        .ok_or_else(|| {
            format!(
                "field '{}': {:?} is not a time edgecm can place (a day past the month's end, or out of range)",
                self.layout.names[i],
                String::from_utf8_lossy(v)
            )
        })?;
        self.place_time(i, micros, stamp);
        Ok(())
    }

    /// Sets time field `i` to `micros` in the engine's form (none: left as is).
    fn place_time(&mut self, i: usize, micros: i64, stamp: bool) {
        let Some(out) = &self.opts.engine_dates else {
            return;
        };
        let start = self.fields.text.len();
        out.write(micros, stamp, &mut self.fields.text);
        self.fields.close(i, start);
    }

    /// The last event decoded.
    pub fn event(&self) -> EventView<'_> {
        EventView {
            opcode: self.head.0,
            flags: self.head.1,
            fields: &self.fields,
        }
    }
}

/// Stores a value as its type keeps it: numbers and times trimmed; an empty
/// value is null.
pub(super) fn put(fields: &mut Fields, layout: &Layout, i: usize, v: &[u8]) {
    let start = fields.text.len();
    fields.text.extend_from_slice(v);
    fields.close_value(layout, i, start, true);
}

/// `"a", "b" and "c"`-style list of the schema's names, for messages.
pub(super) fn names(layout: &Layout) -> String {
    let mut s = String::new();
    for (i, n) in layout.names.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
    }
    s
}

/// A position in one frame, for the XML and JSON parsers (each adds its
/// own methods).
pub(super) struct Cursor<'a> {
    pub b: &'a [u8],
    pub i: usize,
}

impl<'a> Cursor<'a> {
    pub fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.b[self.i..]
    }

    /// The bytes up to (not including) the first for which `stop` holds.
    pub fn until(&mut self, stop: impl Fn(u8) -> bool) -> &'a [u8] {
        let s = self.i;
        while self.i < self.b.len() && !stop(self.b[self.i]) {
            self.i += 1;
        }
        &self.b[s..self.i]
    }
}

/// What a named value in an XML or JSON event is: a field, or the reserved
/// `opcode`, or `flags` (unless the schema has a field of that name).
pub(super) enum Target {
    Field(usize),
    Opcode,
    Flags,
}

/// Resolves a name; `Err` says it is not a field, listing the schema's.
pub(super) fn target(layout: &Layout, name: &[u8], hint: usize) -> Result<Target, String> {
    if name == b"opcode" {
        return Ok(Target::Opcode);
    }
    match layout.index_of(name, hint) {
        Some(i) => Ok(Target::Field(i)),
        None if name == b"flags" => Ok(Target::Flags),
        None => Err(format!(
            "is not a field of the window (fields: {})",
            names(layout)
        )),
    }
}

pub(super) fn parse_opcode(v: &[u8]) -> Result<Opcode, String> {
    Opcode::parse(v.trim_ascii()).ok_or_else(|| {
        format!(
            "opcode {} is not one of i, u, p, d, s (or insert, update, upsert, delete, safedelete)",
            shown(v)
        )
    })
}

pub(super) fn parse_flags(v: &[u8]) -> Result<Flags, String> {
    Flags::parse(v.trim_ascii()).ok_or_else(|| {
        format!(
            "flags {} are not one of n, p, r (normal, partialupdate, retention)",
            shown(v)
        )
    })
}

/// Shows a bit of input in a message.
pub(super) fn shown(v: &[u8]) -> String {
    let cut = v.len().min(40);
    let more = if v.len() > cut { "..." } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(&v[..cut]))
}

/// Test helper: every event of `input` (or error), frame by frame, as text.
#[cfg(test)]
pub(crate) fn decode_all(d: &mut Decoder, input: &str) -> Vec<Result<TextEvent, String>> {
    let b = input.as_bytes();
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        match d.frame(&b[at..], true, 0) {
            Frame::NeedMore => return out,
            Frame::Skip(n) => at += n,
            Frame::Bad { consumed, reason } => {
                out.push(Err(reason.to_string()));
                at += consumed;
            }
            Frame::Event {
                start,
                end,
                consumed,
            } => {
                out.push(d.decode(&b[at + start..at + end]).map(|e| {
                    let f = e
                        .fields()
                        .map(|v| v.map(|v| String::from_utf8(v.to_vec()).unwrap()));
                    (e.opcode, f.collect())
                }));
                at += consumed;
            }
        }
    }
}

/// An event as text, for tests.
#[cfg(test)]
pub(crate) type TextEvent = (Opcode, Vec<Option<String>>);
