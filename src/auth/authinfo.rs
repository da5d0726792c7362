//! `.authinfo` / `.netrc` files (esp-protocol.md §10, as esppy's
//! `utils/authinfo.py` reads them).
//!
//! Whitespace-separated tokens; an entry starts at `host H` / `machine H` or
//! at `default`, and takes `port|protocol P`, `user|login|account U`,
//! `password W`. `#` starts a comment to the end of the line (at the start
//! of a token); values may be double-quoted with `\` escapes; `macdef NAME`
//! skips to the next empty line. Our one extension: `grant
//! client_credentials` on an entry makes its user and password an OAuth2
//! client id and secret for `-saslogon-url` (the default is `grant password`).
//!
//! Errors say `FILE:LINE:COL: what; accepted: ...` and never quote a value
//! (it may be a password).

use std::fmt;
use std::path::{Path, PathBuf};

/// How an OAuth2 token is obtained with an entry's credentials.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum Grant {
    /// `grant_type=password` with client `sas.ec` (SAS Viya).
    #[default]
    Password,
    /// `grant_type=client_credentials`: user and password are the client's.
    ClientCredentials,
}

/// One entry. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Lower-cased; `None` for the `default` entry.
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub grant: Grant,
    /// 1-based line of the entry's first token.
    pub line: usize,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("line", &self.line)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthInfo {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

const ACCEPTED: &str =
    "host|machine NAME, default, port|protocol P, user|login|account U, password W, grant password|client_credentials, macdef NAME";

struct Token {
    text: String,
    line: usize,
    col: usize,
}

/// Splits `text` into tokens with their positions.
fn tokens(text: &str, file: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut col = 1;
    let mut chars = text.chars().peekable();
    // `macdef` bodies run to the next empty line.
    let mut in_macdef = false;
    let mut line_empty = true;
    while let Some(&c) = chars.peek() {
        if in_macdef {
            chars.next();
            if c == '\n' {
                if line_empty {
                    in_macdef = false;
                }
                line += 1;
                col = 1;
                line_empty = true;
            } else {
                col += 1;
                if !c.is_whitespace() {
                    line_empty = false;
                }
            }
            continue;
        }
        if c == '\n' {
            chars.next();
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            chars.next();
            col += 1;
            continue;
        }
        if c == '#' {
            while let Some(&c) = chars.peek() {
                if c == '\n' {
                    break;
                }
                chars.next();
            }
            continue;
        }
        let (tl, tc) = (line, col);
        let mut t = String::new();
        if c == '"' {
            chars.next();
            col += 1;
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "{file}:{tl}:{tc}: a quoted value has no closing '\"'; accepted: \"text\" with \\\" and \\\\ escapes"
                        ))
                    }
                    Some('"') => {
                        col += 1;
                        break;
                    }
                    Some('\\') => {
                        col += 1;
                        match chars.next() {
                            Some('\n') | None => {
                                return Err(format!(
                                    "{file}:{tl}:{tc}: a quoted value ends in '\\'; accepted: \"text\" with \\\" and \\\\ escapes"
                                ))
                            }
                            Some(e) => {
                                col += 1;
                                t.push(e)
                            }
                        }
                    }
                    Some('\n') => {
                        line += 1;
                        col = 1;
                        t.push('\n');
                    }
                    Some(c) => {
                        col += 1;
                        t.push(c)
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                t.push(c);
                chars.next();
                col += 1;
            }
        }
        let is_macdef = c != '"' && t == "macdef";
        out.push(Token {
            text: t,
            line: tl,
            col: tc,
        });
        if is_macdef {
            // The macro's name, then its body up to an empty line.
            while let Some(&c) = chars.peek() {
                if c == '\n' {
                    break;
                }
                chars.next();
            }
            chars.next();
            line += 1;
            col = 1;
            in_macdef = true;
            line_empty = true;
        }
    }
    Ok(out)
}

impl AuthInfo {
    /// Parses the text of a file named `path` (the name is only for messages).
    pub fn parse(text: &str, path: &Path) -> Result<AuthInfo, String> {
        let file = path.display().to_string();
        let toks = tokens(text, &file)?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            let at = format!("{file}:{}:{}", t.line, t.col);
            let key = t.text.as_str();
            if key == "macdef" {
                i += 1;
                continue;
            }
            if key == "default" {
                entries.push(Entry {
                    line: t.line,
                    ..Entry::default()
                });
                i += 1;
                continue;
            }
            let value = match toks.get(i + 1) {
                Some(v) => v.text.clone(),
                None => return Err(format!("{at}: '{key}' has no value; accepted: {ACCEPTED}")),
            };
            match key {
                "host" | "machine" => entries.push(Entry {
                    host: Some(value.to_ascii_lowercase()),
                    line: t.line,
                    ..Entry::default()
                }),
                "port" | "protocol" | "user" | "login" | "account" | "password" | "grant" => {
                    let Some(e) = entries.last_mut() else {
                        return Err(format!(
                            "{at}: '{key}' before any 'host', 'machine' or 'default'; accepted: an entry starts with host|machine NAME or default"
                        ));
                    };
                    match key {
                        "port" | "protocol" => e.port = Some(value),
                        "user" | "login" | "account" => e.user = Some(value),
                        "password" => e.password = Some(value),
                        _ => {
                            e.grant = match value.as_str() {
                                "password" => Grant::Password,
                                "client_credentials" => Grant::ClientCredentials,
                                _ => {
                                    return Err(format!(
                                        "{at}: grant is not 'password' or 'client_credentials'; accepted: grant password|client_credentials"
                                    ))
                                }
                            }
                        }
                    }
                }
                _ => {
                    return Err(format!(
                    "{at}: unknown keyword (not shown, it may be a secret); accepted: {ACCEPTED}"
                ))
                }
            }
            i += 2;
        }
        Ok(AuthInfo {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The first entry for `host` (case-insensitive) whose port, when it has
    /// one, is `port` and whose user, when `user` is given, is `user`;
    /// otherwise the `default` entry (if its user fits).
    pub fn lookup(&self, host: &str, port: Option<u16>, user: Option<&str>) -> Option<&Entry> {
        let host = host.to_ascii_lowercase();
        let fits = |e: &&Entry| {
            let port_ok = match (&e.port, port) {
                (Some(p), Some(want)) => p.parse::<u16>().ok() == Some(want),
                _ => true,
            };
            let user_ok = match (&e.user, user) {
                (Some(u), Some(want)) => u == want,
                (None, Some(_)) => false,
                _ => true,
            };
            port_ok && user_ok
        };
        self.entries
            .iter()
            .filter(|e| e.host.as_deref() == Some(host.as_str()))
            .find(fits)
            .or_else(|| self.entries.iter().filter(|e| e.host.is_none()).find(fits))
    }

    /// Reads and parses `path`, refusing a file others can read or write
    /// (like ssh with keys); a group-readable one is read with a warning.
    pub fn load(path: &Path) -> Result<AuthInfo, String> {
        super::check_private(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        AuthInfo::parse(&text, path)
    }

    /// Which file to read: `-authinfo FILE`, else `$AUTHINFO`, else
    /// `$NETRC`, else `~/.authinfo`, else `~/.netrc` (the first that exists
    /// among the last two). `Err` names every place looked at.
    pub fn locate(option: Option<&Path>) -> Result<PathBuf, String> {
        if let Some(p) = option {
            return Ok(p.to_path_buf());
        }
        for var in ["AUTHINFO", "NETRC"] {
            if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                return Ok(PathBuf::from(v));
            }
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut looked = Vec::new();
        if let Some(h) = home {
            for f in [".authinfo", ".netrc"] {
                let p = h.join(f);
                if p.exists() {
                    return Ok(p);
                }
                looked.push(p.display().to_string());
            }
        }
        Err(format!(
            "-auth needs credentials, but no authinfo file was found (looked at -authinfo, $AUTHINFO, $NETRC, {}); accepted: a file of `host H port P user U password W` entries",
            if looked.is_empty() { "no $HOME".to_string() } else { looked.join(", ") }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AuthInfo, String> {
        AuthInfo::parse(s, Path::new("a"))
    }

    #[test]
    fn reads_both_spellings_quotes_comments_and_default() {
        let a = parse(
            "# engines\nhost ESP01.example.com port 61001 user sasdemo password secret\n\
             machine esp02 login \"two words\" password \"p\\\"w\"  # trailing\n\
             macdef init\ncd /\nls\n\nhost esp03 account u password x grant client_credentials\n\
             default user anon password none\n",
        )
        .unwrap();
        assert_eq!(a.entries.len(), 4);
        let e = a
            .lookup("esp01.EXAMPLE.com", Some(61001), Some("sasdemo"))
            .unwrap();
        assert_eq!(e.password.as_deref(), Some("secret"));
        assert_eq!(e.line, 2);
        let e = a.lookup("esp02", Some(1), None).unwrap();
        assert_eq!(e.user.as_deref(), Some("two words"));
        assert_eq!(e.password.as_deref(), Some("p\"w"));
        let e = a.lookup("esp03", None, None).unwrap();
        assert!(e.grant == Grant::ClientCredentials);
        // wrong port or user → the default entry
        let e = a.lookup("esp01.example.com", Some(1), None).unwrap();
        assert_eq!(e.user.as_deref(), Some("anon"));
        assert!(a
            .lookup("esp01.example.com", Some(61001), Some("other"))
            .is_none());
    }

    #[test]
    fn errors_say_where_and_never_show_values() {
        let e = parse("host a\n  user u password hunter2 colour blue").unwrap_err();
        assert!(e.starts_with("a:2:27: unknown keyword"), "{e}");
        assert!(!e.contains("colour") && !e.contains("hunter2"), "{e}");
        let e = parse("password x").unwrap_err();
        assert!(e.starts_with("a:1:1: 'password' before any"), "{e}");
        let e = parse("host a password").unwrap_err();
        assert!(e.starts_with("a:1:8: 'password' has no value"), "{e}");
        let e = parse("host a password \"open").unwrap_err();
        assert!(
            e.starts_with("a:1:17: a quoted value has no closing"),
            "{e}"
        );
        assert!(format!("{:?}", parse("host a password hunter2").unwrap()).contains("<hidden>"));
        assert!(!format!("{:?}", parse("host a password hunter2").unwrap()).contains("hunter2"));
    }

    #[test]
    fn world_readable_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("edgecm-authinfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("authinfo");
        std::fs::write(&p, "host a user u password p\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = AuthInfo::load(&p).unwrap_err();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("password p"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(AuthInfo::load(&p).unwrap().entries.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = parse(&s);
        }
    }
}
