//! Reading esp-maps: maps, destinations and their policies, publish
//! targets resolved against the projects, and orchestration.

use super::*;

pub(super) const DESTINATIONS: [&str; 3] = [
    "multicast-destination",
    "roundrobin-destination",
    "hash-destination",
];

pub(super) fn read_esp_maps(r: &mut Reader, node: Node, names: &Names) -> Vec<EspMap> {
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
pub(super) fn lookup<'n>(
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

pub(super) fn read_map(
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

pub(super) fn read_destination(
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

pub(super) fn read_publish_target(r: &mut Reader, t: Node) -> Option<PublishTarget> {
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
pub(super) fn is_literal_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Finds the target window in the model project and returns its schema.
pub(super) fn resolve_target(
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

pub(super) fn read_orchestration(r: &mut Reader, o: Node, names: &Names) -> Orchestration {
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
