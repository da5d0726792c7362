//! edgecm: an edge Cluster Manager for SAS Event Stream Processing.
//!
//! See ARCHITECTURE.md (in the project's design folder) for the data flow and
//! the six contracts; each module's own docs say what it must never do.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod event;
pub mod failover;
pub mod http;
pub mod journal;
pub mod limits;
pub mod logger;
pub mod route;
pub mod source;
pub mod standin;
pub mod systemd;
pub mod text;
pub mod top;
