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

/// The largest event a source accepts and the bytes it reads at a time
/// live beside the reader that keeps them (`edgecm_wire::limits`).
pub use edgecm_wire::limits::{EVENT_MAX, READ_CHUNK};

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

/// Requests per engine whose acknowledgement may wait for the group commit
/// (`-inflight`): a sender sends the next request as soon as the engine
/// answered, up to this many answered requests whose cursor is not on flash
/// yet; then it waits for the commit. It costs no RAM (an answered request
/// is a sequence number); its cost is duplicates: after a crash at most
/// this many requests per engine, each at most `REQUEST_BODY_MAX` of XML,
/// are sent again (contract 2). 1 waits for the commit after every request.
pub const DEFAULT_INFLIGHT: usize = 8;

/// Bytes an engine's journal reader reads at a time: the records after the
/// one it needs come from this copy instead of a seek and a read each (four
/// system calls a record before). Costs this much RAM per engine while it
/// is sent to, given back with the commit buffer once the manager idles.
pub const JOURNAL_READ_AHEAD: usize = 32 * 1024;

/// Least time between the starts of two group commits that `-commit-bytes`
/// (not `-commit-ms`) brought forward: at most 20 commits, and so about 20
/// fsyncs, a second however fast events arrive (the flash budget is 25 a
/// second, the rest for new segments and small state files). Meanwhile
/// sources pause at `-commit-bytes`: with the 1 MiB default, sources can
/// append at most 20 MiB of journal a second (about 390,000 broker trades).
/// A shorter `-commit-ms` is the operator's choice and wins.
pub const COMMIT_SPACING: std::time::Duration = std::time::Duration::from_millis(50);

/// Slots a cluster may have beyond its config's engines (engines added over
/// the admin API or a reload). Each costs a journal engine id of the 64
/// (`ENGINES_MAX`), nothing more until used.
pub const SLOTS_SPARE: usize = 4;

/// Largest journal segment file. 8 MiB: large enough that a 1 GiB journal
/// is only 128 files, small enough that reclaim frees space in steps a few
/// flash erase blocks wide and a fully acknowledged segment is deleted soon.
/// No RAM cost: segments are read a record at a time.
pub const SEGMENT_MAX: u64 = 8 * 1024 * 1024;

/// Flash kept free in `{state-dir}/reserve` and given up when the filesystem
/// is full, so that acknowledgements and source positions can always be
/// written and the queue drains (contract 4). 256 KiB of flash; the file is
/// written once from a zeroed buffer of this size (RAM only while written).
pub const RESERVE_BYTES: usize = 256 * 1024;

/// Largest publish request body per engine. A request grows by whole
/// records while its body is under this. It is the unit in flight: after a
/// crash at most `-inflight` requests per engine are sent again (contract
/// 2, `DEFAULT_INFLIGHT`). Costs up to this much RAM per engine while a
/// request is built and sent (a pipelined request's body is dropped once
/// written).
pub const REQUEST_BODY_MAX: usize = 512 * 1024;

/// Most managers that ever join one failover group (ids `0..MANAGERS_MAX`).
/// Each costs an entry in the managers' list and in the acknowledgement map
/// every update carries (tens of bytes).
pub const MANAGERS_MAX: u8 = 16;

/// Largest admin API request body read (a `PUT routerEngines` engine, a
/// failover message). RAM per request being read: the admin server reads at
/// most `http::server::Limits::conns_max` at once.
pub const ADMIN_BODY_MAX: usize = 64 * 1024;

/// Admin requests waiting for the core (a bounded channel of `admin::Call`s:
/// a few hundred bytes each plus their body). When full, the admin thread
/// waits: a flood of requests never grows the core's memory.
pub const ADMIN_CALLS_QUEUED: usize = 8;

/// Messages waiting for the core's owner task (`daemon::owner`, one bounded
/// channel): admin calls (each holds its body, at most the admin body cap;
/// at most `ADMIN_CALLS_QUEUED` wait in the admin thread's own queue before
/// this one), senders' reports (a few marks each; refused when full, sent
/// again later), sources' start and end. When full, a source waits to
/// report and the admin thread to hand over a call. About 100 bytes a slot.
pub const CORE_INBOX: usize = 64;

/// Most clients one listening socket source serves at once; each costs its
/// read buffer (64 KiB, up to `EVENT_MAX`). Further clients are accepted and
/// closed at once, with a log line.
pub const SOCKET_CLIENTS_MAX: usize = 32;

/// Stack of a name-resolution thread (`http::resolve`): enough for glibc's
/// and musl's getaddrinfo. Virtual memory, touched only as deep as the
/// resolver goes; one thread per connection attempt after a failure.
pub const RESOLVER_STACK: usize = 256 * 1024;

/// Most bytes of an engine's answer status line and headers accepted
/// (buffered in RAM per engine connection while read).
pub const RESPONSE_HEAD_MAX: usize = 16 * 1024;

/// Most bytes of an engine's answer body kept (an engine's answer is a short
/// XML document); a longer body ends the read and closes the connection.
/// RAM per engine connection.
pub const RESPONSE_BODY_KEEP: usize = 64 * 1024;

/// Most headers in an engine's answer (parsed on the stack: 48 × 32 bytes).
pub const RESPONSE_HEADERS_MAX: usize = 48;

/// Bytes an answer is read in at a time (the read buffer grows by this).
pub const RESPONSE_READ_STEP: usize = 8 * 1024;

/// Most headers in a request to the admin API or the stand-in (parsed on the
/// stack: 64 × 32 bytes).
pub const REQUEST_HEADERS_MAX: usize = 64;
