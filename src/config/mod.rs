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
pub mod preflight;
pub mod project;
pub mod reload;
pub mod router;
mod summary;
pub mod xml;

use std::path::{Path, PathBuf};

use roxmltree::Node;

pub use self::fs::{FsName, FsSource, FsType};
pub use self::project::{Field, FieldType, Project, Schema};
pub use self::summary::summary;
pub use self::xml::Diagnostic;
use self::xml::{tag, Reader};
use crate::event::Opcode;

/// A validated Cluster Manager configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The config file as given on the command line.
    pub file: PathBuf,
    /// `esp-cluster-manager/@name`.
    pub manager: String,
    pub projects: Vec<ProjectRef>,
    pub raw_sources: Vec<RawSource>,
    pub esp_maps: Vec<EspMap>,
    pub clusters: Vec<Cluster>,
    /// Findings that do not stop the manager (e.g. a target window with its own publisher).
    pub warnings: Vec<Diagnostic>,
}

/// `projects/project[@type=reference]`: a project deployed to the engines.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRef {
    pub name: String,
    /// `project-url` as written.
    pub url: String,
    /// The file it names, resolved.
    pub path: PathBuf,
    /// `project-name`: which project of the file, and its name on the engines.
    pub project: Project,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawSource {
    pub name: String,
    pub fs: FsSource,
    /// The properties as written (`-output-projects` gives them to ESP's
    /// own fs connector).
    pub properties: Vec<(String, String)>,
}

/// `esp-maps/esp-map`: routes raw-sources into one project on one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct EspMap {
    pub name: String,
    /// Index into [`Config::clusters`].
    pub cluster: usize,
    /// Index into [`Config::projects`].
    pub model: usize,
    pub maps: Vec<Map>,
    pub orchestration: Orchestration,
}

impl EspMap {
    /// Whether `map` (one of this esp-map's) carries reference data: it
    /// multicasts, or its source is in an orchestration group that others
    /// wait for.
    pub fn is_reference(&self, map: &Map) -> bool {
        if map.destination.policy == Policy::Multicast {
            return true;
        }
        let o = &self.orchestration;
        o.groups.iter().enumerate().any(|(g, group)| {
            group.entries.iter().any(|e| e.source == map.source) && o.edges.iter().any(|e| e.0 == g)
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub name: String,
    /// Index into [`Config::raw_sources`].
    pub source: usize,
    pub destination: Destination,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    Multicast,
    RoundRobin,
    /// `hash-destination`: `fields` are indices into the target schema;
    /// `durable` selects the ring (our extension `@durable="true"`).
    Hash {
        fields: Vec<usize>,
        durable: bool,
    },
}

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Multicast => "multicast",
            Policy::RoundRobin => "round-robin",
            Policy::Hash { durable: false, .. } => "hash",
            Policy::Hash { durable: true, .. } => "durable hash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTarget {
    pub project: String,
    pub contquery: String,
    pub window: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub name: String,
    pub policy: Policy,
    /// Overrides each event's opcode when set.
    pub opcode: Option<Opcode>,
    pub target: PublishTarget,
    /// The target window's schema: how events get field names and types.
    pub schema: Schema,
}

impl Destination {
    /// The opcode an event is published with: the destination's when it sets
    /// one (seed `opcode='insert'`), else the event's own.
    pub fn opcode_for(&self, event: Opcode) -> Opcode {
        self.opcode.unwrap_or(event)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterState {
    /// The source opened its input.
    Started,
    /// The source reached the end of its input.
    Finished,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdapterEntry {
    /// Index into [`Config::raw_sources`].
    pub source: usize,
    pub state: AdapterState,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdapterGroup {
    pub name: String,
    pub entries: Vec<AdapterEntry>,
}

/// Adapter groups and the order they start in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Orchestration {
    pub groups: Vec<AdapterGroup>,
    /// `(source group, target group)` indices into `groups`.
    pub edges: Vec<(usize, usize)>,
    /// Groups by start wave: wave 0 has no incoming edge; wave k waits for
    /// its source groups, all in earlier waves.
    pub waves: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub name: String,
    pub host: String,
    /// The binary pub/sub port: kept for `-output-routers`, not used to publish.
    pub port: u16,
    /// The HTTP (REST) port: where projects are deployed and events injected.
    pub ha_port: u16,
    /// Our extension: HTTPS to this engine.
    pub tls: bool,
    pub auth_user: Option<String>,
    /// Our extension (`url`): a path the REST bases sit under, as behind a
    /// Kubernetes ingress (`/SASEventStreamProcessingServer/p1`); empty: none.
    pub prefix: String,
    /// Our extension (`connect='ADDR:PORT'`): where to connect, when it is
    /// not where `host` resolves (like `curl --resolve`); `host` is still
    /// what `Host` and TLS (SNI and the certificate check) name.
    pub connect: Option<(String, u16)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub redundancy: u32,
    pub engines: Vec<Engine>,
    pub spares: Vec<Engine>,
}

/// Everything wrong with a config, and the warnings found on the way.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

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

/// Reads the whole document; `None` when a part is too broken to go on
/// (the errors say why).
fn read_config<'a, 'i>(r: &mut Reader<'a, 'i>, base_dir: &Path) -> Option<Config> {
    let root = r.doc.root_element();
    let managers = match tag(root) {
        "engine" => {
            r.check_attrs(root, &["name", "port"]);
            let kids = r.children(root, &["esp-cluster-managers", "description"]);
            r.one_child(root, &kids, "esp-cluster-managers")?
        }
        "esp-cluster-managers" => root,
        other => {
            r.error(
                root,
                format!("root element is <{other}>; accepted: <engine> holding <esp-cluster-managers>, or <esp-cluster-managers>"),
            );
            return None;
        }
    };
    r.check_attrs(managers, &[]);
    let kids = r.children(managers, &["esp-cluster-manager"]);
    if kids.len() > 1 {
        r.error(
            kids[1],
            "<esp-cluster-managers> holds only one <esp-cluster-manager> (as dfesp_cluster_manager); run one edgecm per manager".to_string(),
        );
        return None;
    }
    let m = r.one_child(managers, &kids, "esp-cluster-manager")?;
    r.check_attrs(m, &["name"]);
    let manager = r.req_attr(m, "name").unwrap_or("").to_string();
    let kids = r.children(m, &["projects", "raw-sources", "esp-maps", "esp-clusters"]);

    let projects = r
        .one_child(m, &kids, "projects")
        .map(|n| read_projects(r, n, base_dir))
        .unwrap_or_default();
    let raw_sources = r
        .one_child(m, &kids, "raw-sources")
        .map(|n| read_raw_sources(r, n, base_dir))
        .unwrap_or_default();
    let clusters = r
        .one_child(m, &kids, "esp-clusters")
        .map(|n| read_clusters(r, n))
        .unwrap_or_default();
    let names = Names {
        projects: &projects,
        raw_sources: &raw_sources,
        clusters: &clusters,
    };
    let esp_maps = r
        .one_child(m, &kids, "esp-maps")
        .map(|n| read_esp_maps(r, n, &names))
        .unwrap_or_default();

    Some(Config {
        file: r.file.to_path_buf(),
        manager,
        projects: projects.into_iter().filter_map(|s| s.1).collect(),
        raw_sources: raw_sources.into_iter().filter_map(|s| s.1).collect(),
        esp_maps,
        clusters: clusters.into_iter().filter_map(|s| s.1).collect(),
        warnings: Vec::new(),
    })
}

/// What maps may reference. Each list keeps a slot per declared element
/// (`None` when it failed to read), so a broken element is not reported
/// again as "not defined" wherever it is used.
struct Names<'c> {
    projects: &'c [Slot<ProjectRef>],
    raw_sources: &'c [Slot<RawSource>],
    clusters: &'c [Slot<Cluster>],
}

/// A declared element: its name, and its value when it read without errors.
type Slot<T> = (String, Option<T>);

fn slot_names<T>(slots: &[Slot<T>]) -> impl Iterator<Item = &str> + Clone {
    slots.iter().map(|(n, _)| n.as_str())
}

/// Reports `name` if an earlier sibling already used it.
fn check_unique(
    r: &mut Reader,
    seen: &mut Vec<String>,
    node: Node,
    what: &str,
    name: &str,
) -> bool {
    if seen.iter().any(|s| s == name) {
        r.attr_error(
            node,
            "name",
            format!("{what} name '{name}' is already used; names must be unique"),
        );
        false
    } else {
        seen.push(name.to_string());
        true
    }
}

fn read_projects(r: &mut Reader, node: Node, base_dir: &Path) -> Vec<Slot<ProjectRef>> {
    r.check_attrs(node, &[]);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in r.children(node, &["project"]) {
        r.check_attrs(p, &["name", "type"]);
        let name = r.req_attr(p, "name");
        if let Some(t) = p.attribute("type") {
            if t != "reference" {
                r.attr_error(
                    p,
                    "type",
                    format!("project type {t:?} is not supported; accepted: reference"),
                );
            }
        }
        let kids = r.children(p, &["project-url", "project-name"]);
        let url = r
            .one_child(p, &kids, "project-url")
            .and_then(|n| r.leaf_text(n).map(|t| (n, t)));
        let pname = r
            .one_child(p, &kids, "project-name")
            .and_then(|n| r.leaf_text(n).map(|t| (n, t)));
        let Some(name) = name else { continue };
        if !check_unique(r, &mut seen, p, "project", name) {
            continue;
        }
        let (Some((url_node, url)), Some((pname_node, pname))) = (url, pname) else {
            out.push((name.to_string(), None));
            continue;
        };
        let Some(rel) = url.strip_prefix("file://") else {
            r.error(url_node, format!("project-url {url:?} is not supported; accepted: file://PATH (relative to the config file's folder)"));
            out.push((name.to_string(), None));
            continue;
        };
        let path = join_clean(base_dir, rel);
        let file = match read_text(&path) {
            Ok(text) => project::parse(&path, &text),
            Err(m) => {
                r.error(url_node, format!("project file {}: {m}", path.display()));
                out.push((name.to_string(), None));
                continue;
            }
        };
        let file = match file {
            Ok(f) => f,
            Err(d) => {
                r.errors.push(d);
                out.push((name.to_string(), None));
                continue;
            }
        };
        match file.project(&pname) {
            Some(proj) => out.push((
                name.to_string(),
                Some(ProjectRef {
                    name: name.to_string(),
                    url: url.clone(),
                    path: path.clone(),
                    project: proj.clone(),
                }),
            )),
            None => {
                let have: Vec<&str> = file.projects.iter().map(|p| p.name.as_str()).collect();
                r.error(
                    pname_node,
                    format!(
                        "project '{pname}' is not in {}; it holds: {}",
                        path.display(),
                        xml::list_or_none(&have)
                    ),
                );
                out.push((name.to_string(), None));
            }
        }
    }
    out
}

fn read_raw_sources(r: &mut Reader, node: Node, base_dir: &Path) -> Vec<Slot<RawSource>> {
    r.check_attrs(node, &[]);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for s in r.children(node, &["raw-source"]) {
        r.check_attrs(s, &["name", "class"]);
        let name = r.req_attr(s, "name");
        let class = r.req_attr(s, "class");
        let kids = r.children(s, &["properties"]);
        let props_node = r.one_child(s, &kids, "properties");
        let Some(name) = name else { continue };
        if !check_unique(r, &mut seen, s, "raw-source", name) {
            continue;
        }
        match class {
            Some("fs") => {}
            Some(c) => {
                r.attr_error(
                    s,
                    "class",
                    format!("raw-source class '{c}' is not supported; accepted: fs"),
                );
                out.push((name.to_string(), None));
                continue;
            }
            None => {
                out.push((name.to_string(), None));
                continue;
            }
        }
        let Some(props_node) = props_node else {
            out.push((name.to_string(), None));
            continue;
        };
        r.check_attrs(props_node, &[]);
        let mut props = Vec::new();
        let mut prop_nodes = Vec::new();
        for p in r.children(props_node, &["property"]) {
            r.check_attrs(p, &["name"]);
            let Some(pname) = r.req_attr(p, "name") else {
                continue;
            };
            let mut value = String::new();
            for c in p.children() {
                if c.is_element() {
                    r.error(
                        c,
                        format!(
                            "<property name='{pname}'> holds text only, not <{}>",
                            tag(c)
                        ),
                    );
                } else if c.is_text() {
                    value.push_str(c.text().unwrap_or(""));
                }
            }
            props.push((pname.to_string(), value.trim().to_string()));
            prop_nodes.push(p);
        }
        match fs::from_properties(&props, base_dir) {
            Ok(fs) => out.push((
                name.to_string(),
                Some(RawSource {
                    name: name.to_string(),
                    fs,
                    properties: props.clone(),
                }),
            )),
            Err(errs) => {
                for (i, m) in errs {
                    let at = i.map(|i| prop_nodes[i]).unwrap_or(s);
                    r.error(at, format!("raw-source '{name}': {m}"));
                }
                out.push((name.to_string(), None));
            }
        }
    }
    out
}

fn read_clusters(r: &mut Reader, node: Node) -> Vec<Slot<Cluster>> {
    r.check_attrs(node, &[]);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for c in r.children(node, &["esp-cluster"]) {
        r.check_attrs(c, &["name", "redundancy"]);
        let name = r.req_attr(c, "name");
        let kids = r.children(c, &["esp-engines", "spare-esp-engines"]);
        let engines_node = r.one_child(c, &kids, "esp-engines");
        let spare_nodes: Vec<Node> = kids
            .iter()
            .copied()
            .filter(|k| tag(*k) == "spare-esp-engines")
            .collect();
        if spare_nodes.len() > 1 {
            r.error(
                spare_nodes[1],
                "<spare-esp-engines> given twice in <esp-cluster>; give it once".to_string(),
            );
        }
        let mut engine_names = Vec::new();
        let mut ok = true;
        let mut engines = Vec::new();
        if let Some(en) = engines_node {
            r.check_attrs(en, &[]);
            for e in r.children(en, &["esp-engine"]) {
                match read_engine(r, e, &mut engine_names) {
                    Some(e) => engines.push(e),
                    None => ok = false,
                }
            }
            if engines.len() > crate::limits::ENGINES_MAX {
                r.error(
                    en,
                    format!(
                        "<esp-engines> lists {} engines; edgecm routes to at most {}",
                        engines.len(),
                        crate::limits::ENGINES_MAX
                    ),
                );
                ok = false;
            }
            if engines.is_empty() && ok {
                r.error(
                    en,
                    "<esp-engines> lists no <esp-engine>; a cluster needs at least one".to_string(),
                );
                ok = false;
            }
        }
        let mut spares = Vec::new();
        if let Some(sn) = spare_nodes.first() {
            r.check_attrs(*sn, &[]);
            for e in r.children(*sn, &["esp-engine"]) {
                match read_engine(r, e, &mut engine_names) {
                    Some(e) => spares.push(e),
                    None => ok = false,
                }
            }
        }
        let redundancy = match c.attribute("redundancy") {
            None => 1,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 && (engines.is_empty() || n as usize <= engines.len()) => n,
                _ => {
                    r.attr_error(
                        c,
                        "redundancy",
                        format!(
                            "redundancy {v:?} is not accepted; accepted: a whole number from 1 to {} (the number of engines)",
                            engines.len().max(1)
                        ),
                    );
                    ok = false;
                    1
                }
            },
        };
        let Some(name) = name else { continue };
        if !check_unique(r, &mut seen, c, "esp-cluster", name) {
            continue;
        }
        let cluster = (ok && engines_node.is_some()).then(|| Cluster {
            name: name.to_string(),
            redundancy,
            engines,
            spares,
        });
        out.push((name.to_string(), cluster));
    }
    out
}

/// An `<esp-engine name host port ha_port/>` element alone, as the admin API
/// receives it; `origin` names it in the errors (`origin:line:col: ...`).
pub fn parse_engine(origin: &str, text: &str) -> Result<Engine, Vec<Diagnostic>> {
    let file = Path::new(origin);
    let doc = xml::parse_document(file, text).map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut r = Reader {
        file,
        doc: &doc,
        errors: &mut errors,
        warnings: &mut warnings,
    };
    let root = doc.root_element();
    let engine = if root.tag_name().name() == "esp-engine" {
        read_engine(&mut r, root, &mut Vec::new())
    } else {
        r.error(
            root,
            format!(
                "<{}> is not accepted here; accepted: <esp-engine name=\"..\" host=\"..\" port=\"..\" ha_port=\"..\"/>",
                root.tag_name().name()
            ),
        );
        None
    };
    match engine {
        Some(e) if errors.is_empty() => Ok(e),
        _ => Err(errors),
    }
}

fn read_engine(r: &mut Reader, e: Node, names: &mut Vec<String>) -> Option<Engine> {
    r.check_attrs(
        e,
        &["name", "host", "port", "ha_port", "tls", "url", "connect"],
    );
    let name = r.req_attr(e, "name");
    // `url` (ours) stands for host, ha_port, tls and a path prefix.
    let (host, ha_port, tls, prefix) = match e.attribute("url") {
        Some(url) => {
            for a in ["host", "ha_port", "tls"] {
                if e.attribute(a).is_some() {
                    r.attr_error(
                        e,
                        a,
                        format!("{a} and url name the same thing; give one of them"),
                    );
                }
            }
            match parse_engine_url(url) {
                Ok((host, port, tls, prefix)) => (Some(host), Some(port), tls, prefix),
                Err(m) => {
                    r.attr_error(e, "url", m);
                    (None, None, false, String::new())
                }
            }
        }
        None => (
            r.req_attr(e, "host").map(str::to_string),
            read_port(r, e, "ha_port"),
            r.bool_attr(e, "tls", false),
            String::new(),
        ),
    };
    // The pub/sub port is only reported (`-output-routers`); behind an
    // ingress it is often not reachable at all, so optional with `url`.
    let port = match (e.attribute("url"), e.attribute("port")) {
        (Some(_), None) => Some(0),
        _ => read_port(r, e, "port"),
    };
    let connect = match e.attribute("connect") {
        None => None,
        Some(c) => {
            match crate::http::resolve::parse_peer(c) {
                Ok((h, p)) => Some((
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    p,
                )),
                Err(_) => {
                    r.attr_error(
                    e,
                    "connect",
                    format!("connect {c:?} is not accepted; accepted: HOST:PORT, e.g. 127.0.0.1:8443"),
                );
                    return None;
                }
            }
        }
    };
    let kids = r.children(e, &["auth-user"]);
    if kids.len() > 1 {
        r.error(
            kids[1],
            "<auth-user> given twice in <esp-engine>; give it once".to_string(),
        );
    }
    let auth_user = kids.first().and_then(|n| r.leaf_text(*n));
    let name = name?;
    if name == "esp_local" {
        r.attr_error(
            e,
            "name",
            "engine name 'esp_local' is reserved by ESP; choose another".to_string(),
        );
        return None;
    }
    if names.iter().any(|n| n == name) {
        r.attr_error(
            e,
            "name",
            format!("engine name '{name}' is already used in this cluster (engines and spares share one namespace)"),
        );
        return None;
    }
    names.push(name.to_string());
    Some(Engine {
        name: name.to_string(),
        host: host?,
        port: port?,
        ha_port: ha_port?,
        tls,
        auth_user,
        prefix,
        connect,
    })
}

/// `http(s)://HOST[:PORT][/PATH]` of an `<esp-engine url>`: (host, port,
/// tls, path prefix). A path that ends in a REST base
/// (`/eventStreamProcessing/v1`, `/SASESP`) gives the prefix before it.
pub fn parse_engine_url(url: &str) -> Result<(String, u16, bool, String), String> {
    let accepted = "accepted: http(s)://HOST[:PORT][/PATH], e.g. https://esp.example.com/SASEventStreamProcessingServer/p1/";
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!(
            "url {url:?}: the scheme must be http or https; {accepted}"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.contains(['?', '#', ' ']) {
        return Err(format!(
            "url {url:?}: no query, fragment or space in the path; {accepted}"
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p))
            if !h.is_empty() && !h.ends_with(':') && (h.starts_with('[') || !h.contains(':')) =>
        {
            let port =
                p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
                    format!("url {url:?}: port {p:?} is not a port from 1 to 65535")
                })?;
            (h, port)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("url {url:?} names no host; {accepted}"));
    }
    let mut prefix = path.trim_end_matches('/').to_string();
    for base in crate::http::BASES {
        if let Some(p) = prefix.strip_suffix(base) {
            prefix = p.to_string();
            break;
        }
    }
    Ok((host.to_string(), port, tls, prefix))
}

fn read_port(r: &mut Reader, e: Node, attr: &str) -> Option<u16> {
    let v = r.req_attr(e, attr)?;
    match v.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
        _ => {
            r.attr_error(
                e,
                attr,
                format!("{attr} {v:?} is not accepted; accepted: a port from 1 to 65535"),
            );
            None
        }
    }
}

const DESTINATIONS: [&str; 3] = [
    "multicast-destination",
    "roundrobin-destination",
    "hash-destination",
];

fn read_esp_maps(r: &mut Reader, node: Node, names: &Names) -> Vec<EspMap> {
    r.check_attrs(node, &[]);
    let mut seen = Vec::new();
    let mut map_names = Vec::new();
    let mut out = Vec::new();
    for em in r.children(node, &["esp-map"]) {
        r.check_attrs(em, &["name", "cluster-ref", "model-ref"]);
        let name = r.req_attr(em, "name");
        let cluster = r.req_attr(em, "cluster-ref").and_then(|c| {
            let i = lookup(
                r,
                em,
                "cluster-ref",
                c,
                "esp-cluster",
                slot_names(names.clusters),
            );
            i.and_then(|i| names.clusters[i].1.as_ref().map(|c| (i, c)))
        });
        let model = r.req_attr(em, "model-ref").and_then(|m| {
            let i = lookup(r, em, "model-ref", m, "project", slot_names(names.projects));
            i.and_then(|i| names.projects[i].1.as_ref().map(|p| (i, p)))
        });
        let mut kids = r.children(em, &["map", "orchestration"]);
        let orch_nodes: Vec<Node> = kids
            .iter()
            .copied()
            .filter(|k| tag(*k) == "orchestration")
            .collect();
        kids.retain(|k| tag(*k) == "map");
        let mut maps = Vec::new();
        for mp in kids {
            if let Some(m) = read_map(
                r,
                mp,
                names,
                cluster.map(|c| c.1),
                model.map(|m| m.1),
                &mut map_names,
            ) {
                maps.push(m);
            }
        }
        if orch_nodes.len() > 1 {
            r.error(
                orch_nodes[1],
                "<orchestration> given twice in <esp-map>; give it once".to_string(),
            );
        }
        let orchestration = orch_nodes
            .first()
            .map(|o| read_orchestration(r, *o, names))
            .unwrap_or_default();
        let Some(name) = name else { continue };
        if !check_unique(r, &mut seen, em, "esp-map", name) {
            continue;
        }
        if let (Some((ci, _)), Some((mi, _))) = (cluster, model) {
            out.push(EspMap {
                name: name.to_string(),
                cluster: ci,
                model: mi,
                maps,
                orchestration,
            });
        }
    }
    out
}

/// Finds `value` among declared names. Reports an undefined name; returns
/// the slot index when it is declared (its value may still be broken).
fn lookup<'n>(
    r: &mut Reader,
    node: Node,
    attr: &str,
    value: &str,
    what: &str,
    declared: impl Iterator<Item = &'n str> + Clone,
) -> Option<usize> {
    if let Some(i) = declared.clone().position(|n| n == value) {
        return Some(i);
    }
    let have: Vec<&str> = declared.collect();
    r.attr_error(
        node,
        attr,
        format!(
            "{attr} '{value}' names no {what}; defined: {}",
            xml::list_or_none(&have)
        ),
    );
    None
}

fn read_map(
    r: &mut Reader,
    mp: Node,
    names: &Names,
    cluster: Option<&Cluster>,
    model: Option<&ProjectRef>,
    map_names: &mut Vec<String>,
) -> Option<Map> {
    r.check_attrs(mp, &["name"]);
    let name = r.req_attr(mp, "name");
    let mut accepted = vec!["from"];
    accepted.extend(DESTINATIONS);
    let kids = r.children(mp, &accepted);
    let from = r.one_child(mp, &kids, "from");
    let source = from.and_then(|f| {
        r.check_attrs(f, &["source"]);
        let s = r.req_attr(f, "source")?;
        let i = lookup(
            r,
            f,
            "source",
            s,
            "raw-source",
            slot_names(names.raw_sources),
        )?;
        names.raw_sources[i].1.as_ref().map(|_| i)
    });
    let dests: Vec<Node> = kids
        .iter()
        .copied()
        .filter(|k| DESTINATIONS.contains(&tag(*k)))
        .collect();
    if dests.is_empty() {
        r.error(mp, "<map> has no destination; accepted: <multicast-destination>, <roundrobin-destination>, <hash-destination>".to_string());
    }
    if dests.len() > 1 {
        r.error(
            dests[1],
            "<map> holds one destination; put a second one in its own <map>".to_string(),
        );
    }
    let destination = dests
        .first()
        .and_then(|d| read_destination(r, *d, cluster, model));
    let name = name?;
    if !check_unique(r, map_names, mp, "map", name) {
        return None;
    }
    Some(Map {
        name: name.to_string(),
        source: source?,
        destination: destination?,
    })
}

fn read_destination(
    r: &mut Reader,
    d: Node,
    cluster: Option<&Cluster>,
    model: Option<&ProjectRef>,
) -> Option<Destination> {
    let is_hash = tag(d) == "hash-destination";
    if is_hash {
        r.check_attrs(d, &["name", "opcode", "durable"]);
    } else {
        r.check_attrs(d, &["name", "opcode"]);
    }
    let name = r.req_attr(d, "name");
    let opcode = match d.attribute("opcode") {
        None => Some(None),
        Some(v) => match Opcode::from_word(v) {
            Some(o) => Some(Some(o)),
            None => {
                r.attr_error(d, "opcode", format!("opcode {v:?} is not accepted; accepted: insert, update, upsert, delete, safedelete"));
                None
            }
        },
    };
    let durable = is_hash && r.bool_attr(d, "durable", false);
    let kids = if is_hash {
        r.children(d, &["publish-target", "fields"])
    } else {
        r.children(d, &["publish-target"])
    };
    let target_node = r.one_child(d, &kids, "publish-target");
    let target = target_node.and_then(|t| read_publish_target(r, t));
    let field_names: Vec<(Node, String)> = if is_hash {
        let fields = r.one_child(d, &kids, "fields");
        let mut out = Vec::new();
        if let Some(f) = fields {
            r.check_attrs(f, &[]);
            for field in r.children(f, &["field"]) {
                r.check_attrs(field, &["name"]);
                if let Some(n) = r.req_attr(field, "name") {
                    out.push((field, n.to_string()));
                }
            }
            if out.is_empty() && f.children().all(|c| !c.is_element()) {
                r.error(
                    f,
                    "<fields> lists no <field>; hash needs at least one field to hash".to_string(),
                );
            }
        }
        out
    } else {
        Vec::new()
    };
    if let Some(c) = cluster {
        if c.redundancy > 1 && !is_hash {
            r.error(
                d,
                format!(
                    "<{}> cannot use cluster '{}' with redundancy {}: only hash and durable hash support redundancy",
                    tag(d),
                    c.name,
                    c.redundancy
                ),
            );
        }
    }
    let (target, model) = (target?, model?);
    let schema = resolve_target(r, target_node?, &target, model)?;
    let mut fields = Vec::new();
    for (node, f) in &field_names {
        match schema.index_of(f) {
            Some(i) => fields.push(i),
            None => {
                let have: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
                r.attr_error(
                    *node,
                    "name",
                    format!(
                        "hash field '{f}' is not in window '{}' schema; its fields: {}",
                        target.window,
                        have.join(", ")
                    ),
                );
            }
        }
    }
    if fields.len() != field_names.len() {
        return None;
    }
    let policy = match tag(d) {
        "multicast-destination" => Policy::Multicast,
        "roundrobin-destination" => Policy::RoundRobin,
        _ => Policy::Hash { fields, durable },
    };
    Some(Destination {
        name: name?.to_string(),
        policy,
        opcode: opcode?,
        target,
        schema,
    })
}

fn read_publish_target(r: &mut Reader, t: Node) -> Option<PublishTarget> {
    r.check_attrs(t, &[]);
    let kids = r.children(t, &["project-func", "contquery-func", "window-func"]);
    let get = |r: &mut Reader, name: &str| -> Option<String> {
        let n = r.one_child(t, &kids, name)?;
        let v = r.leaf_text(n)?;
        if !is_literal_name(&v) {
            r.error(
                n,
                format!(
                    "<{name}> {:?} is an expression; only literal names are supported yet (e.g. <{name}>trades</{name}>)",
                    xml::clip(&v)
                ),
            );
            return None;
        }
        Some(v)
    };
    let project = get(r, "project-func");
    let contquery = get(r, "contquery-func");
    let window = get(r, "window-func");
    Some(PublishTarget {
        project: project?,
        contquery: contquery?,
        window: window?,
    })
}

/// A name ESP would take literally: letters, digits, `_`, `-`, `.`.
fn is_literal_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Finds the target window in the model project and returns its schema.
fn resolve_target(
    r: &mut Reader,
    at: Node,
    t: &PublishTarget,
    model: &ProjectRef,
) -> Option<Schema> {
    let p = &model.project;
    // Errors point at the element that names the wrong thing.
    let func = |name: &str| at.children().find(|n| n.has_tag_name(name)).unwrap_or(at);
    if t.project != p.name {
        r.error(
            func("project-func"),
            format!(
                "project-func '{}' is not the project of model-ref '{}' (project-name '{}')",
                t.project, model.name, p.name
            ),
        );
        return None;
    }
    let Some(cq) = p.contquery(&t.contquery) else {
        let have: Vec<&str> = p.contqueries.iter().map(|c| c.name.as_str()).collect();
        r.error(
            func("contquery-func"),
            format!(
                "contquery-func '{}' is not a contquery of project '{}'; it has: {}",
                t.contquery,
                p.name,
                xml::list_or_none(&have)
            ),
        );
        return None;
    };
    let sources: Vec<&str> = cq
        .windows
        .iter()
        .filter(|w| w.is_source())
        .map(|w| w.name.as_str())
        .collect();
    let Some(w) = cq.windows.iter().find(|w| w.name == t.window) else {
        r.error(
            func("window-func"),
            format!(
                "window-func '{}' is not a window of {}/{}; its source windows: {}",
                t.window,
                p.name,
                cq.name,
                xml::list_or_none(&sources)
            ),
        );
        return None;
    };
    if !w.is_source() {
        r.error(
            func("window-func"),
            format!(
                "window '{}' is a <{}>; events can be published only into source windows: {}",
                w.name,
                w.kind,
                xml::list_or_none(&sources)
            ),
        );
        return None;
    }
    if !w.publisher_connectors.is_empty() {
        r.warn(
            at,
            format!(
                "target window {}/{}/{} carries its own publisher connector ({}) in {}:{}:{}; edgecm loads the project without its publisher connectors (the manager publishes into this window)",
                p.name,
                cq.name,
                w.name,
                w.publisher_connectors.join(", "),
                model.path.display(),
                w.line,
                w.col
            ),
        );
    }
    match &w.schema {
        Some(Ok(s)) if !s.fields.is_empty() => Some(s.clone()),
        Some(Err(d)) => {
            r.errors.push(d.clone());
            None
        }
        _ => {
            r.error(
                at,
                format!(
                    "window '{}' declares no schema fields in {}",
                    w.name,
                    model.path.display()
                ),
            );
            None
        }
    }
}

fn read_orchestration(r: &mut Reader, o: Node, names: &Names) -> Orchestration {
    r.check_attrs(o, &[]);
    let kids = r.children(o, &["adapter-groups", "edges"]);
    let mut orch = Orchestration::default();
    let mut group_nodes = Vec::new();
    if let Some(gs) = r.one_child(o, &kids, "adapter-groups") {
        r.check_attrs(gs, &[]);
        let mut seen = Vec::new();
        for g in r.children(gs, &["adapter-group"]) {
            r.check_attrs(g, &["name"]);
            let name = r.req_attr(g, "name");
            let mut entries = Vec::new();
            for e in r.children(g, &["adapter-entry"]) {
                r.check_attrs(e, &["adapter", "state"]);
                let source = r.req_attr(e, "adapter").and_then(|a| {
                    lookup(
                        r,
                        e,
                        "adapter",
                        a,
                        "raw-source",
                        slot_names(names.raw_sources),
                    )
                });
                let state = r.req_attr(e, "state").and_then(|s| match s {
                    "finished" => Some(AdapterState::Finished),
                    "started" | "running" => Some(AdapterState::Started),
                    other => {
                        r.attr_error(e, "state", format!("adapter state {other:?} is not accepted; accepted: started, finished"));
                        None
                    }
                });
                if let (Some(source), Some(state)) = (source, state) {
                    entries.push(AdapterEntry { source, state });
                }
            }
            let Some(name) = name else { continue };
            if check_unique(r, &mut seen, g, "adapter-group", name) {
                orch.groups.push(AdapterGroup {
                    name: name.to_string(),
                    entries,
                });
                group_nodes.push(g);
            }
        }
    }
    let edge_nodes: Vec<Node> = kids
        .iter()
        .copied()
        .filter(|k| tag(*k) == "edges")
        .flat_map(|es| {
            r.check_attrs(es, &[]);
            r.children(es, &["edge"])
        })
        .collect();
    let mut edge_at = Vec::new();
    for e in edge_nodes {
        r.check_attrs(e, &["source", "target"]);
        let (Some(s), Some(t)) = (r.req_attr(e, "source"), r.req_attr(e, "target")) else {
            continue;
        };
        let resolve = |r: &mut Reader, attr: &str, list: &str| -> Vec<usize> {
            list.split([' ', ',', '\t', '\n'])
                .filter(|n| !n.is_empty())
                .filter_map(|n| {
                    lookup(
                        r,
                        e,
                        attr,
                        n,
                        "adapter-group",
                        orch.groups.iter().map(|g| g.name.as_str()),
                    )
                })
                .collect()
        };
        let ss = resolve(r, "source", s);
        let ts = resolve(r, "target", t);
        for &a in &ss {
            for &b in &ts {
                orch.edges.push((a, b));
                edge_at.push(e);
            }
        }
    }
    // Kahn's algorithm by waves; whatever remains lies on a cycle.
    let n = orch.groups.len();
    let mut indegree = vec![0usize; n];
    for &(_, b) in &orch.edges {
        indegree[b] += 1;
    }
    let mut placed = vec![false; n];
    loop {
        let wave: Vec<usize> = (0..n).filter(|&g| !placed[g] && indegree[g] == 0).collect();
        if wave.is_empty() {
            break;
        }
        for &g in &wave {
            placed[g] = true;
            for &(a, b) in &orch.edges {
                if a == g {
                    indegree[b] -= 1;
                }
            }
        }
        orch.waves.push(wave);
    }
    if let Some(first) = (0..n).find(|&g| !placed[g]) {
        let on_cycle: Vec<&str> = (0..n)
            .filter(|&g| !placed[g])
            .map(|g| orch.groups[g].name.as_str())
            .collect();
        let at = orch
            .edges
            .iter()
            .position(|&(_, b)| b == first)
            .map(|i| edge_at[i])
            .unwrap_or(group_nodes[first]);
        r.error(
            at,
            format!(
                "orchestration edges form a cycle through adapter-groups {}; edges must go one way",
                on_cycle.join(", ")
            ),
        );
    }
    orch
}
