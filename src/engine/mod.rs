//! Engines: everything edgecm says to an ESP engine, over its HTTP REST API
//! on `ha_port` (ARCHITECTURE §4, esp-protocol.md §2). The binary pub/sub
//! protocol on `port` is undocumented and never spoken.
//!
//! Per engine, one [`sender::Sender`] task owns one keep-alive connection
//! ([`crate::http::client::Client`]) and walks the [`State`] machine below:
//!
//! ```text
//!  Connecting --probe ok--> Deploying --deploy ok--> Ready <--ok-- Failing
//!      |                        ^    \                 |  \--error-->  |
//!      |                        |     \<--"no such"----+               | retries
//!      +--retries errors--> Failed --heartbeat ok------+               v  in a row
//!                              ^------------------------------------ Failed
//! ```
//! - probe: `GET /eventStreamProcessing/v1/server`, then `GET /SASESP/server`;
//!   the first that answers 2xx is the engine's base path from then on;
//! - deploy: `GET {base}/projects`, then, for each project mapped to the
//!   engine's cluster that the engine does not run in this version
//!   ([`deployed`]), `PUT {base}/projects/{project-name}?overwrite=true&connectors=true&start=true`
//!   with the `<project>` element less its publisher connectors; then the
//!   reference data it lost is sent again (`journal::reference`) before
//!   anything else; nothing else is published before every deploy succeeded;
//! - publish: one journal record = one `PUT {base}/windows/{p}/{cq}/{w}/state?value=injected`
//!   with an `<events>` body ([`encode`]); 2xx acknowledges it, 4xx sends it
//!   to the dead-letter file and acknowledges it while the engine still
//!   lists the project, a 404 or a 4xx from an engine that no longer lists
//!   it (it restarted) redeploys and retries, anything else retries after a
//!   capped, jittered backoff;
//! - heartbeat: `GET {base}/projects` every `-ticktime` ms when no request
//!   answered within the tick (a project missing redeploys); `-retries`
//!   failures in a row (heartbeats or publishes) make the engine Failed; a
//!   heartbeat that answers again starts over at Deploying.
//!
//! Pure logic here ([`Health`], [`Backoff`], [`classify`], [`error_message`]);
//! [`link`] is the sender's link state machine; the IO is in `sender/` and
//! `crate::http::client`.

pub mod added;
pub mod deadletter;
pub mod deployed;
pub use edgecm_wire::encode;
pub mod link;
pub mod models;
pub mod sender;
pub mod sizing;

use std::fmt;
use std::time::Duration;

use crate::http::client::{HttpError, Response};
pub use crate::http::{BASES, BASE_SASESP, BASE_V1};

/// Where an engine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Looking for the base path that answers.
    Connecting,
    /// Loading the projects; nothing is published yet.
    Deploying,
    /// Publishing.
    Ready,
    /// Some requests failed in a row, fewer than `-retries`.
    Failing,
    /// `-retries` failures in a row; heartbeats go on until one answers.
    Failed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Deploying => "deploying",
            State::Ready => "ready",
            State::Failing => "failing",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a request's answer means for the block or step it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Done,
    /// 4xx: the engine refuses this content; retrying would not help.
    Rejected { status: u16, message: String },
    /// 404: the engine does not know the project or window (it restarted).
    Lost(String),
    /// 5xx, time-out, connection lost, not HTTP: try again later.
    Retry(String),
}

/// Classifies an answer. 404 counts as a lost deployment, never as a
/// rejection: ESP's wording for "no such project" is not documented
/// (esp-protocol.md §2.3, [G]), the status is what we rely on.
pub fn classify(r: &Result<Response, HttpError>) -> Outcome {
    match r {
        Ok(resp) if resp.is_success() => Outcome::Done,
        Ok(resp) if resp.status == 404 => Outcome::Lost(answer_text(resp)),
        // 401/403 are about our credentials, not the events: never dead letters.
        Ok(resp)
            if (400..500).contains(&resp.status)
                && !matches!(resp.status, 401 | 403 | 408 | 429) =>
        {
            Outcome::Rejected {
                status: resp.status,
                message: answer_text(resp),
            }
        }
        Ok(resp) => Outcome::Retry(answer_text(resp)),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// `HTTP 400: message` for logs and dead letters.
pub fn answer_text(resp: &Response) -> String {
    let m = error_message(&resp.body);
    if m.is_empty() {
        format!("HTTP {}", resp.status)
    } else {
        format!("HTTP {}: {m}", resp.status)
    }
}

/// The text of an ESP error document: `message` and every `details/detail`
/// (esp-protocol.md §2.3), joined with "; ". A body that is not XML is given
/// as text, cut at 500 characters.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: crate::limits::XML_NODES_MAX,
        ..roxmltree::ParsingOptions::default()
    };
    if let Ok(doc) = roxmltree::Document::parse_with_options(t, opts) {
        let parts: Vec<String> = doc
            .descendants()
            .filter(|n| n.has_tag_name("message") || n.has_tag_name("detail"))
            .filter_map(|n| {
                let s: String = n
                    .children()
                    .filter(|c| c.is_text())
                    .filter_map(|c| c.text())
                    .collect();
                let s = s.trim().to_string();
                (!s.is_empty()).then_some(s)
            })
            .collect();
        if !parts.is_empty() {
            return cut(&parts.join("; "));
        }
    }
    cut(t)
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(500) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// An engine's health: the state machine in the module docs.
#[derive(Debug, Clone)]
pub struct Health {
    state: State,
    misses: u32,
    retries: u32,
    /// The base path that answered, once one did.
    pub base: Option<&'static str>,
    pub last_error: Option<String>,
}

impl Health {
    pub fn new(retries: u32) -> Health {
        Health {
            state: State::Connecting,
            misses: 0,
            retries: retries.max(1),
            base: None,
            last_error: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Failures in a row so far.
    pub fn misses(&self) -> u32 {
        self.misses
    }

    /// A base path answered (probe or heartbeat of a failed engine).
    pub fn probed(&mut self, base: &'static str) {
        self.base = Some(base);
        self.misses = 0;
        if matches!(self.state, State::Connecting | State::Failed) {
            self.state = State::Deploying;
        }
    }

    /// Every project loaded.
    pub fn deployed(&mut self) {
        self.misses = 0;
        self.state = State::Ready;
    }

    /// A publish or heartbeat answered (rejections included: the engine is alive).
    pub fn answered(&mut self) {
        self.misses = 0;
        if self.state == State::Failing {
            self.state = State::Ready;
        }
    }

    /// The engine lost its projects: deploy again before publishing.
    pub fn lost(&mut self) {
        self.misses = 0;
        if matches!(self.state, State::Ready | State::Failing) {
            self.state = State::Deploying;
        }
    }

    /// A request failed. Returns true when this made the engine Failed.
    pub fn failed(&mut self, why: String) -> bool {
        self.last_error = Some(why);
        self.misses = self.misses.saturating_add(1);
        let was = self.state;
        if self.misses >= self.retries {
            self.state = State::Failed;
        } else if was == State::Ready {
            self.state = State::Failing;
        }
        was != State::Failed && self.state == State::Failed
    }
}

/// Capped exponential backoff with jitter: each wait is drawn from
/// [d/2, d], and d doubles from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    /// With its jitter drawn from `seed`: the same seed, the same waits.
    pub fn seeded(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            next: min,
            min,
            max: max.max(min),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        let spread = (d - half).as_micros() as u64;
        half + Duration::from_micros(self.rng.u64(0..=spread))
    }
}

/// The window a journal destination names (`journal::layout`).
pub fn window(w: &crate::journal::layout::WindowSpec) -> encode::Window {
    encode::Window {
        label: format!("{}/{}/{}", w.project, w.contquery, w.window),
        inject_path: format!(
            "/windows/{}/{}/{}/state?value=injected",
            encode::path_segment(&w.project),
            encode::path_segment(&w.contquery),
            encode::path_segment(&w.window)
        ),
        project: w.project.clone(),
        fields: encode::Tag::all(w.fields.iter().map(|(n, k)| (n.as_str(), *k))),
        opcode: w.opcode,
        transactional: w.transactional,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            body: body.as_bytes().to_vec(),
            truncated: false,
        })
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(&resp(200, "")), Outcome::Done);
        assert_eq!(classify(&resp(204, "")), Outcome::Done);
        let body = "<response code='400'><message>bad value</message><details><detail>field 'id'</detail></details></response>";
        assert_eq!(
            classify(&resp(400, body)),
            Outcome::Rejected {
                status: 400,
                message: "HTTP 400: bad value; field 'id'".into()
            }
        );
        assert!(matches!(classify(&resp(404, "")), Outcome::Lost(_)));
        assert!(matches!(classify(&resp(503, "busy")), Outcome::Retry(m) if m == "HTTP 503: busy"));
        assert!(matches!(classify(&resp(429, "")), Outcome::Retry(_)));
        assert!(matches!(classify(&resp(401, "")), Outcome::Retry(_)));
        assert!(matches!(classify(&resp(403, "")), Outcome::Retry(_)));
        assert!(matches!(
            classify(&Err(HttpError::Timeout(Duration::from_millis(5)))),
            Outcome::Retry(_)
        ));
        assert_eq!(error_message(&[b'x'; 600]).len(), 503);
    }

    #[test]
    fn health_walks_the_state_machine() {
        let mut h = Health::new(2);
        assert_eq!(h.state(), State::Connecting);
        assert!(!h.failed("refused".into()));
        assert!(h.failed("refused".into()));
        assert_eq!(h.state(), State::Failed);
        assert!(!h.failed("refused".into()), "already failed");
        h.probed(BASE_SASESP);
        assert_eq!((h.state(), h.base), (State::Deploying, Some(BASE_SASESP)));
        h.deployed();
        assert_eq!(h.state(), State::Ready);
        h.failed("timeout".into());
        assert_eq!(h.state(), State::Failing);
        h.answered();
        assert_eq!(h.state(), State::Ready);
        h.lost();
        assert_eq!(h.state(), State::Deploying);
        h.deployed();
        h.failed("a".into());
        assert!(h.failed("b".into()));
        assert_eq!(h.last_error.as_deref(), Some("b"));
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let mut b = Backoff::seeded(Duration::from_millis(100), Duration::from_millis(1000), 1);
        let caps = [100, 200, 400, 800, 1000, 1000];
        for cap in caps {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(cap / 2) && d <= Duration::from_millis(cap),
                "{d:?} not in [{}, {cap}] ms",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
