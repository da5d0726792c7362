//! Shared test helpers: paths to ../shared and scratch folders under the
//! target dir (no temp-file crate needed).

#![allow(dead_code)]

pub mod cm;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `../shared` beside the checkout (CI has it there).
pub fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        p.is_dir(),
        "../shared must sit beside the checkout: {}",
        p.display()
    );
    p
}

/// The whole lines of a file another process may be appending to: a last
/// line without its newline is still being written and is left out.
pub fn whole_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole.lines().map(str::to_string).collect()
}

/// A fresh empty folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// An `edgecm engine` stand-in child process; killed when dropped.
pub struct StandIn {
    pub child: std::process::Child,
    pub port: u16,
    pub args: Vec<String>,
}

impl StandIn {
    /// Starts `edgecm engine -http PORT ARGS...` (port 0: a free one) and
    /// waits for the line that says where it listens.
    pub fn start(port: u16, args: &[&str]) -> StandIn {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edgecm"))
            .args(["-loglevel", "warn", "engine", "-http"])
            .arg(port.to_string())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start edgecm engine");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the stand-in's first line");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the stand-in did not say where it listens: {line:?}"));
        StandIn {
            child,
            port,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// SIGKILL, then wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it and starts it again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        *self = StandIn::start(self.port, &args);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (`Connection: close`), with a
/// deadline; returns the status and the body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let t = Some(std::time::Duration::from_secs(120));
    s.set_read_timeout(t).unwrap();
    s.set_write_timeout(t).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the answer");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|b| b.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A journal record with no source position, for journal tests.
pub fn journal_rec(dest: u64, count: u32) -> edgecm::journal::NewRecord {
    edgecm::journal::NewRecord {
        dest: edgecm::route::EngineSet::from_bits(dest),
        source: 0,
        target: 0,
        position: edgecm::journal::Position::None,
        count,
        time_ms: 0,
        origin: edgecm::journal::Origin::NONE,
    }
}
