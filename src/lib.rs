//! edgecm: an edge Cluster Manager for SAS Event Stream Processing.
//!
//! See ARCHITECTURE.md (in the project's design folder) for the data flow
//! and its contracts; each module's own docs say what it must never do.
//!
//! # One event through the house
//!
//! 1. **`source/`** reads a raw-source (`file.rs`, `socket.rs`), frames and
//!    decodes each event (`decode.rs`, `csv.rs`/`xml.rs`/`json.rs`,
//!    `value.rs`) into the target window's layout (`layout.rs`), with the
//!    [`event::Position`] after it. `orchestration.rs` says when a source
//!    may start.
//! 2. **`route/`** picks the engines of each esp-map's cluster for a block
//!    of events (`Router`, `Membership`, `hash.rs`); `ids.rs` turns a
//!    cluster's slots into the journal's engine ids.
//! 3. **`journal/`** gets the block as records (`plan.rs` decides which
//!    records, with positions and origins), appends them (`queue/`), syncs
//!    them in a group commit (`queue/commit.rs`) and keeps each engine's
//!    cursor; `record.rs` is the frozen on-disk format, `storage.rs` the
//!    file system and its faulty twin, `layout.rs` the ids kept by name.
//! 4. **`engine/`**: a sender per engine (`sender/`) reads its records from
//!    its cursor, publishes them as ESP XML (`encode.rs`) over the HTTP
//!    client (`http/`), and does what its link machine (`link.rs`) asks:
//!    probe, deploy (`deployed.rs`), publish, heartbeat, back off.
//! 5. **ack**: a 2xx moves the engine's cursor (`journal::Journal::ack`), the
//!    next group commit makes it durable, and segments every cursor passed
//!    are freed.
//!
//! Every event's bytes go through one crate of their own, `edgecm-wire`
//! (`wire/`), built for speed while the rest is built for size: the
//! decoders and value checks of step 1, the block format of step 3, the XML
//! encoder of step 4, and the event model. Each of its modules is
//! re-exported where it always stood (`event`, `source::csv`,
//! `journal::block`, `engine::encode`, ...), so paths did not change.
//!
//! Around that path: **`daemon/`** wires the stages; one owner task
//! (`daemon/owner.rs`) holds the control state (engine slots and
//! supervision, the pure **`failover/`** protocol's node and progress, an
//! engine being added, a reload under way) and hears from sources, senders,
//! admin calls and SIGHUP through one bounded inbox; senders are told their
//! mode (publish, or trim as a standby); **`admin/`** maps admin API
//! requests and renders a plain snapshot of the state; **`config/`** reads
//! the seed's XML into a checked model.
//!
//! # Floors
//!
//! Modules are listed ground floor first; a module imports only modules on
//! its own floor or below (`tests/structure.rs` checks it): `limits`,
//! `clock`, `heap`, `text`, `event`, `http`, `logger`, `systemd`, `config`, `auth`,
//! `source`, `route`, `journal`, `failover`, `engine`, `admin`, `daemon`,
//! `standin`, `demo`, `top`, `cli`.

pub mod limits;

pub mod clock;
pub use edgecm_wire::event;
pub mod heap;
pub mod http;
pub mod logger;
pub mod systemd;
pub mod text;

pub mod auth;
pub mod config;

pub mod journal;
pub mod route;
pub mod source;

pub mod engine;
pub mod failover;

pub mod admin;
pub mod daemon;

pub mod cli;
pub mod demo;
pub mod standin;
pub mod top;
