//! The config's model: what a validated config is, apart from how it is
//! read (`read`, `engines`, `maps` parse the XML into it).

use super::*;

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
