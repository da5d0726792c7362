//! The journal: the flash-resident queue that holds every accepted event
//! until every engine it is destined to has acknowledged it (ARCHITECTURE
//! contracts 1, 2, 4, 5). Modelled on vector's disk buffer v2.
//!
//! # On-disk format (version 2). FIELD ORDER IS FROZEN: a change is a new version.
//!
//! A journal is a folder of append-only segment files `{first_seq:020}.seg`,
//! each at most [`SEGMENT_MAX`] bytes, holding whole records back to back.
//! A record never spans two segments. All integers are little-endian.
//!
//! ```text
//! offset size  field
//!   0     2    magic      0xEC0A
//!   2     1    version    2
//!   3     1    kind       1 = event block
//!   4     4    body_len   bytes after offset 12 (>= 84, <= RECORD_MAX - 12; >= 60 in version 1)
//!   8     4    crc        CRC-32C of bytes 0..8 followed by the body
//!  12     8    first_seq  sequence number of the record's first event
//!  20     4    count      events in the record (>= 1); they take first_seq..first_seq+count
//!  24     8    dest       engine set: bit i = engine slot i must receive it
//!  32     2    source     raw-source id (`layout`; config order where there is none)
//!  34     2    target     destination id (`layout`; config order over all maps where none)
//!  36     1    pos_kind   0 none, 1 file, 2 socket
//!  37     3    reserved   zero
//!  40     8    pos_a      file: device id     socket: source sequence
//!  48     8    pos_b      file: inode         socket: 0
//!  56     8    pos_c      file: byte offset just after the record's last event
//!  64     8    time_ms    when it was appended, ms since the Unix epoch (for backlog age)
//!  72     8    block_start source events before the source block the record comes from
//!  80     4    block_len  events in that source block (0: unknown, e.g. re-routed events)
//!  84     1    at_end     1: pos_* is the position after the block, 0: before it
//!  85     3    reserved   zero
//!  88     8    closes     engine set: engines this is the block's last record for
//!  96     ..   payload    the events, see `block`
//! ```
//!
//! Kind 2, a cursor record (version 2 only), written ahead of a group
//! commit's event records when acknowledgements moved a cursor, so that one
//! fdatasync covers both:
//!
//! ```text
//! offset size  field
//!   0    12    magic, version 2, kind 2, body_len (= 2 + 17 × n), crc (as above)
//!  12     2    n          engines, 1 to 64
//!  14   17×n   entries    slot (1), cursor (8), backlog (8): events destined to the
//!                         slot at or after its cursor in the records before this one
//! ```
//!
//! Version 1 (still read) ends its header at offset 72, before `block_start`.
//! The origin fields let managers that read the same source agree on which
//! events an engine acknowledged although their blocks differ (failover):
//! once engine `e` acknowledged a record, every event of its source below
//! `block_start` (or `block_start + block_len` when `e` is in `closes`) that
//! was routed to `e` is acknowledged.
//!
//! # Invariants
//! - Sequence numbers count events, not records: each record's `first_seq` is
//!   the previous record's `first_seq + count`. A cursor is "every sequence
//!   below this one is acknowledged"; it can stop inside a record.
//! - A record is valid only if its magic, version, length and CRC check out;
//!   a torn or corrupt record is never returned as valid.
//! - Accepted means durable (contract 1): an event is reported accepted, and
//!   its source position durable, only after the fdatasync that covers its
//!   record returned.
//! - Only the small cursor file is ever rewritten (write-temp, fsync, rename,
//!   fsync dir), and only when an engine is added or removed; segments are
//!   only appended, truncated at a torn tail on recovery, and deleted whole
//!   (contract 5).
//! - Every segment holds at least one event record, so its name is unique.
//! - A cursor is the larger of the cursor file's and the last valid cursor
//!   record's; a cursor below the first segment reads from the first segment.
//!
//! # Never
//! Never hold the backlog in RAM, never drop an accepted event, never grow
//! past the byte cap: at a limit, `append` reports backpressure.

pub use edgecm_wire::block;
pub mod crc;
pub mod inspect;
pub mod layout;
pub mod plan;
pub mod queue;
pub mod record;
pub mod reference;
pub mod storage;

pub use crate::event::Position;
pub use queue::{Full, Journal, Limits, NewRecord, ReadPos, Recovery};
pub use record::{Header, Origin, REROUTED};
pub use storage::{DirStorage, MemStorage, Storage};

pub use crate::limits::SEGMENT_MAX;

/// Largest record, header included. Bounds the scan buffer (RAM) during
/// recovery and reading; the daemon splits larger groups into several records.
pub const RECORD_MAX: usize = 256 * 1024;
