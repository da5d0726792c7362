//! The reader's capacities, each with what it costs (STYLE.md 6); the
//! manager's `limits` lists them with the rest.

/// Largest single event a source accepts, in bytes of input (a CSV line, an
/// XML `<event>`). A source's read buffer grows to this at most, so each
/// source costs 64 KiB to 192 KiB of RAM; one event also has to fit in one
/// journal record (`journal::RECORD_MAX`, 256 KiB). A longer event is an
/// error that names where it starts, and the stream resyncs after it.
pub const EVENT_MAX: usize = 192 * 1024;

/// Bytes a source reads at a time.
pub const READ_CHUNK: usize = 64 * 1024;
