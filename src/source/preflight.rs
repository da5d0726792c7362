//! What `edgecm check` verifies beyond the config's own shape: what the
//! manager will need at run time and can know offline. Each finding names
//! the raw-source or group and what would be accepted.

use crate::config::fs::FsName;
use crate::config::{AdapterState, Config};
use std::path::Path;

/// Errors (the manager would fail or wait forever) and warnings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks `config` against this machine; `state_dir`, when given, must be
/// writable.
pub fn preflight(config: &Config, state_dir: Option<&Path>) -> Findings {
    let mut f = Findings::default();
    for s in &config.raw_sources {
        if let FsName::File(path) = &s.fs.fsname {
            match std::fs::File::open(path) {
                Ok(_) => {}
                Err(e) if s.fs.growinginputfile && e.kind() == std::io::ErrorKind::NotFound => {
                    f.warnings.push(format!(
                        "raw-source '{}': fsname {} does not exist yet (growinginputfile: it is read once it appears)",
                        s.name,
                        path.display()
                    ))
                }
                Err(e) => f.errors.push(format!(
                    "raw-source '{}': fsname {} cannot be read: {e}",
                    s.name,
                    path.display()
                )),
            }
        }
        if let Some(d) = &s.fs.dateformat {
            if let Err(e) = super::value::DateFormat::parse(d) {
                f.errors.push(format!(
                    "raw-source '{}': property 'dateformat': {e}",
                    s.name
                ));
            }
        }
    }
    for m in &config.esp_maps {
        let o = &m.orchestration;
        for &(from, to) in &o.edges {
            for e in &o.groups[from].entries {
                if e.state != AdapterState::Finished {
                    continue;
                }
                let raw = &config.raw_sources[e.source];
                let never = match &raw.fs.fsname {
                    FsName::Connect { .. } | FsName::Listen { .. } => {
                        Some("a socket source never finishes")
                    }
                    FsName::File(_) if raw.fs.growinginputfile => {
                        Some("a growinginputfile source never finishes")
                    }
                    FsName::File(_) => None,
                };
                if let Some(why) = never {
                    f.errors.push(format!(
                        "esp-map '{}': group '{}' waits for '{}' (state='finished') in group '{}', and {why}; accepted: state='started' for it",
                        m.name, o.groups[to].name, raw.name, o.groups[from].name
                    ));
                }
            }
        }
    }
    if let Some(dir) = state_dir {
        let probe = dir.join(".edgecm-check");
        let r = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&probe, b"check"))
            .and_then(|()| std::fs::remove_file(&probe));
        if let Err(e) = r {
            f.errors
                .push(format!("-state-dir {}: not writable: {e}", dir.display()));
        }
    }
    f
}
