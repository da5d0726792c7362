//! The ESP event model (esp-protocol.md §5): opcodes and flags.
//! Field values stay text, laid out by the target window's schema; the
//! decoders that produce them live in `source`.
//!
//! Letters are accepted in either case on input; words are accepted where ESP
//! writes them (`insert`, `upsert`, ...). Output uses ESP's lower-case letters.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    Insert,
    Update,
    Upsert,
    Delete,
    SafeDelete,
}

impl Opcode {
    pub const WORDS: &'static [(&'static str, Opcode)] = &[
        ("insert", Opcode::Insert),
        ("update", Opcode::Update),
        ("upsert", Opcode::Upsert),
        ("delete", Opcode::Delete),
        ("safedelete", Opcode::SafeDelete),
    ];

    /// Parses the word form only (`insert`, ...), as config attributes use it.
    pub fn from_word(s: &str) -> Option<Opcode> {
        Self::WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(s.trim()))
            .map(|(_, o)| *o)
    }

    pub fn word(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(w, _)| *w)
            .expect("every opcode has a word")
    }

    /// Parses an opcode as events carry it: ESP's letter in either case
    /// (`i`, `I`, ...) or the word (`insert`, ...).
    pub fn parse(s: &[u8]) -> Option<Opcode> {
        match s {
            [c] => match c.to_ascii_lowercase() {
                b'i' => Some(Opcode::Insert),
                b'u' => Some(Opcode::Update),
                b'p' => Some(Opcode::Upsert),
                b'd' => Some(Opcode::Delete),
                b's' => Some(Opcode::SafeDelete),
                _ => None,
            },
            _ => Self::WORDS
                .iter()
                .find(|(w, _)| w.as_bytes().eq_ignore_ascii_case(s))
                .map(|(_, o)| *o),
        }
    }

    /// ESP's one-letter code (`i`, `u`, `p`, `d`, `s`).
    pub fn letter(self) -> char {
        match self {
            Opcode::Insert => 'i',
            Opcode::Update => 'u',
            Opcode::Upsert => 'p',
            Opcode::Delete => 'd',
            Opcode::SafeDelete => 's',
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// An event's flags (esp-protocol.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Flags {
    #[default]
    Normal,
    PartialUpdate,
    Retention,
}

impl Flags {
    pub const WORDS: &'static [(&'static str, Flags)] = &[
        ("normal", Flags::Normal),
        ("partialupdate", Flags::PartialUpdate),
        ("retention", Flags::Retention),
    ];

    /// Parses ESP's letter in either case (`n`, `p`, `r`) or the word.
    pub fn parse(s: &[u8]) -> Option<Flags> {
        match s {
            [c] => match c.to_ascii_lowercase() {
                b'n' => Some(Flags::Normal),
                b'p' => Some(Flags::PartialUpdate),
                b'r' => Some(Flags::Retention),
                _ => None,
            },
            _ => Self::WORDS
                .iter()
                .find(|(w, _)| w.as_bytes().eq_ignore_ascii_case(s))
                .map(|(_, f)| *f),
        }
    }

    pub fn letter(self) -> char {
        match self {
            Flags::Normal => 'n',
            Flags::PartialUpdate => 'p',
            Flags::Retention => 'r',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_in_either_case_and_words() {
        for (text, op) in [
            ("i", Opcode::Insert),
            ("I", Opcode::Insert),
            ("U", Opcode::Update),
            ("p", Opcode::Upsert),
            ("D", Opcode::Delete),
            ("s", Opcode::SafeDelete),
            ("upsert", Opcode::Upsert),
            ("SafeDelete", Opcode::SafeDelete),
        ] {
            assert_eq!(Opcode::parse(text.as_bytes()), Some(op), "{text}");
        }
        for bad in ["", "x", "ins", "inserts"] {
            assert_eq!(Opcode::parse(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(Flags::parse(b"N"), Some(Flags::Normal));
        assert_eq!(Flags::parse(b"partialupdate"), Some(Flags::PartialUpdate));
        assert_eq!(Flags::parse(b"r"), Some(Flags::Retention));
        assert_eq!(Flags::parse(b"q"), None);
    }
}

/// Where a source stands after a record's last event: what lets a restart
/// resume right after it (contract 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Position {
    #[default]
    None,
    /// A file: identity (device, inode) and the byte offset after the event.
    File { dev: u64, ino: u64, offset: u64 },
    /// A socket source: its own event sequence.
    Socket { seq: u64 },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::None => f.write_str("the start"),
            Position::File { offset, ino, .. } => {
                write!(f, "byte {offset} of the file (inode {ino})")
            }
            Position::Socket { seq } => write!(f, "socket event {seq}"),
        }
    }
}

/// Access to an event's fields as text, for hashing. The text is what the
/// source read ("taken as strings", seed), so `77` hashes the same whether it
/// came from CSV, XML or JSON.
pub trait Keyed {
    fn field_text(&self, index: usize) -> &[u8];
}

impl<S: AsRef<[u8]>> Keyed for [S] {
    fn field_text(&self, index: usize) -> &[u8] {
        self[index].as_ref()
    }
}

impl<S: AsRef<[u8]>> Keyed for Vec<S> {
    fn field_text(&self, index: usize) -> &[u8] {
        self[index].as_ref()
    }
}

impl<S: AsRef<[u8]>, const N: usize> Keyed for [S; N] {
    fn field_text(&self, index: usize) -> &[u8] {
        self[index].as_ref()
    }
}
