//! The human summary `edgecm check` prints for a valid config.

use std::fmt::Write;

use super::{AdapterState, Config, FsName, Policy};

/// Sources, maps with policy and target window, clusters with engines and
/// spares, and the orchestration order, one item a line.
pub fn summary(c: &Config) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "config {}: valid (esp-cluster-manager '{}')",
        c.file.display(),
        c.manager
    );
    let _ = writeln!(w, "projects:");
    for p in &c.projects {
        let windows: usize = p.project.contqueries.iter().map(|q| q.windows.len()).sum();
        let _ = writeln!(
            w,
            "  {}: project '{}' from {} ({} contqueries, {} windows)",
            p.name,
            p.project.name,
            p.path.display(),
            p.project.contqueries.len(),
            windows
        );
    }
    let _ = writeln!(w, "raw-sources:");
    for src in &c.raw_sources {
        let fs = &src.fs;
        let from = match &fs.fsname {
            FsName::File(p) => format!("file {}", p.display()),
            FsName::Connect { host, port } => format!("connect to {host}:{port}"),
            FsName::Listen { port } => format!("listen on :{port}"),
        };
        let mut extra = String::new();
        if fs.growinginputfile {
            extra.push_str(" growing");
        }
        if let Some(r) = fs.rate {
            let _ = write!(extra, " rate={r}/s");
        }
        let _ = writeln!(
            w,
            "  {} [fs {}] {} blocksize={}{}",
            src.name,
            fs.fstype.name(),
            from,
            fs.blocksize,
            extra
        );
    }
    for m in &c.esp_maps {
        let cluster = &c.clusters[m.cluster];
        let model = &c.projects[m.model];
        let _ = writeln!(
            w,
            "esp-map {} (cluster {}, model {}):",
            m.name, cluster.name, model.name
        );
        for map in &m.maps {
            let d = &map.destination;
            let policy = match &d.policy {
                Policy::Hash { fields, .. } => {
                    let names: Vec<&str> = fields
                        .iter()
                        .map(|&i| d.schema.fields[i].name.as_str())
                        .collect();
                    format!("{}({})", d.policy.name(), names.join(","))
                }
                p => p.name().to_string(),
            };
            let opcode = d.opcode.map(|o| format!(" opcode={o}")).unwrap_or_default();
            let _ = writeln!(
                w,
                "  map {}: {} -> {} -> {}/{}/{} ({} fields){}",
                map.name,
                c.raw_sources[map.source].name,
                policy,
                d.target.project,
                d.target.contquery,
                d.target.window,
                d.schema.fields.len(),
                opcode
            );
        }
        let o = &m.orchestration;
        if o.groups.is_empty() {
            let _ = writeln!(w, "  orchestration: none (every source starts at once)");
        } else {
            let _ = writeln!(w, "  orchestration:");
            for (k, wave) in o.waves.iter().enumerate() {
                for &g in wave {
                    let group = &o.groups[g];
                    let entries: Vec<String> = group
                        .entries
                        .iter()
                        .map(|e| {
                            let st = match e.state {
                                AdapterState::Started => "started",
                                AdapterState::Finished => "finished",
                            };
                            format!("{}({st})", c.raw_sources[e.source].name)
                        })
                        .collect();
                    let after: Vec<&str> = o
                        .edges
                        .iter()
                        .filter(|(_, b)| *b == g)
                        .map(|(a, _)| o.groups[*a].name.as_str())
                        .collect();
                    let after = if after.is_empty() {
                        String::new()
                    } else {
                        format!(" after {}", after.join(", "))
                    };
                    let _ = writeln!(
                        w,
                        "    {}. {}: {}{}",
                        k + 1,
                        group.name,
                        entries.join(", "),
                        after
                    );
                }
            }
            let grouped: Vec<usize> = o
                .groups
                .iter()
                .flat_map(|g| g.entries.iter().map(|e| e.source))
                .collect();
            let free: Vec<&str> = m
                .maps
                .iter()
                .map(|mp| mp.source)
                .filter(|s| !grouped.contains(s))
                .map(|s| c.raw_sources[s].name.as_str())
                .collect();
            if !free.is_empty() {
                let _ = writeln!(w, "    at once (in no group): {}", free.join(", "));
            }
        }
    }
    let _ = writeln!(w, "clusters:");
    for cl in &c.clusters {
        let _ = writeln!(w, "  {} redundancy={}", cl.name, cl.redundancy);
        for (kind, list) in [("engine", &cl.engines), ("spare", &cl.spares)] {
            for e in list {
                let tls = if e.tls { " tls" } else { "" };
                let auth = e
                    .auth_user
                    .as_ref()
                    .map(|u| format!(" auth-user={u}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    w,
                    "    {kind} {} {}:{} (pubsub {}){tls}{auth}",
                    e.name, e.host, e.ha_port, e.port
                );
            }
        }
    }
    s
}
