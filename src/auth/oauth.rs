//! OAuth2 tokens from SASLogon (`-saslogon-url`, esp-protocol.md §10).
//!
//! `POST {url}/oauth/token` (the URL may also name `/oauth/token` itself),
//! form-encoded:
//! - password grant (default): `grant_type=password&username=U&password=P`
//!   with Basic client authentication `sas.ec:` (empty secret), as SAS Viya's
//!   own clients do;
//! - client credentials (`grant client_credentials` on the authinfo entry):
//!   `grant_type=client_credentials`, the entry's user and password as the
//!   client's id and secret in Basic.
//!
//! The JSON answer's `access_token` is sent as `Bearer`; it is renewed when a
//! fifth of its `expires_in` (at most 60 s) is left, and at once after a 401.
//! Errors quote the endpoint's `error`/`error_description`, never the request.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use super::{basic, Grant};
use crate::http::client::{Client, HttpError, Transport};

/// Where tokens come from.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub transport: Transport,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url())
    }
}

impl Endpoint {
    /// Parses `http[s]://host[:port][/path]`; `tls` makes the connector an
    /// https URL needs (called only for one).
    pub fn parse(
        url: &str,
        tls: impl FnOnce() -> Result<Transport, String>,
    ) -> Result<Endpoint, String> {
        let accepted = "accepted: https://HOST[:PORT]/SASLogon (or http:// on a trusted network)";
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "-saslogon-url {url:?}: no http:// or https://; {accepted}"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => {
                let port = authority[i + 1..]
                    .parse::<u16>()
                    .map_err(|_| format!("-saslogon-url {url:?}: bad port; {accepted}"))?;
                (&authority[..i], port)
            }
            _ => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("-saslogon-url {url:?}: no host; {accepted}"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with("/oauth/token") {
            path.to_string()
        } else {
            format!("{path}/oauth/token")
        };
        let transport = if https { tls()? } else { Transport::Plain };
        Ok(Endpoint {
            host: host.to_string(),
            port,
            path,
            transport,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.transport.scheme(),
            crate::http::resolve::authority(&self.host, self.port),
            self.path
        )
    }
}

struct Token {
    header: String,
    renew_at: Option<Instant>,
}

/// One set of credentials' token, fetched when needed.
pub struct TokenSource {
    endpoint: Endpoint,
    grant: Grant,
    user: String,
    password: String,
    token: RefCell<Option<Token>>,
    /// Tokens obtained (for status and tests).
    pub fetched: std::cell::Cell<u64>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSource({:?}, user {})", self.endpoint, self.user)
    }
}

/// `application/x-www-form-urlencoded` value encoding.
fn form(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl TokenSource {
    pub fn new(endpoint: Endpoint, grant: Grant, user: String, password: String) -> TokenSource {
        TokenSource {
            endpoint,
            grant,
            user,
            password,
            token: RefCell::new(None),
            fetched: std::cell::Cell::new(0),
        }
    }

    pub fn invalidate(&self) {
        *self.token.borrow_mut() = None;
    }

    /// `Bearer ...`, fetching a token when there is none or it is due.
    pub async fn header(&self, timeout: Duration) -> Result<String, HttpError> {
        if let Some(t) = self.token.borrow().as_ref() {
            if t.renew_at.is_none_or(|at| crate::clock::now() < at) {
                return Ok(t.header.clone());
            }
        }
        let t = self.fetch(timeout).await?;
        let h = t.header.clone();
        *self.token.borrow_mut() = Some(t);
        Ok(h)
    }

    async fn fetch(&self, timeout: Duration) -> Result<Token, HttpError> {
        let (client_auth, body) = match self.grant {
            Grant::Password => (
                basic("sas.ec", ""),
                format!(
                    "grant_type=password&username={}&password={}",
                    form(&self.user),
                    form(&self.password)
                ),
            ),
            Grant::ClientCredentials => (
                basic(&self.user, &self.password),
                "grant_type=client_credentials".to_string(),
            ),
        };
        let ep = &self.endpoint;
        let mut c = Client::new(&ep.host, ep.port)
            .with_transport(ep.transport.clone())
            .with_accept("application/json");
        let started = crate::clock::now();
        let resp = c
            .request_authorized(
                "POST",
                &ep.path,
                Some("application/x-www-form-urlencoded"),
                body.as_bytes(),
                &client_auth,
                timeout,
            )
            .await
            .map_err(|e| HttpError::Auth(format!("token from {}: {e}", ep.url())))?;
        let fields = json_fields(&resp.body);
        let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if !resp.is_success() {
            let why = [field("error"), field("error_description")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            return Err(HttpError::Auth(format!(
                "token from {} for user {}: HTTP {}{}{}",
                ep.url(),
                self.user,
                resp.status,
                if why.is_empty() { "" } else { ": " },
                why
            )));
        }
        let token = field("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                HttpError::Auth(format!(
                    "token from {}: the answer has no access_token",
                    ep.url()
                ))
            })?;
        let renew_at = renew_after(field("expires_in").as_deref()).map(|d| started + d);
        self.fetched.set(self.fetched.get() + 1);
        log::info!(
            "token for user {} from {} obtained{}",
            self.user,
            ep.url(),
            renew_at.map_or(String::new(), |at| format!(
                ", renewed in {} ms",
                at.saturating_duration_since(crate::clock::now())
                    .as_millis()
            ))
        );
        Ok(Token {
            header: format!("Bearer {token}"),
            renew_at,
        })
    }
}

/// The top-level string and number members of a JSON object, unescaped;
/// nested values are skipped. Anything that is not an object gives none.
pub fn json_fields(body: &[u8]) -> Vec<(String, String)> {
    let mut p = Json {
        b: body,
        i: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    p.ws();
    if !p.eat(b'{') {
        return out;
    }
    loop {
        p.ws();
        if p.eat(b'}') {
            return out;
        }
        let Some(k) = p.string() else { return out };
        p.ws();
        if !p.eat(b':') {
            return out;
        }
        p.ws();
        match p.peek() {
            Some(b'"') => match p.string() {
                Some(v) => out.push((k, v)),
                None => return out,
            },
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let s = p.i;
                while p
                    .peek()
                    .is_some_and(|c| b"+-.eE".contains(&c) || c.is_ascii_digit())
                {
                    p.i += 1;
                }
                out.push((k, String::from_utf8_lossy(&body[s..p.i]).into_owned()));
            }
            _ => {
                if !p.skip_value() {
                    return out;
                }
            }
        }
        p.ws();
        if !p.eat(b',') {
            return out;
        }
    }
}

struct Json<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Json<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
                            let u = u32::from_str_radix(hex, 16).ok()?;
                            self.i += 4;
                            let ch = char::from_u32(u).unwrap_or('\u{fffd}');
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
    /// Skips an object, array or literal; nesting is bounded.
    fn skip_value(&mut self) -> bool {
        match self.peek() {
            Some(b'{') | Some(b'[') => {
                self.depth += 1;
                if self.depth > 32 {
                    return false;
                }
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek() {
                        None => return false,
                        Some(b'}') | Some(b']') => {
                            self.i += 1;
                            self.depth -= 1;
                            return true;
                        }
                        Some(b'"') => {
                            if self.string().is_none() {
                                return false;
                            }
                        }
                        Some(b'{') | Some(b'[') => {
                            if !self.skip_value() {
                                return false;
                            }
                        }
                        Some(_) => self.i += 1,
                    }
                }
            }
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
                {
                    self.i += 1;
                }
                true
            }
            None => false,
        }
    }
}

/// How long after its request a token with `expires_in` seconds is renewed:
/// a fifth of its life early, at most a minute early; None (kept until a
/// 401) when the answer gives no usable life.
pub fn renew_after(expires_in: Option<&str>) -> Option<Duration> {
    expires_in
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| {
            let life = Duration::from_secs_f64(s.min(1e9));
            life - (life / 5).min(Duration::from_secs(60))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_a_fifth_of_its_life_early_at_most_a_minute() {
        let s = Duration::from_secs;
        assert_eq!(renew_after(Some("3600")), Some(s(3540)));
        assert_eq!(renew_after(Some("100")), Some(s(80)));
        assert_eq!(renew_after(Some("0")), None);
        assert_eq!(renew_after(Some("soon")), None);
        assert_eq!(renew_after(None), None);
    }

    #[test]
    fn token_answers_are_read() {
        let f = json_fields(
            br#" {"access_token":"eyJ\"a\u0041","token_type":"bearer","expires_in":43199,"scope":["a","b"],"x":{"y":[1,{"z":"}"}]},"jti":"j"}"#,
        );
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("access_token"), Some("eyJ\"aA"));
        assert_eq!(get("expires_in"), Some("43199"));
        assert_eq!(get("jti"), Some("j"));
        assert!(json_fields(b"[1]").is_empty());
        assert!(json_fields(b"{\"a\":").is_empty());
        let deep = format!(
            "{{\"a\":{}1{},\"b\":\"c\"}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(json_fields(deep.as_bytes()).is_empty());
    }

    #[test]
    fn urls_are_parsed_and_completed() {
        let e = Endpoint::parse("http://viya.example:8080/SASLogon/", || unreachable!()).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("viya.example", 8080, "/SASLogon/oauth/token")
        );
        let e = Endpoint::parse("http://h/uaa/oauth/token", || unreachable!()).unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/uaa/oauth/token"));
        assert!(Endpoint::parse("ftp://h", || unreachable!())
            .unwrap_err()
            .contains("accepted: https://"));
        assert!(Endpoint::parse("http://h:x/", || unreachable!())
            .unwrap_err()
            .contains("bad port"));
    }

    /// A one-shot token endpoint on 127.0.0.1 that returns what it was sent.
    fn endpoint(answer: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 2048];
            loop {
                let n = s.read(&mut b).unwrap();
                got.extend_from_slice(&b[..n]);
                let t = String::from_utf8_lossy(&got).into_owned();
                if let Some((head, body)) = t.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.parse().unwrap());
                    if body.len() >= len || n == 0 {
                        break;
                    }
                }
            }
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
            String::from_utf8(got).unwrap()
        });
        (port, h)
    }

    #[test]
    fn both_grants_send_what_saslogon_expects() {
        let (port, h) = endpoint(r#"{"access_token":"abc","expires_in":3600}"#);
        let ep = Endpoint::parse(
            &format!("http://127.0.0.1:{port}/SASLogon"),
            || unreachable!(),
        )
        .unwrap();
        let t = TokenSource::new(ep.clone(), Grant::Password, "u s".into(), "p&w".into());
        let got = async_io::block_on(t.header(Duration::from_secs(20))).unwrap();
        assert_eq!(got, "Bearer abc");
        let req = h.join().unwrap();
        assert!(
            req.starts_with("POST /SASLogon/oauth/token HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.contains("Authorization: Basic c2FzLmVjOg==\r\n"),
            "{req}"
        );
        assert!(req.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
        assert!(req.ends_with("\r\n\r\ngrant_type=password&username=u+s&password=p%26w"));
        // cached: no second request
        assert_eq!(
            async_io::block_on(t.header(Duration::from_secs(20))).unwrap(),
            "Bearer abc"
        );
        assert_eq!(t.fetched.get(), 1);

        let (port, h) = endpoint(r#"{"access_token":"xyz"}"#);
        let ep = Endpoint { port, ..ep };
        let t = TokenSource::new(ep, Grant::ClientCredentials, "id".into(), "sec".into());
        assert_eq!(
            async_io::block_on(t.header(Duration::from_secs(20))).unwrap(),
            "Bearer xyz"
        );
        let req = h.join().unwrap();
        assert!(req.contains(&format!("Authorization: {}\r\n", basic("id", "sec"))));
        assert!(
            req.ends_with("\r\n\r\ngrant_type=client_credentials"),
            "{req}"
        );
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }

    proptest::proptest! {
        #[test]
        fn json_never_panics(s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = json_fields(&s);
        }
    }
}
