//! The Cluster Manager configuration: the XML of `dfesp_cluster_manager`
//! (seed "Specifying the Cluster Manager Configuration File", ARCHITECTURE §3)
//! read into a validated [`Config`].
//!
//! Parse, don't validate (STYLE.md 7): XML with positions goes in, a `Config`
//! of enums, checked numbers and resolved references comes out, or every
//! problem found, each quoting `file:line:col` and what would be accepted.
//! Nothing outside this module sees XML. Relative paths (`file://` project
//! URLs, `fsname` files) are resolved against the config file's folder.
//!
//! Our two extensions: `hash-destination/@durable` (the durable hash policy)
//! and `esp-engine/@tls` (HTTPS to that engine).

pub mod fingerprint;
pub mod fs;
pub mod project;
pub mod reload;
pub mod router;
mod summary;
pub mod xml;

mod engines;
mod maps;
mod model;
mod read;

use engines::*;
pub use engines::{parse_engine, parse_engine_url};
use maps::*;
pub use model::*;
use read::*;

use std::path::{Path, PathBuf};

use roxmltree::Node;

pub use self::fs::{FsName, FsSource, FsType};
pub use self::project::{Field, FieldType, Project, Schema};
pub use self::summary::summary;
pub use self::xml::Diagnostic;
use self::xml::{tag, Reader};
use crate::event::Opcode;

/// Turns a `-cluster-manager` argument (`file://path` or a plain path) into a path.
pub fn url_to_path(url: &str) -> Result<PathBuf, String> {
    if let Some(rest) = url.strip_prefix("file://") {
        if rest.is_empty() {
            return Err(format!("{url:?} names no file"));
        }
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(format!(
            "{url:?}: scheme '{scheme}' is not supported; accepted: file://PATH or a plain path"
        ));
    }
    Ok(PathBuf::from(url))
}

/// Joins `rel` to `base` and folds `dir/..` pairs lexically, so messages show
/// `corpus/esp/x.xml` rather than `corpus/cm/../esp/x.xml`. An absolute `rel`
/// stands alone. Leading `..` components are kept.
pub fn join_clean(base: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    let joined = base.join(rel);
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// Reads a whole text file, refusing ones larger than [`crate::limits::CONFIG_FILE_MAX`].
pub fn read_text(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > crate::limits::CONFIG_FILE_MAX {
        return Err(format!(
            "file is {} bytes; the limit is {} bytes",
            meta.len(),
            crate::limits::CONFIG_FILE_MAX
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
}

impl Config {
    /// Loads the config that `url` names (`file://path` or a path) and every
    /// project it references.
    pub fn load(url: &str) -> Result<Config, ConfigErrors> {
        let path = url_to_path(url).map_err(|m| ConfigErrors {
            errors: vec![Diagnostic {
                file: PathBuf::from(url),
                line: 1,
                col: 1,
                message: m,
            }],
            warnings: vec![],
        })?;
        let text = read_text(&path).map_err(|m| ConfigErrors {
            errors: vec![Diagnostic {
                file: path.clone(),
                line: 1,
                col: 1,
                message: m,
            }],
            warnings: vec![],
        })?;
        Config::parse(&path, &text)
    }

    /// Parses config `text` as if read from `path` (projects resolve against its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let doc = xml::parse_document(path, text).map_err(|d| ConfigErrors {
            errors: vec![d],
            warnings: vec![],
        })?;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut r = Reader {
            file: path,
            doc: &doc,
            errors: &mut errors,
            warnings: &mut warnings,
        };
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = read_config(&mut r, &base_dir);
        let sort = |v: &mut Vec<Diagnostic>| {
            v.sort_by(|a, b| {
                (a.file != path, &a.file, a.line, a.col).cmp(&(
                    b.file != path,
                    &b.file,
                    b.line,
                    b.col,
                ))
            });
            v.dedup();
        };
        sort(&mut errors);
        sort(&mut warnings);
        match config {
            Some(mut c) if errors.is_empty() => {
                c.warnings = warnings;
                Ok(c)
            }
            _ => Err(ConfigErrors { errors, warnings }),
        }
    }

    pub fn raw_source(&self, name: &str) -> Option<&RawSource> {
        self.raw_sources.iter().find(|s| s.name == name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }
}
