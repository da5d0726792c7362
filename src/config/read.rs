//! Reading the document: the top level, projects and raw-sources.

use super::*;

/// Reads the whole document; `None` when a part is too broken to go on
/// (the errors say why).
pub(super) fn read_config<'a, 'i>(r: &mut Reader<'a, 'i>, base_dir: &Path) -> Option<Config> {
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
pub(super) struct Names<'c> {
    pub(super) projects: &'c [Slot<ProjectRef>],
    pub(super) raw_sources: &'c [Slot<RawSource>],
    pub(super) clusters: &'c [Slot<Cluster>],
}

/// A declared element: its name, and its value when it read without errors.
pub(super) type Slot<T> = (String, Option<T>);

pub(super) fn slot_names<T>(slots: &[Slot<T>]) -> impl Iterator<Item = &str> + Clone {
    slots.iter().map(|(n, _)| n.as_str())
}

/// Reports `name` if an earlier sibling already used it.
pub(super) fn check_unique(
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

pub(super) fn read_projects(r: &mut Reader, node: Node, base_dir: &Path) -> Vec<Slot<ProjectRef>> {
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

pub(super) fn read_raw_sources(
    r: &mut Reader,
    node: Node,
    base_dir: &Path,
) -> Vec<Slot<RawSource>> {
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
