//! What `-output-projects` and `-output-routers` write at start: the project
//! XML that is deployed, and the equivalent ESP router model
//! (esp-protocol.md §7.1), so an operator can deploy either by hand.

use super::encode::escape;
use crate::config::{Config, Policy};
use std::fmt::Write;

/// The projects deployed to the engines: one `<project>` element as
/// written in its file, or several inside `<engine><projects>`.
pub fn projects_xml(config: &Config) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    match config.projects.as_slice() {
        [one] => {
            let _ = writeln!(out, "<!-- deployed by edgecm as project '{}' -->", one.name);
            out.push_str(&one.project.xml);
            out.push('\n');
        }
        many => {
            out.push_str("<engine>\n<projects>\n");
            for p in many {
                let _ = writeln!(out, "<!-- deployed by edgecm as project '{}' -->", p.name);
                out.push_str(&p.project.xml);
                out.push('\n');
            }
            out.push_str("</projects>\n</engine>\n");
        }
    }
    out
}

/// The ESP router model equivalent to the config's esp-maps: engines by
/// their pub/sub `port`, one `publish-destination` per map (per engine for
/// multicast), and comments where ESP's functions cannot say what edgecm does.
pub fn routers_xml(config: &Config) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<!-- Written by edgecm {} from {}: the ESP router equivalent of its esp-maps. -->",
        env!("CARGO_PKG_VERSION"),
        escape(&config.file.display().to_string())
    );
    o.push_str("<engine>\n  <esp-routers>\n");
    let _ = writeln!(o, "    <esp-router name=\"{}\">", escape(&config.manager));
    o.push_str("      <esp-engines>\n");
    for c in &config.clusters {
        let _ = writeln!(
            o,
            "        <!-- cluster '{}', redundancy {} -->",
            escape(&c.name),
            c.redundancy
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
                "        <!-- spare, not routed to until an engine fails (an ESP router has no spares): <esp-engine name=\"{}\" host=\"{}\" port=\"{}\"/> -->",
                escape(&e.name),
                escape(&e.host),
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
            let first = cluster
                .engines
                .first()
                .map(|e| e.name.as_str())
                .unwrap_or("");
            let mut names = Vec::new();
            match &d.policy {
                Policy::Multicast => {
                    for e in &cluster.engines {
                        let name = format!("{}-{}", d.name, e.name);
                        let _ = writeln!(
                            o,
                            "        <publish-destination name=\"{}\"{opcode}>",
                            escape(&name)
                        );
                        o.push_str(&target(&e.name));
                        o.push_str("        </publish-destination>\n");
                        names.push(name);
                    }
                }
                policy => {
                    let why = match policy {
                        Policy::RoundRobin => format!(
                            "edgecm sends each block of events to the next of the {} engines in turn (round-robin); ESP's functions have no per-block counter, so this destination names one engine. Split it by a field with ifNext() to spread the load.",
                            cluster.engines.len()
                        ),
                        Policy::Hash { fields, durable } => {
                            let names: Vec<&str> = fields
                                .iter()
                                .filter_map(|&i| d.schema.fields.get(i).map(|f| f.name.as_str()))
                                .collect();
                            format!(
                                "edgecm sends each event to the engine chosen by {} of the fields {} (FNV-1a, seedless) over the {} engines; ESP's functions have no documented string hash, so this destination names one engine. ifNext() on ${} ranges can approximate it.",
                                if *durable { "a consistent-hash ring" } else { "a hash modulo the engine count" },
                                names.join(", "),
                                cluster.engines.len(),
                                names.first().copied().unwrap_or("field")
                            )
                        }
                        Policy::Multicast => unreachable!("handled above"),
                    };
                    let _ = writeln!(o, "        <!-- {} -->", why.replace("--", "- -"));
                    let _ = writeln!(
                        o,
                        "        <publish-destination name=\"{}\"{opcode}>",
                        escape(&d.name)
                    );
                    o.push_str(&target(first));
                    o.push_str("        </publish-destination>\n");
                    names.push(d.name.clone());
                }
            }
            let source = &config.raw_sources[map.source];
            let _ = writeln!(
                routes,
                "        <!-- edgecm reads raw-source '{}' itself; an ESP router routes from a window: publish that input into a source window named '{}' and adjust the expressions. -->",
                escape(&source.name).replace("--", "- -"),
                escape(&source.name).replace("--", "- -")
            );
            let _ = writeln!(
                routes,
                "        <esp-route name=\"{}\" to=\"{}\">\n          <window-expr>{}</window-expr>\n        </esp-route>",
                escape(&map.name),
                escape(&names.join(",")),
                escape(&source.name)
            );
        }
    }
    o.push_str("      </esp-destinations>\n      <esp-routes>\n");
    o.push_str(&routes);
    o.push_str("      </esp-routes>\n    </esp-router>\n  </esp-routers>\n</engine>\n");
    o
}
