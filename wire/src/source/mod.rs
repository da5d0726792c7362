//! Decoding: each format frames a stream into events (`frame`) and lays an
//! event's fields out by the target window's schema (`decode`); values are
//! checked against their type as they are placed. Pure: no IO.

pub mod csv;
pub mod dates;
pub mod decode;
pub mod json;
pub mod layout;
pub mod reader;
pub mod value;
pub mod xml;
