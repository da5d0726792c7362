//! The command line: `dfesp_cluster_manager`'s options (seed, "Running the
//! Cluster Manager") plus edgecm's own, and the subcommands.
//!
//! SAS tools spell long options with one dash (`-http 12347`); argh wants two.
//! [`normalize`] rewrites a single-dash word into the double-dash form when,
//! and only when, it is one of our option names, so values that start with a
//! dash are left alone.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use argh::FromArgs;

pub use crate::http::resolve::parse_peer;
pub use crate::limits::DEFAULT_BUFFERSIZE;
pub use crate::logger::parse_level;

#[derive(FromArgs, Debug, PartialEq)]
/// edgecm: an edge Cluster Manager for SAS Event Stream Processing. It reads
/// local file and socket sources, routes their events to ESP engines, and keeps
/// every accepted event on flash until an engine acknowledged it. Options take
/// one dash or two (-http 12347 or --http 12347).
pub struct Cli {
    /// port for the admin REST API; PORT binds 127.0.0.1, ADDR:PORT binds ADDR (0: any free port, logged); -http-admin is the same (the 4.2 spelling)
    #[argh(option, from_str_fn(parse_listen))]
    pub http: Option<SocketAddr>,

    /// publish/subscribe port (accepted for dfesp_cluster_manager compatibility)
    #[argh(option, from_str_fn(parse_port))]
    pub pubsub: Option<u16>,

    /// the Cluster Manager XML: file://PATH or a plain path
    #[argh(option)]
    pub cluster_manager: Option<String>,

    /// enable authentication: to engines with <auth-user> (credentials from the authinfo file) and on the admin API
    #[argh(switch)]
    pub auth: bool,

    /// the authinfo/netrc file (default: $AUTHINFO, $NETRC, ~/.authinfo, ~/.netrc)
    #[argh(option)]
    pub authinfo: Option<PathBuf>,

    /// with -auth, get OAuth2 tokens from this SASLogon (https://HOST/SASLogon) instead of sending Basic
    #[argh(option)]
    pub saslogon_url: Option<String>,

    /// a PEM file of CA certificates trusted besides the system's, for HTTPS to engines and SASLogon
    #[argh(option)]
    pub cacert: Option<PathBuf>,

    /// with -auth, the admin API also accepts "Authorization: Bearer" with the token on this file's first line
    #[argh(option)]
    pub admin_token_file: Option<PathBuf>,

    /// allow -http on a non-loopback address without -auth (anyone who reaches it can change the engines)
    #[argh(switch)]
    pub insecure_admin: bool,

    /// the form date and stamp fields are sent to the engines in, a strftime format like a dateformat (default: seconds and microseconds since 1970, what ESP itself writes)
    #[argh(option)]
    pub engine_dateformat: Option<String>,

    /// write the local ESP project (raw-sources as ESP fs connectors) to this file at start
    #[argh(option)]
    pub output_projects: Option<PathBuf>,

    /// write the ESP router that routes the local project like the esp-maps to this file at start
    #[argh(option)]
    pub output_routers: Option<PathBuf>,

    /// run as a standby of the leader at HOST:PORT
    #[argh(option)]
    pub standby: Option<String>,

    /// heartbeat period in ms (default 1000)
    #[argh(option, default = "1000")]
    pub ticktime: u64,

    /// missed heartbeats or updates before a peer counts as failed (default 2)
    #[argh(option, default = "2")]
    pub retries: u32,

    /// connection and request time-out in ms (default 3000)
    #[argh(option, default = "3000")]
    pub timeout: u64,

    /// queued events per engine before sources pause; k, m, g suffixes (x1024) accepted (default 1m)
    #[argh(option, default = "DEFAULT_BUFFERSIZE", from_str_fn(parse_size))]
    pub buffersize: u64,

    /// answered requests per engine whose acknowledgement may wait for the group commit before the next is sent; a crash sends at most this many again (1 to 64, default 8)
    #[argh(
        option,
        default = "crate::limits::DEFAULT_INFLIGHT",
        from_str_fn(parse_inflight)
    )]
    pub inflight: usize,

    /// put up to -inflight requests on the wire to each engine at once (HTTP/1.1 pipelining); a request that fails in a window is sent again after those behind it, which may then arrive twice
    #[argh(switch)]
    pub pipeline: bool,

    /// on SIGTERM/SIGINT, ms engines may go on draining the queue before exit (default 5000)
    #[argh(option, default = "5000")]
    pub grace: u64,

    /// most bytes the journal may hold on flash before sources pause; k, m, g suffixes (default: 1g or the free space less a reserve, whichever is smaller)
    #[argh(option, from_str_fn(parse_state_max))]
    pub state_max: Option<u64>,

    /// group commit: ms from the first unsynced event to the fdatasync that makes it accepted (default 50)
    #[argh(option, default = "50", from_str_fn(parse_commit_ms))]
    pub commit_ms: u64,

    /// group commit: also sync as soon as this many bytes wait; k, m, g suffixes (default 1m)
    #[argh(option, default = "1 << 20", from_str_fn(parse_size))]
    pub commit_bytes: u64,

    /// where the journal and cursors live (default /var/lib/edgecm)
    #[argh(option, default = "PathBuf::from(\"/var/lib/edgecm\")")]
    pub state_dir: PathBuf,

    /// error, warn, info, debug or trace (default info)
    #[argh(option, default = "log::LevelFilter::Info", from_str_fn(parse_level))]
    pub loglevel: log::LevelFilter,

    /// a progress line (events in and out per second, backlog, journal) every this many seconds while events move (default 60; 0: none)
    #[argh(option, default = "60")]
    pub progress_s: u64,

    /// text (default: with times, or journald's form under systemd) or json (one object per line)
    #[argh(option, default = "String::from(\"text\")")]
    pub logformat: String,

    #[argh(subcommand)]
    pub command: Option<Command>,
}

#[derive(FromArgs, Debug, PartialEq)]
#[argh(subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start
pub enum Command {
    Check(Check),
    Queue(Queue),
    Top(Top),
    Engine(EngineCmd),
    Demo(Demo),
}

#[derive(FromArgs, Debug, PartialEq)]
/// A live view of a running manager over its admin API: one line per source
/// and engine (state, events per second, backlog and its age, the last
/// minute), the journal's use; a frame a second, q or Ctrl-C quits.
#[argh(subcommand, name = "top")]
pub struct Top {
    /// the manager's admin API: PORT (on 127.0.0.1) or HOST:PORT (default 127.0.0.1:12347)
    #[argh(option, default = "String::from(\"127.0.0.1:12347\")")]
    pub http: String,

    /// print one frame and exit (for scripts)
    #[argh(switch)]
    pub once: bool,
}

#[derive(FromArgs, Debug, PartialEq)]
/// Run the whole product on this machine: three stand-in engines and a spare
/// on free 127.0.0.1 ports, a broker-surveillance example routed to them, a
/// progress line while it runs, and a table of what each engine received.
#[argh(subcommand, name = "demo")]
pub struct Demo {
    /// trades to generate (default 20000)
    #[argh(option, default = "20_000")]
    pub trades: u64,

    /// folder for the demo's files (default: a new one under the temp dir, removed at the end)
    #[argh(option)]
    pub dir: Option<PathBuf>,

    /// keep the demo's files (config, data, journal, recordings) afterwards
    #[argh(switch)]
    pub keep: bool,
}

#[derive(FromArgs, Debug, PartialEq)]
/// A STAND-IN for an ESP engine, for trials, demos and tests: NOT an ESP
/// engine. It serves the REST endpoints edgecm uses (server, projects, project
/// state, inject, events) as strictly as ESP is known to (overwrite, start and
/// connectors honoured; injects only into source windows of running projects;
/// events checked against the window schema), records accepted events to
/// DIR/PROJECT.CONTQUERY.WINDOW.csv and loads and injects to
/// DIR/wire.log. It runs no windows and no connectors, computes nothing, and
/// forgets everything when restarted.
#[argh(subcommand, name = "engine")]
pub struct EngineCmd {
    /// port to serve on: PORT binds 127.0.0.1 (0 picks a free one, printed on stdout), or ADDR:PORT
    #[argh(option, from_str_fn(parse_listen))]
    pub http: SocketAddr,

    /// folder where accepted events are recorded (default: not recorded)
    #[argh(option)]
    pub record: Option<PathBuf>,

    /// base paths served: v1 (/eventStreamProcessing/v1), sasesp (/SASESP) or both (default both)
    #[argh(option, default = "String::from(\"both\")")]
    pub base: String,

    /// wait this many ms before each answer (default 0)
    #[argh(option, default = "0")]
    pub delay_ms: u64,

    /// answer every Nth inject with 503 (default 0: never)
    #[argh(option, default = "0")]
    pub fail_every: u64,

    /// answer injects into the window with this name with 400
    #[argh(option)]
    pub reject_window: Option<String>,

    /// how date and stamp values must look (default: what ESP writes, seconds and microseconds since 1970; give the manager's -engine-dateformat here when it has one)
    #[argh(option)]
    pub dateformat: Option<String>,

    /// the pub/sub port reported by GET server (default 0)
    #[argh(option, default = "0")]
    pub pubsub: u16,

    /// serve HTTPS with this PEM certificate chain (with -tls-key)
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,

    /// the PEM private key of -tls-cert
    #[argh(option)]
    pub tls_key: Option<PathBuf>,

    /// answer 401 unless a request carries Basic USER:PASS (or an accepted bearer token)
    #[argh(option)]
    pub require_basic: Option<String>,

    /// answer 401 unless a request carries Bearer TOKEN (or accepted Basic); @FILE: the tokens in FILE, one per line, read at each request
    #[argh(option)]
    pub require_bearer: Option<String>,

    /// the HTTP status for "no such project or window": 404 or 400 (ESP's is not documented; default 404)
    #[argh(option, default = "404")]
    pub missing_status: u16,
    /// refuse every project load with 400 (a fault for tests)
    #[argh(switch)]
    pub refuse_loads: bool,
    /// serve under this path first, like a Kubernetes ingress (e.g. /SASEventStreamProcessingServer/p1)
    #[argh(option, default = "String::new()")]
    pub base_prefix: String,
}

#[derive(FromArgs, Debug, PartialEq)]
/// Validate a Cluster Manager config and the projects it references, without
/// touching the network, and print a summary. Exit 0 if valid, 1 if not.
#[argh(subcommand, name = "check")]
pub struct Check {
    /// the Cluster Manager XML: file://PATH or a plain path
    #[argh(option)]
    pub cluster_manager: String,

    /// also check that this state dir is writable
    #[argh(option)]
    pub state_dir: Option<PathBuf>,
}

#[derive(FromArgs, Debug, PartialEq)]
/// Show what the journal holds, without changing it: segments, records, bytes,
/// per-engine backlog and oldest unacknowledged age, per-source resume
/// position, and any damage found.
#[argh(subcommand, name = "queue")]
pub struct Queue {
    /// the state dir (default /var/lib/edgecm)
    #[argh(option, default = "PathBuf::from(\"/var/lib/edgecm\")")]
    pub state_dir: PathBuf,

    /// the Cluster Manager XML the manager runs, to name engines and sources (else slots and indices)
    #[argh(option)]
    pub cluster_manager: Option<String>,
}

/// Long option names, for [`normalize`].
const LONG_OPTIONS: &[&str] = &[
    "http",
    "pubsub",
    "cluster-manager",
    "auth",
    "authinfo",
    "saslogon-url",
    "cacert",
    "admin-token-file",
    "insecure-admin",
    "tls-cert",
    "tls-key",
    "require-basic",
    "require-bearer",
    "output-projects",
    "engine-dateformat",
    "output-routers",
    "standby",
    "ticktime",
    "retries",
    "timeout",
    "buffersize",
    "inflight",
    "pipeline",
    "grace",
    "state-dir",
    "state-max",
    "commit-ms",
    "commit-bytes",
    "loglevel",
    "logformat",
    "progress-s",
    "help",
    "record",
    "base",
    "delay-ms",
    "fail-every",
    "reject-window",
    "missing-status",
    "refuse-loads",
    "base-prefix",
    "dateformat",
    "trades",
    "dir",
    "keep",
    "once",
];

/// Rewrites `-name` to `--name` for our long option names, `-h` to
/// `--help`, and `--name=value` (or `-name=value`) to two arguments.
pub fn normalize<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    args.iter()
        .flat_map(|a| {
            let a = a.as_ref();
            match a.split_once('=') {
                Some((opt, value))
                    if opt.starts_with('-')
                        && LONG_OPTIONS.contains(&opt.trim_start_matches('-')) =>
                {
                    vec![opt.to_string(), value.to_string()]
                }
                _ => vec![a.to_string()],
            }
        })
        .map(|a| {
            let a = a.as_str();
            if a == "-h" {
                return "--help".to_string();
            }
            match a.strip_prefix('-') {
                // The 4.2 `dfesp_am_server` spelling in the seed.
                Some("http-admin" | "-http-admin") => "--http".to_string(),
                Some(rest) if !rest.starts_with('-') && LONG_OPTIONS.contains(&rest) => {
                    format!("-{a}")
                }
                _ => a.to_string(),
            }
        })
        .collect()
}

/// Whether the arguments ask for the version (`--version`, `-version`, `-V`).
pub fn wants_version<S: AsRef<str>>(args: &[S]) -> bool {
    args.first()
        .is_some_and(|a| matches!(a.as_ref(), "--version" | "-version" | "-V"))
}

/// Parses the arguments after the program name, in either dash style.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Cli, argh::EarlyExit> {
    let args = normalize(args);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Cli::from_args(&["edgecm"], &refs)
}

/// The usage text (what `edgecm --help` prints).
pub fn usage() -> String {
    match Cli::from_args(&["edgecm"], &["--help"]) {
        Err(e) => e.output,
        Ok(_) => String::new(),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("{s:?} is not a port; accepted: 1 to 65535")),
    }
}

/// `PORT` (0 allowed) binds 127.0.0.1; `ADDR:PORT` binds ADDR.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.trim().parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{s:?} is not accepted; accepted: PORT or ADDR:PORT (e.g. 0, 18080, 127.0.0.1:18080)"
        )
    })
}

/// A count with an optional k, m or g suffix (powers of 1024): `1m` = 1,048,576.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not accepted; accepted: a whole number > 0 with an optional k, m or g suffix (e.g. 1m)")),
    }
}

fn parse_state_max(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        n if n >= 1 << 20 => Ok(n),
        _ => Err(format!(
            "{s:?} is too small; accepted: at least 1m (the largest record is 256k)"
        )),
    }
}

fn parse_inflight(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not accepted; accepted: a whole number of requests from 1 to 64 (e.g. 8)"
        )),
    }
}

fn parse_commit_ms(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not accepted; accepted: whole milliseconds from 1 to 10000 (e.g. 50)"
        )),
    }
}
