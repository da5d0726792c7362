//! `{state-dir}/engines-added`: the engines added over the admin API
//! (`PUT routerEngines/{map}/{engine}`), which the config file does not
//! list, so that a restart or a reload keeps them. One line each:
//! `CLUSTER<TAB>SLOT<TAB><esp-engine .../>`, the body as the PUT gave it
//! (on one line), so it is read back by the same parser. Rewritten whole
//! (write-new, fsync, rename, fsync the folder) when one is added or
//! removed. The slot keeps the engine's queued events its own across a
//! restart. A damaged line is skipped with a warning naming it.

use crate::config::Engine;
use std::io;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "engines-added";

/// One engine added over the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The cluster's name in the config.
    pub cluster: String,
    /// The slot it had in that cluster.
    pub slot: u8,
    pub engine: Engine,
    /// The `<esp-engine>` element it was added with, on one line.
    body: String,
}

/// The engines added over the admin API, as kept in the state dir.
pub struct AddedEngines {
    /// None: kept in memory only (tests, benchmarks).
    dir: Option<PathBuf>,
    entries: Vec<Added>,
}

impl AddedEngines {
    /// Reads `dir/engines-added`; missing is empty.
    pub fn open(dir: &Path) -> AddedEngines {
        let path = dir.join(FILE_NAME);
        let mut entries = Vec::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let origin = format!("{}:{}", path.display(), n + 1);
                    match parse_line(&origin, line) {
                        Ok(a) => entries.push(a),
                        Err(e) => log::warn!("{e}; line ignored (that engine is not added again)"),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot read {}: {e}; engines added over the admin API before are not added again",
                path.display()
            ),
        }
        AddedEngines {
            dir: Some(dir.to_path_buf()),
            entries,
        }
    }

    pub fn entries(&self) -> &[Added] {
        &self.entries
    }

    /// Records an engine added to `cluster` at `slot` with `body`.
    pub fn add(&mut self, cluster: &str, slot: u8, engine: &Engine, body: &str) -> io::Result<()> {
        self.entries
            .retain(|a| !(a.cluster == cluster && a.engine.name == engine.name));
        self.entries.push(Added {
            cluster: cluster.to_string(),
            slot,
            engine: engine.clone(),
            body: one_line(body),
        });
        self.write()
    }

    /// Forgets engine `name` of `cluster` (removed); false if not listed.
    pub fn remove(&mut self, cluster: &str, name: &str) -> io::Result<bool> {
        let before = self.entries.len();
        self.entries
            .retain(|a| !(a.cluster == cluster && a.engine.name == name));
        if self.entries.len() == before {
            return Ok(false);
        }
        self.write().map(|()| true)
    }

    fn write(&self) -> io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut text = String::new();
        for a in &self.entries {
            text.push_str(&format!("{}\t{}\t{}\n", a.cluster, a.slot, a.body));
        }
        crate::journal::storage::replace_file(dir, FILE_NAME, text.as_bytes())
    }
}

/// The body on one line (a newline inside a tag or a value is whitespace
/// to XML: attribute values normalise it to a space).
fn one_line(body: &str) -> String {
    body.trim().replace(['\r', '\n', '\t'], " ")
}

fn parse_line(origin: &str, line: &str) -> Result<Added, String> {
    let mut f = line.splitn(3, '\t');
    let (Some(cluster), Some(slot), Some(body)) = (f.next(), f.next(), f.next()) else {
        return Err(format!(
            "{origin}: not CLUSTER<TAB>SLOT<TAB><esp-engine .../>"
        ));
    };
    let slot = slot.parse::<u8>().map_err(|_| {
        format!("{origin}: slot {slot:?} is not accepted; accepted: a number from 0 to 255")
    })?;
    let engine = crate::config::parse_engine(origin, body).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        lines.join("; ")
    })?;
    Ok(Added {
        cluster: cluster.to_string(),
        slot,
        engine,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgecm-added-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const BODY: &str = "<esp-engine name='x'\n  host='127.0.0.1' port='41009' ha_port='41007'/>";

    #[test]
    fn kept_across_opens_and_forgotten_when_removed() {
        let d = dir("keep");
        let e = crate::config::parse_engine("test", BODY).unwrap();
        let mut a = AddedEngines::open(&d);
        assert!(a.entries().is_empty());
        a.add("c1", 3, &e, BODY).unwrap();
        let again = AddedEngines::open(&d);
        assert_eq!(again.entries().len(), 1);
        assert_eq!(again.entries()[0].engine, e);
        assert_eq!(
            (again.entries()[0].cluster.as_str(), again.entries()[0].slot),
            ("c1", 3)
        );
        let mut again = again;
        assert!(again.remove("c1", "x").unwrap());
        assert!(!again.remove("c1", "x").unwrap());
        assert!(AddedEngines::open(&d).entries().is_empty());
    }

    #[test]
    fn a_damaged_line_is_skipped_and_the_others_kept() {
        let d = dir("damaged");
        std::fs::write(
            d.join(FILE_NAME),
            "c1\t3\t<esp-engine name='x' host='h' port='1' ha_port='2'/>\nc1\tnine\t<esp-engine/>\nc1\t4\t<esp-engine name='y' host='h' port='1' ha_port='x'/>\n",
        )
        .unwrap();
        let a = AddedEngines::open(&d);
        let names: Vec<&str> = a.entries().iter().map(|a| a.engine.name.as_str()).collect();
        assert_eq!(names, ["x"]);
        let err = parse_line("f:2", "c1\tnine\t<esp-engine/>").unwrap_err();
        assert!(err.contains("f:2: slot \"nine\""), "{err}");
    }
}
