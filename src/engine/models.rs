//! What `-output-projects` and `-output-routers` write at start: the seed's
//! "two configuration files that start connectors and a router on the local
//! ESP server", so an operator can run the same routing with ESP alone.
//!
//! - The local project ([`projects_xml`]): one source window per raw-source,
//!   named after it, with the schema of the window it feeds, carrying ESP's
//!   own fs publisher connector with the raw-source's properties; the
//!   esp-maps' orchestration becomes `<project-connectors>`.
//! - The router ([`routers_xml`], esp-protocol.md §7.1): engines by their
//!   pub/sub `port`, the local one as `esp_local`; one `publish-destination`
//!   per map and engine for multicast, one per map otherwise; one route per
//!   map whose `*-expr` match that source window of the local project only.
//!
//! What ESP's router cannot say is written as comments where it applies:
//! round-robin per block, our seedless hash, the durable ring, redundancy,
//! spares, and the manager's own journal (an ESP router keeps nothing for an
//! engine that is down).

use super::encode::escape;
use crate::config::{AdapterState, Config, Map, Policy};
use std::fmt::Write;

/// The local project's name and continuous query.
pub const LOCAL_PROJECT: &str = "edgecm_local";
pub const LOCAL_CONTQUERY: &str = "cq";
/// The name ESP's router gives the engine it runs in (config.rs refuses it
/// for an engine of ours).
pub const LOCAL_ENGINE: &str = "esp_local";

/// Comment text: `--` may not stand inside an XML comment.
fn comment(s: &str) -> String {
    s.replace("--", "- -")
}

/// The first map of each raw-source some map reads, in raw-source order.
fn fed(config: &Config) -> Vec<(usize, &Map)> {
    let maps: Vec<&Map> = config.esp_maps.iter().flat_map(|m| &m.maps).collect();
    (0..config.raw_sources.len())
        .filter_map(|i| maps.iter().find(|m| m.source == i).map(|m| (i, *m)))
        .collect()
}

/// The local project: a source window and an fs publisher per raw-source.
pub fn projects_xml(config: &Config) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<!-- Written by edgecm {} from {}: the local ESP project that reads the raw-sources with ESP's own fs connectors. Load it on the local ESP server with the router of -output-routers. The engines run {} as edgecm deploys it (without its publisher connectors). -->",
        env!("CARGO_PKG_VERSION"),
        comment(&escape(&config.file.display().to_string())),
        comment(
            &config
                .projects
                .iter()
                .map(|p| format!("project '{}'", p.project.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    );
    let _ = writeln!(
        o,
        "<project name=\"{LOCAL_PROJECT}\" pubsub=\"auto\" threads=\"1\">\n  <contqueries>\n    <contquery name=\"{LOCAL_CONTQUERY}\">\n      <windows>"
    );
    for (i, map) in fed(config) {
        let raw = &config.raw_sources[i];
        let _ = writeln!(
            o,
            "        <window-source name=\"{}\" insert-only=\"false\">\n          <schema>\n            <fields>",
            escape(&raw.name)
        );
        for f in &map.destination.schema.fields {
            let _ = writeln!(
                o,
                "              <field name=\"{}\" type=\"{}\"{}/>",
                escape(&f.name),
                f.ty.name(),
                if f.key { " key=\"true\"" } else { "" }
            );
        }
        let _ = writeln!(
            o,
            "            </fields>\n          </schema>\n          <connectors>\n            <connector class=\"fs\" name=\"{}\">\n              <properties>",
            escape(&raw.name)
        );
        for (k, v) in &raw.properties {
            // Files as the manager resolved them: the ESP server runs elsewhere.
            let v = match (k.as_str(), &raw.fs.fsname) {
                ("fsname", crate::config::FsName::File(p)) => p.display().to_string(),
                _ => v.clone(),
            };
            let _ = writeln!(
                o,
                "                <property name=\"{}\">{}</property>",
                escape(k),
                escape(&v)
            );
        }
        o.push_str("              </properties>\n            </connector>\n          </connectors>\n        </window-source>\n");
    }
    o.push_str("      </windows>\n    </contquery>\n  </contqueries>\n");
    // Orchestration: adapter groups become connector groups (started = running).
    let groups: Vec<(String, &crate::config::AdapterGroup)> = config
        .esp_maps
        .iter()
        .flat_map(|m| {
            m.orchestration
                .groups
                .iter()
                .map(move |g| (format!("{}.{}", m.name, g.name), g))
        })
        .collect();
    if !groups.is_empty() {
        o.push_str("  <project-connectors>\n    <connector-groups>\n");
        for (name, g) in &groups {
            let _ = writeln!(o, "      <connector-group name=\"{}\">", escape(name));
            for e in &g.entries {
                let src = escape(&config.raw_sources[e.source].name);
                let state = match e.state {
                    AdapterState::Started => "running",
                    AdapterState::Finished => "finished",
                };
                let _ = writeln!(
                    o,
                    "        <connector-entry connector=\"{LOCAL_CONTQUERY}/{src}/{src}\" state=\"{state}\"/>"
                );
            }
            o.push_str("      </connector-group>\n");
        }
        o.push_str("    </connector-groups>\n    <edges>\n");
        for m in &config.esp_maps {
            let o_ = &m.orchestration;
            for &(from, to) in &o_.edges {
                let _ = writeln!(
                    o,
                    "      <edge source=\"{}\" target=\"{}\"/>",
                    escape(&format!("{}.{}", m.name, o_.groups[from].name)),
                    escape(&format!("{}.{}", m.name, o_.groups[to].name))
                );
            }
        }
        o.push_str("    </edges>\n  </project-connectors>\n");
    }
    o.push_str("</project>\n");
    o
}

/// The router that sends the local project's source windows to the engines.
pub fn routers_xml(config: &Config) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<!-- Written by edgecm {} from {}: the ESP router equivalent of its esp-maps, routing the windows of the local project '{LOCAL_PROJECT}' (-output-projects). An ESP router keeps nothing on disk for an engine that is down, has no spares and no redundancy: what edgecm's journal, spares and redundancy add is not in here. -->",
        env!("CARGO_PKG_VERSION"),
        comment(&escape(&config.file.display().to_string()))
    );
    o.push_str("<engine>\n  <esp-routers>\n");
    let _ = writeln!(o, "    <esp-router name=\"{}\">", escape(&config.manager));
    o.push_str("      <esp-engines>\n");
    o.push_str("        <!-- the ESP server this router runs in, where the local project is -->\n");
    for c in &config.clusters {
        let _ = writeln!(
            o,
            "        <!-- cluster '{}', redundancy {}{} -->",
            comment(&escape(&c.name)),
            c.redundancy,
            if c.redundancy > 1 {
                ": edgecm sends each event to that many engines; these destinations name one"
            } else {
                ""
            }
        );
        for e in &c.engines {
            let _ = writeln!(
                o,
                "        <esp-engine name=\"{}\" host=\"{}\" port=\"{}\"/>",
                escape(&e.name),
                escape(&e.host),
                e.port
            );
        }
        for e in &c.spares {
            let _ = writeln!(
                o,
                "        <!-- spare, routed to only after an engine fails (an ESP router has no spares): <esp-engine name=\"{}\" host=\"{}\" port=\"{}\"/> -->",
                comment(&escape(&e.name)),
                comment(&escape(&e.host)),
                e.port
            );
        }
    }
    o.push_str("      </esp-engines>\n      <esp-destinations>\n");
    let mut routes = String::new();
    for m in &config.esp_maps {
        let cluster = &config.clusters[m.cluster];
        for map in &m.maps {
            let d = &map.destination;
            let opcode = d
                .opcode
                .map(|op| format!(" opcode=\"{}\"", op.word()))
                .unwrap_or_default();
            let target = |engine: &str| {
                format!(
                    "          <publish-target>\n            <engine-func>{}</engine-func>\n            <project-func>{}</project-func>\n            <contquery-func>{}</contquery-func>\n            <window-func>{}</window-func>\n          </publish-target>\n",
                    escape(engine),
                    escape(&d.target.project),
                    escape(&d.target.contquery),
                    escape(&d.target.window)
                )
            };
            let mut names = Vec::new();
            let engines: Vec<&str> = match &d.policy {
                Policy::Multicast => cluster.engines.iter().map(|e| e.name.as_str()).collect(),
                policy => {
                    let why = match policy {
                        Policy::RoundRobin => format!(
                            "edgecm sends each block of events to the next of the {} engines in turn (round-robin); ESP's functions have no per-block counter, so this destination names one engine. Split it by a field with ifNext() to spread the load.",
                            cluster.engines.len()
                        ),
                        Policy::Hash { fields, durable } => {
                            let f: Vec<&str> = fields
                                .iter()
                                .filter_map(|&i| d.schema.fields.get(i).map(|f| f.name.as_str()))
                                .collect();
                            format!(
                                "edgecm sends each event to the engine chosen by {} of the fields {} (FNV-1a, seedless) over the {} engines; ESP's functions have no documented string hash, so this destination names one engine. ifNext() on ${} ranges can approximate it.",
                                if *durable { "a consistent-hash ring" } else { "a hash modulo the engine count" },
                                f.join(", "),
                                cluster.engines.len(),
                                f.first().copied().unwrap_or("field")
                            )
                        }
                        Policy::Multicast => unreachable!("handled above"),
                    };
                    let _ = writeln!(o, "        <!-- {} -->", comment(&why));
                    cluster
                        .engines
                        .first()
                        .map(|e| e.name.as_str())
                        .into_iter()
                        .collect()
                }
            };
            for e in engines {
                let name = if d.policy == Policy::Multicast {
                    format!("{}-{e}", d.name)
                } else {
                    d.name.clone()
                };
                let _ = writeln!(
                    o,
                    "        <publish-destination name=\"{}\"{opcode}>",
                    escape(&name)
                );
                o.push_str(&target(e));
                o.push_str("        </publish-destination>\n");
                names.push(name);
            }
            let source = &config.raw_sources[map.source];
            let _ = writeln!(
                routes,
                "        <esp-route name=\"{}\" to=\"{}\">\n          <engine-expr>^{LOCAL_ENGINE}$</engine-expr>\n          <project-expr>^{LOCAL_PROJECT}$</project-expr>\n          <contquery-expr>^{LOCAL_CONTQUERY}$</contquery-expr>\n          <window-expr>^{}$</window-expr>\n        </esp-route>",
                escape(&map.name),
                escape(&names.join(",")),
                escape(&regex_literal(&source.name))
            );
        }
    }
    o.push_str("      </esp-destinations>\n      <esp-routes>\n");
    o.push_str(&routes);
    o.push_str("      </esp-routes>\n    </esp-router>\n  </esp-routers>\n</engine>\n");
    o
}

/// `s` as a regular expression that matches only `s` (route `*-expr`
/// elements are regular expressions, esp-protocol.md §7.1).
pub fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
