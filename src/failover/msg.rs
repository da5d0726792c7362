//! What managers say to each other (`wire` encodes it), what a node asks
//! its shell to do ([`Out`]), and what it keeps across restarts.

use super::{Acked, Manager, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub epoch: u64,
    pub counter: u64,
    pub managers: Vec<Manager>,
    pub acked: Acked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A standby asks to join; `config` fingerprints its configuration.
    Register {
        config: u64,
    },
    Update(Update),
    /// "I do not lead (or your epoch is old): the leader I know, of `epoch`."
    NotLeader {
        epoch: u64,
        leader: Option<String>,
    },
    /// A registration refused, and why.
    Refused {
        why: String,
    },
    Probe,
    Alive,
}

/// A message: who sends it (the address it is reached at) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub from: String,
    pub body: Body,
}

/// What a step asks of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Send {
        to: String,
        msg: Msg,
    },
    /// The role or epoch changed (log it, start or stop publishing).
    Role {
        from: Role,
        to: Role,
        epoch: u64,
    },
    /// The leader's acknowledged counts grew (a standby trims its journal).
    Acked,
    /// A registration was refused (log it).
    Refused {
        by: String,
        why: String,
    },
}

/// What a manager keeps across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub id: Option<u8>,
    pub epoch: u64,
    pub managers: Vec<Manager>,
}
