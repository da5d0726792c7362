//! The `edgecm` binary: parses the command line and maps outcomes to exit
//! codes (the only place that does, STYLE.md 9): 0 ok, 1 invalid config or a
//! failure at run time, 2 bad command line.

use std::process::ExitCode;

use edgecm::cli::{self, Command};
use edgecm::config::{self, Config};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprint!("{}", cli::usage());
        return ExitCode::from(2);
    }
    if cli::wants_version(&args) {
        println!("edgecm {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let cli = match cli::parse(&args) {
        Ok(c) => c,
        Err(early) => {
            return if early.status.is_ok() {
                print!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("{}", early.output.trim_end());
                eprintln!("Run 'edgecm --help' for usage.");
                ExitCode::from(2)
            };
        }
    };
    let json = match cli.logformat.as_str() {
        "text" => false,
        "json" => true,
        other => {
            eprintln!("edgecm: -logformat {other:?} is not accepted; accepted: text, json");
            return ExitCode::from(2);
        }
    };
    edgecm::logger::init(cli.loglevel, edgecm::logger::choose(json));
    match &cli.command {
        Some(Command::Check(c)) => check(&c.cluster_manager, c.state_dir.as_deref()),
        Some(Command::Queue(q)) => queue(&q.state_dir, q.cluster_manager.as_deref()),
        Some(Command::Top(t)) => {
            let addr = if t.http.contains(':') {
                t.http.clone()
            } else {
                format!("127.0.0.1:{}", t.http)
            };
            match edgecm::top::run(&addr, t.once, std::time::Duration::from_secs(1)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("edgecm top: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(Command::Engine(e)) => engine(e),
        Some(Command::Demo(d)) => match edgecm::demo::run(d.trades, d.dir.clone(), d.keep) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edgecm demo: {e}");
                ExitCode::from(1)
            }
        },
        None => daemon(&cli),
    }
}

fn check(url: &str, state_dir: Option<&std::path::Path>) -> ExitCode {
    match Config::load(url) {
        Ok(c) => {
            print!("{}", config::summary(&c));
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            // What the manager will need at run time, known offline.
            let f = edgecm::source::preflight::preflight(&c, state_dir);
            for w in &f.warnings {
                eprintln!("warning: {w}");
            }
            for e in &f.errors {
                eprintln!("error: {e}");
            }
            if !f.errors.is_empty() {
                eprintln!(
                    "{} error{}; the manager would not run as configured",
                    f.errors.len(),
                    if f.errors.len() == 1 { "" } else { "s" }
                );
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            for w in &e.warnings {
                eprintln!("warning: {w}");
            }
            eprint!("{e}");
            let n = e.errors.len();
            eprintln!(
                "{n} error{}; the config is not valid",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
    }
}

fn queue(state_dir: &std::path::Path, config: Option<&str>) -> ExitCode {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let names = match config.map(Config::load) {
        None => Default::default(),
        Some(Ok(c)) => edgecm::daemon::names(&c, state_dir),
        Some(Err(e)) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    match edgecm::journal::inspect::report_named(state_dir, now_ms, &names) {
        Ok(r) => {
            print!("{r}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgecm queue: {e}");
            ExitCode::from(1)
        }
    }
}

fn engine(e: &cli::EngineCmd) -> ExitCode {
    use edgecm::standin::{self, Bases, Settings};
    let bases = match Bases::parse(&e.base) {
        Ok(b) => b,
        Err(m) => {
            eprintln!("edgecm engine: -base {m}");
            return ExitCode::from(2);
        }
    };
    if let Some(Err(m)) = e
        .dateformat
        .as_deref()
        .map(edgecm::source::value::DateFormat::parse)
    {
        eprintln!("edgecm engine: -dateformat: {m}");
        return ExitCode::from(2);
    }
    let settings = Settings {
        record: e.record.clone(),
        bases,
        delay: std::time::Duration::from_millis(e.delay_ms),
        fail_every: e.fail_every,
        reject_window: e.reject_window.clone(),
        dateformat: e.dateformat.clone(),
        pubsub: e.pubsub,
        tls: match (&e.tls_cert, &e.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                eprintln!("edgecm engine: -tls-cert and -tls-key go together");
                return ExitCode::from(2);
            }
        },
        require_basic: e.require_basic.clone(),
        require_bearer: e.require_bearer.clone(),
        missing_status: match e.missing_status {
            400 | 404 => e.missing_status,
            n => {
                eprintln!("edgecm engine: -missing-status {n} is not accepted; accepted: 404, 400");
                return ExitCode::from(2);
            }
        },
        refuse_loads: e.refuse_loads,
        prefix: match e.base_prefix.as_str() {
            "" => String::new(),
            p if p.starts_with('/') && !p.contains(['?', '#', ' ']) => {
                p.trim_end_matches('/').to_string()
            }
            p => {
                eprintln!("edgecm engine: -base-prefix {p:?} is not accepted; accepted: a path starting with /, e.g. /SASEventStreamProcessingServer/p1");
                return ExitCode::from(2);
            }
        },
    };
    match standin::serve(e.http, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edgecm engine: {err}");
            ExitCode::from(1)
        }
    }
}

/// TLS and engine credentials from the command line, checked against every
/// engine of the config; also the authinfo file read (for the admin API).
fn security(
    cli: &cli::Cli,
    config: &Config,
) -> Result<(edgecm::auth::Security, Option<edgecm::auth::AuthInfo>), String> {
    use edgecm::auth::{AuthInfo, EngineAuth, Security};
    let engines: Vec<&edgecm::config::Engine> = config
        .clusters
        .iter()
        .flat_map(|c| c.engines.iter().chain(c.spares.iter()))
        .collect();
    let https_logon = cli
        .saslogon_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let wants_tls = engines.iter().any(|e| e.tls) || https_logon || cli.cacert.is_some();
    let mut s = Security::default();
    #[cfg(feature = "tls")]
    if wants_tls {
        s.tls = Some(edgecm::http::client::Transport::Tls(
            edgecm::http::tls::client(cli.cacert.as_deref())?,
        ));
    }
    #[cfg(not(feature = "tls"))]
    if wants_tls {
        return Err("HTTPS (tls=\"true\", an https -saslogon-url or -cacert) needs the `tls` feature, which this edgecm was built without".into());
    }
    let users = engines.iter().filter(|e| e.auth_user.is_some()).count();
    if !cli.auth {
        if users > 0 {
            log::warn!("{users} engines have <auth-user> but -auth is not given: no credentials are sent to engines");
        }
        if cli.saslogon_url.is_some() {
            log::warn!("-saslogon-url is ignored without -auth");
        }
        return Ok((s, None));
    }
    let info = match AuthInfo::locate(cli.authinfo.as_deref()) {
        Ok(path) => Some(AuthInfo::load(&path)?),
        Err(e) if users > 0 => return Err(e),
        Err(_) => None,
    };
    if let Some(info) = &info {
        let saslogon = match &cli.saslogon_url {
            Some(u) => Some(edgecm::auth::oauth::Endpoint::parse(u, || {
                s.tls
                    .clone()
                    .ok_or_else(|| "an https -saslogon-url needs TLS".to_string())
            })?),
            None => None,
        };
        s.engines = Some(std::rc::Rc::new(EngineAuth {
            info: info.clone(),
            saslogon,
        }));
    }
    let errors: Vec<String> = engines
        .iter()
        .filter_map(|e| s.for_engine(e).err())
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\nedgecm: "));
    }
    Ok((s, info))
}

/// Without -auth the admin API answers anyone who reaches it: allowed on a
/// loopback address, elsewhere only with -insecure-admin (and a warning).
fn admin_exposure(cli: &cli::Cli, addr: std::net::SocketAddr) -> Result<(), String> {
    if cli.auth || addr.ip().is_loopback() {
        return Ok(());
    }
    if !cli.insecure_admin {
        return Err(format!(
            "-http {addr}: the admin API can change the engines; without -auth it binds to a loopback address only; accepted: -http PORT (127.0.0.1), -auth, or -insecure-admin to allow it anyway"
        ));
    }
    log::warn!(
        "-insecure-admin: the admin API on {addr} answers anyone who reaches it, without credentials"
    );
    Ok(())
}

/// Who may use the admin API on `listener`: with -auth, the authinfo entries
/// for this host and port and the -admin-token-file token; without, nobody
/// is asked, which is allowed on loopback only (or with -insecure-admin).
fn admin_auth(
    cli: &cli::Cli,
    listener: &std::net::TcpListener,
    info: Option<&edgecm::auth::AuthInfo>,
) -> Result<Option<edgecm::auth::AdminAuth>, String> {
    let bound = listener.local_addr().map_err(|e| format!("-http: {e}"))?;
    if !cli.auth {
        if !bound.ip().is_loopback() {
            if !cli.insecure_admin {
                return Err(format!(
                    "-http {bound}: the admin API can change the engines; without -auth it binds to a loopback address only; accepted: -http PORT (127.0.0.1), -auth, or -insecure-admin to allow it anyway"
                ));
            }
            log::warn!(
                "-insecure-admin: the admin API on {bound} answers anyone who reaches it, without credentials"
            );
        }
        return Ok(None);
    }
    let mut hosts = vec!["localhost".to_string(), bound.ip().to_string()];
    if bound.ip().is_unspecified() {
        hosts.push("127.0.0.1".into());
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        hosts.push(h.trim().to_string());
    }
    let a =
        edgecm::auth::AdminAuth::new(info, &hosts, bound.port(), cli.admin_token_file.as_deref())?;
    if a.is_empty() {
        return Err(format!(
            "-auth: the admin API on {bound} would accept no one; accepted: an authinfo entry `host {} port {} user U password W`, or -admin-token-file FILE",
            hosts.last().map_or("localhost", |h| h.as_str()),
            bound.port()
        ));
    }
    Ok(Some(a))
}

fn daemon(cli: &cli::Cli) -> ExitCode {
    let Some(url) = &cli.cluster_manager else {
        eprintln!("edgecm: -cluster-manager URL is required to run the manager");
        eprintln!("Run 'edgecm --help' for usage.");
        return ExitCode::from(2);
    };
    if let Some(Err(m)) = cli
        .engine_dateformat
        .as_deref()
        .map(edgecm::source::value::DateFormat::parse)
    {
        eprintln!("edgecm: -engine-dateformat {m}");
        return ExitCode::from(2);
    }
    let mut config = match Config::load(url) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    for s in &mut config.raw_sources {
        s.fs.engine_dateformat.clone_from(&cli.engine_dateformat);
    }
    for w in &config.warnings {
        log::warn!("{w}");
    }
    let outputs = [
        (
            &cli.output_projects,
            edgecm::engine::models::projects_xml as fn(&Config) -> String,
        ),
        (&cli.output_routers, edgecm::engine::models::routers_xml),
    ];
    for (path, make) in outputs {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, make(&config)) {
                eprintln!("edgecm: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
            log::info!("wrote {}", path.display());
        }
    }
    if let Some(l) = &cli.standby {
        if cli.http.is_none() {
            eprintln!(
                "edgecm: -standby needs -http: the leader reaches its standbys at their admin API"
            );
            return ExitCode::from(2);
        }
        if let Err(e) = edgecm::cli::parse_peer(l) {
            eprintln!("edgecm: -standby {e}");
            return ExitCode::from(2);
        }
        // A standby resumes where the leader stopped only if both route
        // every event alike (the seed: failover with hash policies).
        let rr: Vec<String> = config
            .esp_maps
            .iter()
            .flat_map(|m| m.maps.iter().map(move |map| (m, map)))
            .filter(|(_, map)| map.destination.policy == edgecm::config::Policy::RoundRobin)
            .map(|(m, map)| format!("esp-map '{}' map '{}'", m.name, map.name))
            .collect();
        if !rr.is_empty() {
            eprintln!(
                "edgecm: -standby: failover needs routing that every manager computes alike from the event itself, and {} {} round-robin ({}); accepted with -standby: hash-destination, multicast-destination",
                rr.join(", "),
                if rr.len() == 1 { "uses" } else { "use" },
                config.file.display()
            );
            return ExitCode::from(2);
        }
    }
    let fingerprint = edgecm::config::fingerprint::config_fingerprint(&config);
    let mut options = edgecm::daemon::Options::new(cli.state_dir.clone());
    options.ticktime_ms = cli.ticktime;
    options.retries = cli.retries;
    options.timeout_ms = cli.timeout;
    options.buffersize = cli.buffersize;
    options.inflight = cli.inflight;
    options.pipeline = cli.pipeline;
    options.journal_max = cli.state_max;
    options.commit_every = std::time::Duration::from_millis(cli.commit_ms);
    options.commit_bytes = usize::try_from(cli.commit_bytes).unwrap_or(usize::MAX);
    options.grace = std::time::Duration::from_millis(cli.grace);
    options.progress = std::time::Duration::from_secs(cli.progress_s);
    let (mut security, info) = match security(cli, &config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgecm: {e}");
            return ExitCode::from(1);
        }
    };
    let admin = match cli.http {
        Some(addr) => {
            if let Err(e) = admin_exposure(cli, addr) {
                eprintln!("edgecm: {e}");
                return ExitCode::from(2);
            }
            let listener = match std::net::TcpListener::bind(addr) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("edgecm: -http {addr}: cannot listen: {e}");
                    return ExitCode::from(1);
                }
            };
            let auth = match admin_auth(cli, &listener, info.as_ref()) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("edgecm: {e}");
                    return ExitCode::from(2);
                }
            };
            security.admin_token = auth.as_ref().and_then(|a| a.bearer().map(str::to_string));
            match edgecm::admin::serve(listener, auth) {
                Ok((bound, calls)) => {
                    log::info!(
                        "admin API on http://{bound}{} and http://{bound}{}{}",
                        edgecm::http::BASES[0],
                        edgecm::http::BASES[1],
                        if cli.auth {
                            " (credentials required)"
                        } else {
                            ""
                        }
                    );
                    Some((bound, calls))
                }
                Err(e) => {
                    eprintln!("edgecm: -http {addr}: cannot serve: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        None => None,
    };
    options.security = security;
    options.failover = edgecm::daemon::failover::FailoverOptions {
        me: admin
            .as_ref()
            .map(|(bound, _)| edgecm::daemon::failover::advertised(*bound, cli.standby.as_deref())),
        standby: cli.standby.clone(),
        fingerprint,
    };
    let admin = admin.map(|(_, calls)| calls);
    let core = match edgecm::daemon::Core::new(config, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgecm: {e}");
            return ExitCode::from(1);
        }
    };
    let signals = match async_signal::Signals::new([
        async_signal::Signal::Term,
        async_signal::Signal::Int,
        async_signal::Signal::Hup,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgecm: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let ex = async_executor::LocalExecutor::new();
    if let Some(every) = edgecm::systemd::watchdog_interval() {
        ex.spawn(async move {
            loop {
                edgecm::systemd::notify("WATCHDOG=1");
                async_io::Timer::after(every).await;
            }
        })
        .detach();
    }
    let reloads = core.inbox();
    let until = async move {
        use futures_lite::StreamExt;
        let mut signals = signals;
        while let Some(sig) = signals.next().await {
            match sig {
                Ok(async_signal::Signal::Hup) => {
                    // One asked for during a reload follows it (once).
                    let _ = reloads.send(edgecm::daemon::ToCore::Reload).await;
                }
                Ok(s) => {
                    let name = match s {
                        async_signal::Signal::Term => "SIGTERM",
                        async_signal::Signal::Int => "SIGINT",
                        _ => "a signal",
                    };
                    log::info!("{name}: stopping sources, draining for the grace period");
                    edgecm::systemd::notify("STOPPING=1");
                    return;
                }
                Err(e) => log::warn!("signal: {e}"),
            }
        }
    };
    log::info!(
        "edgecm {} running '{}': {} sources, {} engines, state in {}",
        env!("CARGO_PKG_VERSION"),
        core.config().manager,
        core.config().raw_sources.len(),
        core.config()
            .clusters
            .iter()
            .map(|c| c.engines.len())
            .sum::<usize>(),
        cli.state_dir.display()
    );
    edgecm::systemd::notify("READY=1\nSTATUS=running");
    async_io::block_on(ex.run(core.run(&ex, admin, until)));
    log::info!("stopped");
    ExitCode::SUCCESS
}
