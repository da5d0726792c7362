//! A small stderr logger in a journald-friendly form: one line per record,
//! prefixed with the syslog priority `<N>` that journald turns into the
//! record's level (sd-daemon(3)), then the level word and the message.
//! No timestamps: journald adds its own.

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (prio, word) = match record.level() {
            Level::Error => (3, "error"),
            Level::Warn => (4, "warn"),
            Level::Info => (6, "info"),
            Level::Debug => (7, "debug"),
            Level::Trace => (7, "trace"),
        };
        // One write per line so concurrent writers cannot interleave inside a line.
        let line = format!("<{prio}>{word}: {}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
