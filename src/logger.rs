//! A small stderr logger, one line per record (one write per line, so
//! concurrent writers cannot interleave inside a line):
//!
//! - under journald (`JOURNAL_STREAM` set by systemd): the syslog priority
//!   `<N>` that journald turns into the record's level (sd-daemon(3)), then
//!   the level word and the message; journald adds the time;
//! - elsewhere: an RFC 3339 UTC time with milliseconds, the level word and
//!   the message;
//! - `-logformat json`: one JSON object per line, `time`, `level`,
//!   `target` (the module) and `message`.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// How lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<6>info: message` (journald).
    Journal,
    /// `2026-12-01T10:00:00.000Z info: message`.
    Text,
    Json,
}

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;
static FORMAT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn format() -> Format {
    match FORMAT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => Format::Journal,
        1 => Format::Text,
        _ => Format::Json,
    }
}

/// `ms` since 1970 as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = crate::clock::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60,
        ms % 1000
    )
}

/// One line for a record (the logger's format, testable).
pub fn line(format: Format, level: Level, target: &str, message: &str, now_ms: u64) -> String {
    let word = match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    };
    match format {
        Format::Journal => {
            let prio = match level {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{prio}>{word}: {message}\n")
        }
        Format::Text => format!("{} {word}: {message}\n", rfc3339(now_ms)),
        Format::Json => format!(
            "{{\"time\":{},\"level\":\"{word}\",\"target\":{},\"message\":{}}}\n",
            crate::text::json_str(&rfc3339(now_ms)),
            crate::text::json_str(target),
            crate::text::json_str(message)
        ),
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now_ms = crate::clock::wall_ms();
        let l = line(
            format(),
            record.level(),
            record.target(),
            &record.args().to_string(),
            now_ms,
        );
        let _ = std::io::stderr().lock().write_all(l.as_bytes());
    }

    fn flush(&self) {}
}

/// The format for this process: `json` if asked, else journald's when
/// stderr goes to the journal (`JOURNAL_STREAM`), else text with times.
pub fn choose(json: bool) -> Format {
    if json {
        Format::Json
    } else if std::env::var_os("JOURNAL_STREAM").is_some() {
        Format::Journal
    } else {
        Format::Text
    }
}

/// Installs the logger once; later calls only change the level and format.
pub fn init(level: LevelFilter, format: Format) {
    let _ = log::set_logger(&LOGGER);
    FORMAT.store(
        match format {
            Format::Journal => 0,
            Format::Text => 1,
            Format::Json => 2,
        },
        std::sync::atomic::Ordering::Relaxed,
    );
    log::set_max_level(level);
}

/// A log level by name (`-loglevel`, and the admin API's `loggers`, which
/// also takes ESP's `fatal`, as error).
pub fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(log::LevelFilter::Off),
        "error" | "fatal" => Ok(log::LevelFilter::Error),
        "warn" | "warning" => Ok(log::LevelFilter::Warn),
        "info" => Ok(log::LevelFilter::Info),
        "debug" => Ok(log::LevelFilter::Debug),
        "trace" => Ok(log::LevelFilter::Trace),
        _ => Err(format!(
            "{s:?} is not accepted; accepted: off, error, warn, info, debug, trace"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        let ms = 1_764_583_200_123; // 2025-12-01T10:00:00.123Z
        assert_eq!(rfc3339(ms), "2025-12-01T10:00:00.123Z");
        assert_eq!(
            line(Format::Journal, Level::Warn, "t", "m", ms),
            "<4>warn: m\n"
        );
        assert_eq!(
            line(Format::Text, Level::Info, "t", "m", ms),
            "2025-12-01T10:00:00.123Z info: m\n"
        );
        assert_eq!(
            line(Format::Json, Level::Error, "edgecm::daemon", "a \"quote\"", ms),
            "{\"time\":\"2025-12-01T10:00:00.123Z\",\"level\":\"error\",\"target\":\"edgecm::daemon\",\"message\":\"a \\\"quote\\\"\"}\n"
        );
    }
}
