//! A source's byte stream, buffered and decoded frame by frame, with the
//! stream offset after every event (what a file position is made of) and the
//! line it started on (for messages).

use super::decode::{Decoder, EventView, Frame};
use crate::limits::{EVENT_MAX, READ_CHUNK};
use std::fmt;
use std::io;

/// Where in a stream something starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Where {
    /// 1-based; `None` when reading started mid-file (a resume).
    pub line: Option<u64>,
    pub offset: u64,
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}"),
            None => write!(f, "byte {}", self.offset),
        }
    }
}

#[derive(Debug)]
pub enum Step {
    /// An event, read with [`Reader::event`]; `end` is the stream offset
    /// right after it.
    Event { end: u64 },
    /// Input that is not an event of the window; `end` is where reading goes on.
    Error {
        at: Where,
        message: String,
        end: u64,
    },
    /// Nothing complete is buffered: fill, or at the end of input, stop.
    NeedMore,
}

#[derive(Debug)]
pub struct Reader {
    pub dec: Decoder,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    offset: u64,
    line: Option<u64>,
    /// After an over-long event: drop input up to the next newline.
    resync: bool,
    /// Buffered bytes the framer already found incomplete.
    scanned: usize,
}

impl Reader {
    /// Reads a stream from its beginning.
    pub fn new(dec: Decoder) -> Reader {
        Reader::at(dec, 0)
    }

    /// Reads a stream that starts at `offset` (a resume): no header is
    /// skipped, and messages give byte offsets instead of lines.
    pub fn at(mut dec: Decoder, offset: u64) -> Reader {
        if offset > 0 {
            dec.skip_no_header();
        }
        Reader {
            dec,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset,
            line: (offset == 0).then_some(1),
            resync: false,
            scanned: 0,
        }
    }

    /// The stream offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes read but not yet consumed (a partial event).
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Drops buffered bytes (a connection was lost mid-event) and starts a
    /// new stream at `offset`.
    pub fn restart(&mut self, offset: u64) {
        if offset == 0 {
            self.dec.restart_header();
        } else {
            self.dec.skip_no_header();
        }
        self.start = 0;
        self.end = 0;
        self.offset = offset;
        self.line = (offset == 0).then_some(1);
        self.resync = false;
        self.scanned = 0;
    }

    /// Sets the line number of the next byte (a resume that counted the
    /// lines before its offset).
    pub fn set_line(&mut self, line: u64) {
        self.line = Some(line);
    }

    /// Reads once from `read` into free space. `Ok(0)` is the end of input
    /// (or, with a full buffer, no room: `next` reports the over-long event).
    pub fn fill_with(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let want = (self.end + READ_CHUNK).min(EVENT_MAX.max(READ_CHUNK));
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
        }
        if self.end == self.buf.len() {
            return Ok(0);
        }
        let n = read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    pub fn fill(&mut self, r: &mut impl io::Read) -> io::Result<usize> {
        self.fill_with(|b| r.read(b))
    }

    /// The event the last [`Step::Event`] announced.
    pub fn event(&self) -> EventView<'_> {
        self.dec.event()
    }

    /// Whether the buffer is full without a complete event.
    fn full(&self) -> bool {
        self.end - self.start >= EVENT_MAX
    }

    fn advance(&mut self, n: usize) {
        if let Some(l) = self.line.as_mut() {
            *l += memchr::memchr_iter(b'\n', &self.buf[self.start..self.start + n]).count() as u64;
        }
        self.start += n;
        self.offset += n as u64;
        self.scanned = 0;
    }

    /// Drops what is buffered but not yet an event: the start of an event
    /// a stream that closed never finished. Returns where it began and its
    /// length, if there was any.
    pub fn drop_unfinished(&mut self) -> Option<(Where, usize)> {
        let n = self.end - self.start;
        if n == 0 || self.resync {
            self.advance(n);
            return None;
        }
        let at = self.here();
        self.advance(n);
        Some((at, n))
    }

    fn here(&self) -> Where {
        Where {
            line: self.line,
            offset: self.offset,
        }
    }

    /// The next event or error in what is buffered. `eof`: no more input
    /// follows, so a last line without newline counts.
    pub fn next(&mut self, eof: bool) -> Step {
        loop {
            let avail = &self.buf[self.start..self.end];
            if self.resync {
                match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        self.resync = false;
                        self.advance(i + 1);
                        continue;
                    }
                    None => {
                        self.advance(avail.len());
                        return Step::NeedMore;
                    }
                }
            }
            match self.dec.frame(avail, eof, self.scanned) {
                Frame::NeedMore => {
                    self.scanned = avail.len();
                    if self.full() {
                        let at = self.here();
                        self.advance(self.end - self.start);
                        self.resync = true;
                        return Step::Error {
                            at,
                            message: format!(
                                "an event longer than {EVENT_MAX} bytes (the longest accepted)"
                            ),
                            end: self.offset,
                        };
                    }
                    if eof && !avail.is_empty() {
                        // Trailing bytes that frame as nothing (cannot happen
                        // for the three formats, which report them as Bad).
                        self.advance(avail.len());
                    }
                    return Step::NeedMore;
                }
                Frame::Skip(n) => self.advance(n),
                Frame::Bad { consumed, reason } => {
                    let at = self.here();
                    self.advance(consumed.max(1));
                    return Step::Error {
                        at,
                        message: reason.to_string(),
                        end: self.offset,
                    };
                }
                Frame::Event {
                    start,
                    end,
                    consumed,
                } => {
                    let at = self.here();
                    let (s, e) = (self.start + start, self.start + end);
                    self.advance(consumed);
                    let end_offset = self.offset;
                    return match self.dec.decode(&self.buf[s..e]) {
                        Ok(_) => Step::Event { end: end_offset },
                        Err(message) => Step::Error {
                            at,
                            message,
                            end: end_offset,
                        },
                    };
                }
            }
        }
    }
}

/// One event with its own copies of the text: opcode letter, flags letter,
/// fields (`None` is null).
pub type OwnedEvent = (u8, u8, Vec<Option<Vec<u8>>>);

/// Decodes a whole buffer (tests, benches): every event, or the first error
/// as `"{where}: {message}"`.
pub fn decode_all(data: &[u8], dec: Decoder) -> Result<Vec<OwnedEvent>, String> {
    let mut r = Reader::new(dec);
    let mut src = data;
    let mut out = Vec::new();
    loop {
        match r.next(src.is_empty()) {
            Step::Event { .. } => {
                let e = r.event();
                out.push((
                    e.opcode.letter() as u8,
                    e.flags.letter() as u8,
                    e.fields().map(|f| f.map(<[u8]>::to_vec)).collect(),
                ));
            }
            Step::Error { at, message, .. } => return Err(format!("{at}: {message}")),
            Step::NeedMore if src.is_empty() => return Ok(out),
            Step::NeedMore => {
                r.fill(&mut src).map_err(|e| e.to_string())?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FsType;
    use crate::schema::Schema;
    use crate::source::decode::{Layout, Options};

    fn reader(header: u32) -> Reader {
        let schema = Schema::parse_compact("id*:int32,s:string").unwrap();
        let mut o = Options::new(FsType::Csv);
        o.header = header;
        Reader::new(Decoder::new(Layout::new(&schema, false, false), o))
    }

    /// Feeds `input` a few bytes at a time; returns events and errors as text.
    fn run(r: &mut Reader, input: &[u8], chunk: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            let eof = fed == input.len();
            loop {
                match r.next(eof) {
                    Step::Event { end } => {
                        let event = r.event();
                        out.push(format!(
                            "{}:{}@{end}",
                            event
                                .field(0)
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default(),
                            event
                                .field(1)
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default()
                        ))
                    }
                    Step::Error { at, message, end } => {
                        out.push(format!("{at}: {message} ->{end}"))
                    }
                    Step::NeedMore => break,
                }
            }
            if eof {
                return out;
            }
            let take = chunk.min(input.len() - fed);
            let n = r
                .fill_with(|b| {
                    let n = take.min(b.len());
                    b[..n].copy_from_slice(&input[fed..fed + n]);
                    Ok(n)
                })
                .unwrap();
            fed += n;
        }
    }

    #[test]
    fn lines_offsets_and_errors_whatever_the_chunking() {
        let input = b"id,s\r\ni,n,1,a\r\n\r\ni,n,x,b\ni,n,3,\"c\nd\"\ni,n,4,last";
        let want = vec![
            "1:a@15",
            "line 4: field 'id' (int32): \"x\" is not an integer from -2147483648 to 2147483647 ->25",
            "line 5: column starting at byte 7: unterminated quote ->34",
            "line 6: opcode \"d\\\"\" is not one of i, u, p, d, s (or insert, update, upsert, delete, safedelete) ->37",
            "4:last@47",
        ];
        let got = run(&mut reader(1), input, 1000);
        assert_eq!(got, want);
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(run(&mut reader(1), input, chunk), got, "chunk {chunk}");
        }
    }

    #[test]
    fn an_over_long_event_is_an_error_and_the_stream_goes_on() {
        let mut input = b"i,n,1,".to_vec();
        input.extend(std::iter::repeat_n(b'x', EVENT_MAX + 10));
        input.extend_from_slice(b"\ni,n,2,ok\n");
        let got = run(&mut reader(0), &input, READ_CHUNK);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("line 1: an event longer than"),
            "{}",
            got[0]
        );
        assert_eq!(got[1], format!("2:ok@{}", input.len()));
    }

    #[test]
    fn a_resumed_stream_reports_bytes_and_skips_no_header() {
        let schema = Schema::parse_compact("id*:int32,s:string").unwrap();
        let mut o = Options::new(FsType::Csv);
        o.header = 1;
        let mut r = Reader::at(Decoder::new(Layout::new(&schema, false, false), o), 100);
        let got = run(&mut r, b"i,n,5,e\ni,n,y,f\n", 4);
        assert_eq!(got, vec![
            "5:e@108".to_string(),
            "byte 108: field 'id' (int32): \"y\" is not an integer from -2147483648 to 2147483647 ->116".to_string(),
        ]);
    }
}
