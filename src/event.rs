//! The ESP event model (esp-protocol.md §5): opcodes and flags.
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
