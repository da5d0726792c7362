//! The admin REST API on `-http` (ARCHITECTURE §1): `crate::http::server` serves on a
//! thread of its own; each request, body read there (at most
//! [`BODY_MAX`]), is handed to the core over a channel and answered with
//! what the core replies. The core never blocks on a client.
//!
//! Under both `/eventStreamProcessing/v1` and `/SASESP`:
//! - `GET status`: JSON; `GET metrics`: Prometheus text, the same numbers;
//! - `GET routerEngines[/{esp-map}[/{engine}]]`: engines with state and backlog (XML);
//! - `PUT routerEngines/{esp-map}/{engine}` with `<esp-engine name host port ha_port/>`;
//! - `DELETE routerEngines/{esp-map}/{engine}` (a spare in reserve: taken out of reserve);
//!   spares are listed as `<spare-esp-engine ... state="reserve|serving" serves=SLOT>`.

use async_executor::LocalExecutor;
use std::net::SocketAddr;
use std::rc::Rc;

mod metrics;
pub mod render;
mod route;
pub mod snapshot;
pub use route::{route, Route, LOGGER};

pub use crate::limits::ADMIN_BODY_MAX as BODY_MAX;

/// A request handed to the core, and where its answer goes.
pub struct Call {
    pub method: String,
    pub url: String,
    pub body: Vec<u8>,
    pub reply: async_channel::Sender<Reply>,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `Allow` on a 405.
    pub allow: Option<&'static str>,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            body,
            allow: None,
        }
    }

    /// An error (or a short confirmation) as one line of text.
    pub fn text(status: u16, message: impl Into<String>) -> Reply {
        let mut body = message.into();
        body.push('\n');
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    pub(crate) fn not_allowed(method: &str, path: &str, allow: &'static str) -> Reply {
        Reply {
            allow: Some(allow),
            ..Reply::text(
                405,
                format!("{method} {path} is not accepted; accepted methods: {allow}"),
            )
        }
    }
}

/// Binds `addr` and serves on a new thread (`crate::http::server`, with its
/// limits); the calls come out of the returned channel. With `auth`, a
/// request without accepted credentials gets 401 there and never reaches
/// the core. Returns the bound address (port 0 picks one).
pub fn serve(
    listener: std::net::TcpListener,
    auth: Option<crate::auth::AdminAuth>,
) -> std::io::Result<(SocketAddr, async_channel::Receiver<Call>)> {
    let bound = listener.local_addr()?;
    let (tx, rx) = async_channel::bounded(crate::limits::ADMIN_CALLS_QUEUED);
    let limits = crate::http::server::Limits {
        body_max: BODY_MAX,
        // A request has this long to arrive whole: a slow client holds one
        // of the connections only briefly.
        read_timeout: std::time::Duration::from_secs(2),
        ..crate::http::server::Limits::default()
    };
    std::thread::Builder::new()
        .name("admin-http".into())
        .spawn(move || {
            let ex = Rc::new(LocalExecutor::new());
            let auth = Rc::new(auth);
            let handler = move |rq: crate::http::server::Request| {
                let tx = tx.clone();
                let auth = auth.clone();
                async move { answer_http(rq, &tx, auth.as_ref().as_ref()).await }
            };
            let server = crate::http::server::serve(ex.clone(), listener, limits, None, handler);
            if let Err(e) = async_io::block_on(ex.run(server)) {
                log::error!("admin API: {e}");
            }
        })?;
    Ok((bound, rx))
}

/// Checks credentials, hands the request to the core and turns its reply
/// into a response.
async fn answer_http(
    rq: crate::http::server::Request,
    tx: &async_channel::Sender<Call>,
    auth: Option<&crate::auth::AdminAuth>,
) -> crate::http::server::Response {
    if let Some(a) = auth {
        if !a.accepts(rq.header("authorization")) {
            log::info!(
                "admin API: {} {} from {}: refused, {} credentials",
                rq.method,
                rq.url.split('?').next().unwrap_or(""),
                rq.peer.map_or("?".into(), |p| p.to_string()),
                if rq.header("authorization").is_some() {
                    "wrong"
                } else {
                    "no"
                }
            );
            return crate::http::server::Response::text(
                401,
                "credentials required; accepted: Basic with the authinfo entry for this manager's host and -http port, or Bearer with the -admin-token-file token",
            )
            .with_header("WWW-Authenticate", "Basic realm=\"edgecm\", Bearer realm=\"edgecm\"");
        }
    }
    let (rtx, rrx) = async_channel::bounded(1);
    let call = Call {
        method: rq.method,
        url: rq.url,
        body: rq.body,
        reply: rtx,
    };
    let reply = if tx.send(call).await.is_err() {
        Reply::text(503, "the manager is stopping")
    } else {
        rrx.recv()
            .await
            .unwrap_or_else(|_| Reply::text(503, "the manager is stopping"))
    };
    let mut resp = crate::http::server::Response::new(reply.status, reply.content_type, reply.body);
    if let Some(allow) = reply.allow {
        resp = resp.with_header("Allow", allow);
    }
    resp
}
