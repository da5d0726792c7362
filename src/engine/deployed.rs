//! Which project this manager loaded on which engine, and in which version:
//! what lets a restarted manager leave a running project alone (loading a
//! project over a running one empties its windows: joins, aggregates,
//! retained reference data) and reload only a project the config changed.
//!
//! `{state-dir}/deployed` holds one line per engine and project:
//! `ENGINE<TAB>PROJECT<TAB>FINGERPRINT` (the fingerprint of the XML that was
//! loaded, 16 hex digits), rewritten whole (write-new, fsync, rename) when a
//! load succeeds. ENGINE is `name@host:port`, so an engine whose address
//! changed counts as a new one.
//!
//! The decision, made per engine and project with the engine's own list
//! (`GET projects`):
//!
//! | the engine lists it | this file says | done |
//! |---|---|---|
//! | no | anything | load |
//! | yes | the same fingerprint | nothing |
//! | yes | another fingerprint | reload (the config changed), logged |
//! | yes | nothing | adopt: nothing loaded, fingerprint recorded |
//!
//! The last row covers a standby that took over (the leader loaded it) and
//! a state dir that was wiped; its cost is that a project changed while
//! nothing recorded it is not reloaded until it changes again.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "deployed";

/// What to do about one project on one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Load,
    Keep,
    /// The engine runs another version of it.
    Reload,
    /// The engine runs it and nothing says which version: keep it.
    Adopt,
}

/// The decision table of the module docs.
pub fn plan(listed: bool, recorded: Option<u64>, fingerprint: u64) -> Plan {
    match (listed, recorded) {
        (false, _) => Plan::Load,
        (true, Some(f)) if f == fingerprint => Plan::Keep,
        (true, Some(_)) => Plan::Reload,
        (true, None) => Plan::Adopt,
    }
}

/// The loads this manager made, as kept in `{state-dir}/deployed`.
#[derive(Debug, Default)]
pub struct Deployed {
    /// None: kept in memory only (tests, benchmarks).
    path: Option<PathBuf>,
    entries: BTreeMap<(String, String), u64>,
}

impl Deployed {
    /// Reads `dir/deployed`; a missing file is an empty record, a damaged
    /// line is skipped with a warning (its project is then adopted or loaded).
    pub fn open(dir: &Path) -> Deployed {
        let path = dir.join(FILE_NAME);
        let mut entries = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let f: Vec<&str> = line.split('\t').collect();
                    match (f.as_slice(), f.get(2).map(|h| u64::from_str_radix(h, 16))) {
                        ([engine, project, _], Some(Ok(fp))) => {
                            entries.insert((engine.to_string(), project.to_string()), fp);
                        }
                        _ => log::warn!(
                            "{}:{}: not ENGINE<TAB>PROJECT<TAB>FINGERPRINT; line ignored",
                            path.display(),
                            n + 1
                        ),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot read {}: {e}; projects running on engines are adopted",
                path.display()
            ),
        }
        Deployed {
            path: Some(path),
            entries,
        }
    }

    pub fn get(&self, engine: &str, project: &str) -> Option<u64> {
        self.entries
            .get(&(engine.to_string(), project.to_string()))
            .copied()
    }

    /// Records a load (or an adoption) and writes the file.
    pub fn set(&mut self, engine: &str, project: &str, fingerprint: u64) -> io::Result<()> {
        let old = self
            .entries
            .insert((engine.to_string(), project.to_string()), fingerprint);
        if old == Some(fingerprint) {
            return Ok(());
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut text = String::new();
        for ((e, p), fp) in &self.entries {
            text.push_str(&format!("{e}\t{p}\t{fp:016x}\n"));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::journal::storage::replace_file(dir, FILE_NAME, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table() {
        assert_eq!(plan(false, None, 7), Plan::Load);
        assert_eq!(plan(false, Some(7), 7), Plan::Load);
        assert_eq!(plan(true, Some(7), 7), Plan::Keep);
        assert_eq!(plan(true, Some(6), 7), Plan::Reload);
        assert_eq!(plan(true, None, 7), Plan::Adopt);
    }

    #[test]
    fn kept_across_opens_and_damaged_lines_skipped() {
        let dir = std::env::temp_dir().join(format!("edgecm-deployed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = Deployed::open(&dir);
        d.set("esp1@127.0.0.1:1", "p", 0xabc).unwrap();
        d.set("esp2@127.0.0.1:2", "p", 0xdef).unwrap();
        let mut text = std::fs::read_to_string(dir.join(FILE_NAME)).unwrap();
        text.push_str("garbage\n");
        std::fs::write(dir.join(FILE_NAME), text).unwrap();
        let d = Deployed::open(&dir);
        assert_eq!(d.get("esp1@127.0.0.1:1", "p"), Some(0xabc));
        assert_eq!(d.get("esp2@127.0.0.1:2", "p"), Some(0xdef));
        assert_eq!(d.get("esp3@127.0.0.1:3", "p"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
