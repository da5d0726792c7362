//! edgecm's hot path: what every event goes through, byte by byte, from the
//! input text to the engine's XML. Its own crate so that it can be built for
//! speed while the rest of the manager is built for size (the workspace's
//! `Cargo.toml`: `[profile.release.package.edgecm-wire]`); it needs nothing
//! of the manager, and the manager re-exports each module where it always
//! stood (`edgecm::event`, `edgecm::source::csv`, `edgecm::journal::block`,
//! `edgecm::engine::encode`, ...).
//!
//! - [`event`]: ESP's opcodes and flags, and where an event came from.
//! - [`schema`]: field types, a window's schema, the fs formats.
//! - [`source`]: framing and decoding CSV, XML and JSON events into the
//!   window's layout, checking each value against its type ([`source::value`],
//!   [`source::dates`]), the [`source::reader`] that frames a byte stream.
//! - [`block`]: the journal's encoding of a block of events (a record's payload).
//! - [`encode`]: a record's events as the body of ESP's inject request.
//! - [`limits`]: the reader's capacities.

pub mod block;
pub mod encode;
pub mod event;
pub mod limits;
pub mod schema;
pub mod source;

/// Shortens a value quoted in a message so one bad line cannot flood a log.
pub fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}...")
    }
}
