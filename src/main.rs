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
    edgecm::logger::init(cli.loglevel);
    match &cli.command {
        Some(Command::Check(c)) => check(&c.cluster_manager),
        Some(Command::Queue(q)) => queue(&q.state_dir),
        Some(Command::Engine(e)) => engine(e),
        None => daemon(&cli),
    }
}

fn check(url: &str) -> ExitCode {
    match Config::load(url) {
        Ok(c) => {
            print!("{}", config::summary(&c));
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            for w in &e.warnings {
                eprintln!("warning: {w}");
            }
            eprint!("{e}");
            eprintln!("{} error(s); the config is not valid", e.errors.len());
            ExitCode::from(1)
        }
    }
}

fn queue(state_dir: &std::path::Path) -> ExitCode {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    match edgecm::journal::inspect::report(state_dir, now_ms) {
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
    use edgecm::engine::standin::{self, Bases, Settings};
    let bases = match Bases::parse(&e.base) {
        Ok(b) => b,
        Err(m) => {
            eprintln!("edgecm engine: -base {m}");
            return ExitCode::from(2);
        }
    };
    if let Err(m) = edgecm::source::value::DateFormat::parse(&e.dateformat) {
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
    };
    match standin::serve(e.http, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edgecm engine: {err}");
            ExitCode::from(1)
        }
    }
}

fn daemon(cli: &cli::Cli) -> ExitCode {
    let Some(url) = &cli.cluster_manager else {
        eprintln!("edgecm: -cluster-manager URL is required to run the manager");
        eprintln!("Run 'edgecm --help' for usage.");
        return ExitCode::from(2);
    };
    if cli.http.is_none() {
        eprintln!("edgecm: -http PORT is required to run the manager");
        return ExitCode::from(2);
    }
    match Config::load(url) {
        Ok(c) => {
            for w in &c.warnings {
                log::warn!("{w}");
            }
            eprintln!(
                "edgecm: config {} is valid, but the manager itself (sources, journal, engines) is not implemented yet; \
                 use 'edgecm check' to validate configs",
                c.file.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(1)
        }
    }
}
