//! Credentials: what edgecm sends to engines (`-auth`), and what its own
//! admin API asks of clients (esp-protocol.md §10).
//!
//! - An engine with `<auth-user>` gets the authinfo entry for its host, REST
//!   port and that user. Without `-saslogon-url` the entry's user and
//!   password go as HTTP Basic; with it, they buy an OAuth2 token
//!   ([`oauth`]) sent as `Bearer`, renewed before it expires and once on a 401.
//! - The admin API accepts Basic matching an authinfo entry for the
//!   manager's own host names and `-http` port, or `Bearer` equal to the
//!   token in `-admin-token-file`; compared in constant time.
//!
//! Secrets live only in these structures and in request headers: `Debug`
//! hides them, and no message here quotes one.

pub mod authinfo;
pub mod oauth;

use std::fmt;
use std::rc::Rc;

pub use authinfo::{AuthInfo, Entry, Grant};

/// Standard base64 with padding (RFC 4648 §4), for Basic credentials.
pub fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `a == b` in time that depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// An `Authorization` header value split into its scheme (`Basic`,
/// `Bearer`, ...) and its credentials, both trimmed; `None` when there is no
/// space between them.
pub fn authorization(header: &[u8]) -> Option<(&[u8], &[u8])> {
    let h = header.trim_ascii();
    let i = h.iter().position(|&b| b == b' ')?;
    Some((&h[..i], h[i + 1..].trim_ascii()))
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// What an engine (or a peer manager) is sent as `Authorization`.
pub enum Credential {
    /// A complete header value, `Basic ...` or `Bearer ...`.
    Fixed(String),
    /// An OAuth2 token, fetched and renewed.
    Token(oauth::TokenSource),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Fixed(h) => {
                let scheme = h.split(' ').next().unwrap_or("");
                write!(f, "Credential::Fixed({scheme} <hidden>)")
            }
            Credential::Token(t) => write!(f, "Credential::Token({t:?})"),
        }
    }
}

impl crate::http::Authorize for Credential {
    /// The header value to send now (fetching a token if there is none
    /// valid).
    fn header(
        &self,
        timeout: std::time::Duration,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, crate::http::client::HttpError>> + '_>,
    > {
        Box::pin(async move {
            match self {
                Credential::Fixed(h) => Ok(h.clone()),
                Credential::Token(t) => t.header(timeout).await,
            }
        })
    }

    /// A 401 can be cured by a new token.
    fn refreshable(&self) -> bool {
        matches!(self, Credential::Token(_))
    }

    /// Forgets the current token (after a 401).
    fn invalidate(&self) {
        if let Credential::Token(t) = self {
            t.invalidate();
        }
    }
}

/// What engines are accessed with, from `-auth`, the authinfo file and
/// `-saslogon-url`.
pub struct EngineAuth {
    pub info: AuthInfo,
    pub saslogon: Option<oauth::Endpoint>,
}

impl EngineAuth {
    /// The credential for an engine at `host`/`port` with `<auth-user>`
    /// `user`; `Err` says which entry is missing (no secret in it).
    pub fn for_engine(
        &self,
        engine: &str,
        host: &str,
        port: u16,
        user: &str,
    ) -> Result<Credential, String> {
        let e = self.info.lookup(host, Some(port), Some(user)).ok_or_else(|| {
            format!(
                "engine '{engine}': no entry in {} for host {host} port {port} user {user}; accepted: a line `host {host} port {port} user {user} password ...` (or a `default` entry with that user)",
                self.info.path.display()
            )
        })?;
        let password = e.password.clone().ok_or_else(|| {
            format!(
                "engine '{engine}': the entry at {}:{} has no password",
                self.info.path.display(),
                e.line
            )
        })?;
        Ok(match &self.saslogon {
            None => Credential::Fixed(basic(user, &password)),
            Some(ep) => Credential::Token(oauth::TokenSource::new(
                ep.clone(),
                e.grant,
                user.to_string(),
                password,
            )),
        })
    }
}

/// Everything the manager needs to reach engines and peers securely, from
/// the command line (`-auth`, `-authinfo`, `-saslogon-url`, `-cacert`,
/// `-admin-token-file`).
#[derive(Clone, Default)]
pub struct Security {
    /// HTTPS for `tls="true"` engines; `None` when no engine asked for it.
    pub tls: Option<crate::http::client::Transport>,
    /// `-auth`: credentials for engines with `<auth-user>`.
    pub engines: Option<Rc<EngineAuth>>,
    /// `-admin-token-file`'s token, also sent to peer managers that have no
    /// authinfo entry.
    pub admin_token: Option<String>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Security(tls: {}, auth: {}, admin token: {})",
            self.tls.is_some(),
            self.engines.is_some(),
            self.admin_token.is_some()
        )
    }
}

impl Security {
    /// The transport and credential for `engine`; `Err` when it needs what
    /// is not there (TLS not built or not set up, no authinfo entry).
    pub fn for_engine(
        &self,
        engine: &crate::config::Engine,
    ) -> Result<(crate::http::client::Transport, Option<Rc<Credential>>), String> {
        let transport = if engine.tls {
            self.tls.clone().ok_or_else(|| {
                format!(
                    "engine '{}' has tls=\"true\" but {}",
                    engine.name,
                    if cfg!(feature = "tls") {
                        "TLS was not set up"
                    } else {
                        "this edgecm was built without the `tls` feature"
                    }
                )
            })?
        } else {
            crate::http::client::Transport::Plain
        };
        let cred = match (&self.engines, &engine.auth_user) {
            (Some(ea), Some(user)) => Some(Rc::new(ea.for_engine(
                &engine.name,
                &engine.host,
                engine.ha_port,
                user,
            )?)),
            _ => None,
        };
        Ok((transport, cred))
    }

    /// What to send to a peer manager's admin API at `host:port` with
    /// `-auth`: its authinfo entry as Basic, else the admin token as Bearer.
    pub fn for_peer(&self, host: &str, port: u16) -> Option<Rc<Credential>> {
        let ea = self.engines.as_ref()?;
        if let Some(e) = ea.info.lookup(host, Some(port), None) {
            if let (Some(u), Some(p)) = (&e.user, &e.password) {
                return Some(Rc::new(Credential::Fixed(basic(u, p))));
            }
        }
        self.admin_token
            .as_ref()
            .map(|t| Rc::new(Credential::Fixed(format!("Bearer {t}"))))
    }
}

/// Who may use the admin API when `-auth` is on.
#[derive(Default)]
pub struct AdminAuth {
    /// Accepted `Basic` tokens (the base64 part).
    basic: Vec<String>,
    /// The accepted bearer token.
    bearer: Option<String>,
}

impl fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AdminAuth({} basic credentials, bearer: {})",
            self.basic.len(),
            self.bearer.is_some()
        )
    }
}

impl AdminAuth {
    /// Basic credentials from the entries of `info` for any of `hosts` and
    /// `port` (or no port), and the bearer token in `token_file` (its first line).
    pub fn new(
        info: Option<&AuthInfo>,
        hosts: &[String],
        port: u16,
        token_file: Option<&std::path::Path>,
    ) -> Result<AdminAuth, String> {
        let mut a = AdminAuth::default();
        if let Some(info) = info {
            for e in &info.entries {
                let host_ok = e
                    .host
                    .as_ref()
                    .is_some_and(|h| hosts.iter().any(|x| x.eq_ignore_ascii_case(h)));
                let port_ok = e.port.as_ref().is_none_or(|p| p.parse() == Ok(port));
                if let (true, true, Some(u), Some(p)) = (host_ok, port_ok, &e.user, &e.password) {
                    a.basic.push(base64(format!("{u}:{p}").as_bytes()));
                }
            }
        }
        if let Some(f) = token_file {
            crate::auth::check_private(f)?;
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("-admin-token-file {}: cannot read: {e}", f.display()))?;
            let t = text.lines().next().unwrap_or("").trim().to_string();
            if t.is_empty() {
                return Err(format!(
                    "-admin-token-file {}: empty; accepted: a token on the first line",
                    f.display()
                ));
            }
            a.bearer = Some(t);
        }
        Ok(a)
    }

    /// The bearer token accepted (to send to peers).
    pub fn bearer(&self) -> Option<&str> {
        self.bearer.as_deref()
    }

    /// No credential at all would be accepted.
    pub fn is_empty(&self) -> bool {
        self.basic.is_empty() && self.bearer.is_none()
    }

    /// Whether an `Authorization` header value is accepted.
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some((scheme, rest)) = header.and_then(authorization) else {
            return false;
        };
        let mut ok = false;
        if scheme.eq_ignore_ascii_case(b"basic") {
            for b in &self.basic {
                ok |= ct_eq(b.as_bytes(), rest);
            }
        } else if scheme.eq_ignore_ascii_case(b"bearer") {
            if let Some(t) = &self.bearer {
                ok |= ct_eq(t.as_bytes(), rest);
            }
        }
        ok
    }
}

/// Refuses a secrets file others can read or write.
pub fn check_private(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o006 != 0 {
        return Err(format!(
            "{}: mode {mode:03o} lets every user read or write this secret; refused: run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    if mode & 0o070 != 0 {
        log::warn!(
            "{}: mode {mode:03o} lets the file's group read this secret; `chmod 600` is safer",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(basic("sas.ec", ""), "Basic c2FzLmVjOg==");
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn admin_accepts_only_its_own_entry_or_the_token() {
        let info = AuthInfo::parse(
            "host gw1 port 8080 user admin password s3cret\nhost gw1 port 9 user x password y\nhost esp port 8080 user e password f\n",
            std::path::Path::new("a"),
        )
        .unwrap();
        let mut a =
            AdminAuth::new(Some(&info), &["GW1".into(), "127.0.0.1".into()], 8080, None).unwrap();
        a.bearer = Some("tok".into());
        assert!(a.accepts(Some(basic("admin", "s3cret").as_bytes())));
        assert!(a.accepts(Some(b"basic YWRtaW46czNjcmV0")));
        assert!(!a.accepts(Some(basic("admin", "s3cre").as_bytes())));
        assert!(!a.accepts(Some(basic("x", "y").as_bytes())));
        assert!(!a.accepts(Some(basic("e", "f").as_bytes())));
        assert!(a.accepts(Some(b"Bearer tok")));
        assert!(!a.accepts(Some(b"Bearer to")));
        assert!(!a.accepts(Some(b"Bearer")));
        assert!(!a.accepts(None));
        assert!(!format!("{a:?}").contains("tok"));
    }

    #[test]
    fn engine_credentials_come_from_the_matching_entry() {
        let info = AuthInfo::parse(
            "host esp1 port 8080 user u password p\n",
            std::path::Path::new("auth"),
        )
        .unwrap();
        let ea = EngineAuth {
            info,
            saslogon: None,
        };
        let c = ea.for_engine("e1", "ESP1", 8080, "u").unwrap();
        assert!(matches!(&c, Credential::Fixed(h) if h == &basic("u", "p")));
        assert!(!format!("{c:?}").contains(&base64(b"u:p")));
        let e = ea.for_engine("e1", "esp1", 8081, "u").unwrap_err();
        assert!(e.contains("auth") && e.contains("port 8081"), "{e}");
    }
}
