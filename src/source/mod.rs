//! Sources: ESP's fs raw-sources (file and socket), decoded into events laid
//! out by the target window's schema, each with the position that lets a
//! restart resume right after it (ARCHITECTURE.md contract 1).
//!
//! Pure parts ([`decode`], [`value`], the three formats, [`reader`]) need no
//! IO; [`file`] and [`socket`] do the reading.

pub mod csv;
pub mod decode;
pub mod json;
pub mod reader;
pub mod value;
pub mod xml;

pub use decode::{Decoder, EventView, Layout, Options};
pub use reader::{Reader, Step, Where};
