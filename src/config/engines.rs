//! Reading clusters and engines (`<esp-cluster>`, `<esp-engine>`, also as
//! the admin API's `PUT routerEngines` body).

use super::*;

pub(super) fn read_clusters(r: &mut Reader, node: Node) -> Vec<Slot<Cluster>> {
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

pub(super) fn read_engine(r: &mut Reader, e: Node, names: &mut Vec<String>) -> Option<Engine> {
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

pub(super) fn read_port(r: &mut Reader, e: Node, attr: &str) -> Option<u16> {
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
