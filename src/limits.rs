//! Capacities, each with what it costs (STYLE.md 6). "Full" is a named error
//! or backpressure, never a panic.

/// Most XML nodes a config or project file may hold. roxmltree keeps about
/// 60 bytes per node, so this caps a parse at ~6 MB of RAM; the largest real
/// project model in the corpus has under 2,000 nodes.
pub const XML_NODES_MAX: u32 = 100_000;

/// Largest config or project file read, in bytes (the file is held in RAM
/// while it is parsed).
pub const CONFIG_FILE_MAX: u64 = 4 * 1024 * 1024;

/// Most engines routed to in one cluster at a time: an engine set is a u64
/// bitmask (8 bytes per journal record). Each engine also costs its
/// durable-hash ring points (`route::VNODES` × 5 bytes = 10 KiB).
pub const ENGINES_MAX: usize = 64;

/// Largest single event a source accepts, in bytes of input (a CSV line, an
/// XML `<event>`). A source's read buffer grows to this at most, so each
/// source costs 64 KiB to 192 KiB of RAM; one event also has to fit in one
/// journal record (`journal::RECORD_MAX`, 256 KiB). A longer event is an
/// error that names where it starts, and the stream resyncs after it.
pub const EVENT_MAX: usize = 192 * 1024;

/// Bytes a source reads at a time.
pub const READ_CHUNK: usize = 64 * 1024;

/// Largest request body `edgecm engine` accepts (a block of events as XML).
pub const STANDIN_BODY_MAX: usize = 16 * 1024 * 1024;

/// Flash kept for reference data (`journal::reference`): the events of the
/// maps that orchestration orders first, or that multicast, kept after every
/// engine took them so that an engine that gets its project anew (a spare,
/// an added engine, one that restarted) receives them again first. Past it,
/// further reference events are not kept (counted, warned once). No RAM cost
/// beyond one record's payload while an engine is being replayed.
pub const REFERENCE_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// Largest dead-letter file (`{state-dir}/dead-letters.xml`). Past it the
/// file becomes `dead-letters.1.xml` (the one before that is deleted) and a
/// new one starts: refused blocks can take at most twice this much flash.
pub const DEAD_LETTERS_MAX: u64 = 16 * 1024 * 1024;

/// `GET health` answers 503 once the journal holds this share of its cap
/// (`-state-max`): sources are about to pause.
pub const JOURNAL_HEALTH_SHARE: f64 = 0.9;

/// The seed's default queue size per engine, `1m` events (`-buffersize`): what
/// sources may queue for an engine before they pause. Its cost is flash, not
/// RAM: the queue is the journal.
pub const DEFAULT_BUFFERSIZE: u64 = 1 << 20;
