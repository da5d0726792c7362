//! The ground floor for everything that speaks HTTP: the engine client
//! ([`client`]), the bounded server the admin API and the stand-in engine
//! run on ([`server`]), name resolution that never holds the thread
//! ([`resolve`]) and TLS ([`tls`]).
//!
//! Nothing here knows an engine, a config or a credential source: the client
//! asks an [`Authorize`] for the `Authorization` header it sends, so `auth`
//! (basic, authinfo, OAuth2 tokens fetched with this client) sits above this
//! floor and not in a circle with it.

pub mod client;
pub mod resolve;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

/// The two REST roots ESP servers answer under, and the admin API
/// too (esp-protocol.md §2.1).
pub const BASE_V1: &str = "/eventStreamProcessing/v1";
pub const BASE_SASESP: &str = "/SASESP";
pub const BASES: [&str; 2] = [BASE_V1, BASE_SASESP];

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a request's `Authorization` header comes from.
///
/// Implemented by `auth::Credential`; the client never logs the value nor
/// puts it in an error.
pub trait Authorize {
    /// The header value to send now (may fetch a token within `timeout`).
    fn header(
        &self,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<String, client::HttpError>> + '_>>;
    /// A 401 can be cured by asking again after [`Authorize::invalidate`].
    fn refreshable(&self) -> bool;
    /// Forgets the current value (after a 401).
    fn invalidate(&self);
}
