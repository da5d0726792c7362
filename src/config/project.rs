//! ESP project models: the windows a config publishes into, and their schemas.
//!
//! A referenced project file holds either one `<project>` or an
//! `<engine><projects>...` document (esp-protocol.md §9). We read only what the
//! manager needs: contqueries, windows with their kind and schema, and whether a
//! window carries its own publisher connector. Everything else in a project is
//! the engine's business and is passed through untouched: the deployed XML is
//! the `<project>` element's own text, byte for byte.

use std::path::Path;

use roxmltree::Node;

use super::xml::{self, tag, Diagnostic};

pub use edgecm_wire::schema::{unknown_type, Field, FieldType, Schema};

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    /// The element name, e.g. `window-source`.
    pub kind: String,
    pub line: u32,
    pub col: u32,
    /// `None` when the window declares no schema (derived windows may inherit one).
    pub schema: Option<Result<Schema, Diagnostic>>,
    /// `autogen-key="true"`: the engine generates the key field.
    pub autogen_key: bool,
    /// Names of fs/other connectors on this window whose `type` is a publisher.
    pub publisher_connectors: Vec<String>,
}

impl Window {
    pub fn is_source(&self) -> bool {
        self.kind == "window-source"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContQuery {
    pub name: String,
    pub windows: Vec<Window>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    /// The `<project>` element's text as written in the file: what gets deployed.
    pub xml: String,
    pub contqueries: Vec<ContQuery>,
}

impl Project {
    pub fn contquery(&self, name: &str) -> Option<&ContQuery> {
        self.contqueries.iter().find(|c| c.name == name)
    }
}

/// Every project in a project file.
#[derive(Debug, Clone)]
pub struct ProjectFile {
    pub projects: Vec<Project>,
}

impl ProjectFile {
    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }
}

/// Reads a project file. Fails on I/O or malformed XML, and on a document
/// that holds no `<project>`; problems inside a window's schema are kept on
/// that window and reported only if the config targets it.
pub fn load(path: &Path) -> Result<ProjectFile, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        col: 1,
        message: format!("cannot read project file: {e}"),
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<ProjectFile, Diagnostic> {
    let doc = xml::parse_document(path, text)?;
    let root = doc.root_element();
    let project_nodes: Vec<Node> = match tag(root) {
        "project" => vec![root],
        "engine" => root
            .children()
            .filter(|n| n.has_tag_name("projects"))
            .flat_map(|p| p.children().filter(|n| n.has_tag_name("project")))
            .collect(),
        other => {
            let pos = doc.text_pos_at(root.range().start);
            return Err(Diagnostic {
                file: path.to_path_buf(),
                line: pos.row,
                col: pos.col,
                message: format!(
                    "root element is <{other}>; a project file holds <project> or <engine><projects><project>"
                ),
            });
        }
    };
    if project_nodes.is_empty() {
        let pos = doc.text_pos_at(root.range().start);
        return Err(Diagnostic {
            file: path.to_path_buf(),
            line: pos.row,
            col: pos.col,
            message: "no <project> found under <engine><projects>".to_string(),
        });
    }
    let at = |node: Node, message: String| {
        let pos = doc.text_pos_at(node.range().start);
        Diagnostic {
            file: path.to_path_buf(),
            line: pos.row,
            col: pos.col,
            message,
        }
    };
    let mut projects = Vec::new();
    for p in project_nodes {
        let name = p.attribute("name").unwrap_or("").to_string();
        let mut contqueries = Vec::new();
        for cq in p
            .children()
            .filter(|n| n.has_tag_name("contqueries"))
            .flat_map(|c| c.children().filter(|n| n.has_tag_name("contquery")))
        {
            let mut windows = Vec::new();
            for w in cq
                .children()
                .filter(|n| n.has_tag_name("windows"))
                .flat_map(|ws| {
                    ws.children()
                        .filter(|n| n.is_element() && tag(*n).starts_with("window-"))
                })
            {
                let pos = doc.text_pos_at(w.range().start);
                windows.push(Window {
                    name: w.attribute("name").unwrap_or("").to_string(),
                    kind: tag(w).to_string(),
                    line: pos.row,
                    col: pos.col,
                    schema: window_schema(w, &at),
                    autogen_key: w
                        .attribute("autogen-key")
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                    publisher_connectors: publisher_connectors(w),
                });
            }
            contqueries.push(ContQuery {
                name: cq.attribute("name").unwrap_or("").to_string(),
                windows,
            });
        }
        projects.push(Project {
            name,
            xml: text[p.range()].to_string(),
            contqueries,
        });
    }
    Ok(ProjectFile { projects })
}

fn window_schema(
    w: Node,
    at: &dyn Fn(Node, String) -> Diagnostic,
) -> Option<Result<Schema, Diagnostic>> {
    if let Some(s) = w.children().find(|n| n.has_tag_name("schema-string")) {
        let text = s.text().unwrap_or("");
        return Some(Schema::parse_compact(text).map_err(|m| at(s, m)));
    }
    let schema = w.children().find(|n| n.has_tag_name("schema"))?;
    if let Some(s) = schema.children().find(|n| n.has_tag_name("schema-string")) {
        let text = s.text().unwrap_or("");
        return Some(Schema::parse_compact(text).map_err(|m| at(s, m)));
    }
    let fields = schema.children().find(|n| n.has_tag_name("fields"))?;
    let mut out = Schema::default();
    for f in fields.children().filter(|n| n.has_tag_name("field")) {
        let Some(name) = f.attribute("name").filter(|n| !n.is_empty()) else {
            return Some(Err(at(
                f,
                "<field> is missing its 'name' attribute".to_string(),
            )));
        };
        let ty_text = f.attribute("type").unwrap_or("");
        let Some(ty) = FieldType::parse(ty_text) else {
            return Some(Err(at(f, unknown_type(ty_text, name))));
        };
        let key = match f.attribute("key") {
            None => false,
            Some(k) => match xml::parse_bool(k) {
                Some(b) => b,
                None => {
                    return Some(Err(at(
                        f,
                        format!("field '{name}' has key={k:?}; accepted: true, false"),
                    )))
                }
            },
        };
        if out.index_of(name).is_some() {
            return Some(Err(at(
                f,
                format!("field '{name}' appears twice in the schema"),
            )));
        }
        out.fields.push(Field {
            name: name.to_string(),
            ty,
            key,
        });
    }
    Some(Ok(out))
}

/// The `<project>` element `xml` without its publisher connectors, which
/// the manager replaces (ESP would start them on load and they would publish
/// the project's own input files). Subscriber connectors stay. Orchestration
/// in `<project-connectors>` loses the entries of the removed connectors, the
/// groups left empty and the edges that named them. Returns the new text and
/// how many connectors went.
pub fn without_publishers(xml: &str) -> Result<(String, usize), String> {
    let doc = xml::parse_document(Path::new("project"), xml).map_err(|d| d.to_string())?;
    let mut cuts: Vec<std::ops::Range<usize>> = Vec::new();
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    for cq in doc.descendants().filter(|n| n.has_tag_name("contquery")) {
        let cq_name = cq.attribute("name").unwrap_or("");
        let windows = cq
            .children()
            .filter(|n| n.has_tag_name("windows"))
            .flat_map(|w| w.children().filter(|n| n.is_element()));
        for w in windows {
            let pubs = publisher_connectors(w);
            if pubs.is_empty() {
                continue;
            }
            let w_name = w.attribute("name").unwrap_or("");
            for c in w.children().filter(|n| n.has_tag_name("connectors")) {
                let all: Vec<Node> = c
                    .children()
                    .filter(|n| n.has_tag_name("connector"))
                    .collect();
                let is_pub =
                    |n: &Node| pubs.iter().any(|p| Some(p.as_str()) == n.attribute("name"));
                if all.iter().all(is_pub) {
                    cuts.push(c.range());
                } else {
                    cuts.extend(all.iter().filter(|n| is_pub(n)).map(|n| n.range()));
                }
            }
            gone.extend(pubs.iter().map(|p| format!("{cq_name}/{w_name}/{p}")));
        }
    }
    for pc in doc
        .descendants()
        .filter(|n| n.has_tag_name("project-connectors"))
    {
        let mut groups_gone: Vec<&str> = Vec::new();
        let groups: Vec<Node> = pc
            .descendants()
            .filter(|n| n.has_tag_name("connector-group"))
            .collect();
        let mut left = 0;
        for g in &groups {
            let entries: Vec<Node> = g
                .children()
                .filter(|n| n.has_tag_name("connector-entry"))
                .collect();
            let dead = |e: &Node| {
                gone.iter()
                    .any(|c| Some(c.as_str()) == e.attribute("connector"))
            };
            if !entries.is_empty() && entries.iter().all(dead) {
                cuts.push(g.range());
                groups_gone.push(g.attribute("name").unwrap_or(""));
            } else {
                left += 1;
                cuts.extend(entries.iter().filter(|e| dead(e)).map(|e| e.range()));
            }
        }
        if left == 0 && !groups.is_empty() {
            cuts.push(pc.range());
            continue;
        }
        for e in pc.descendants().filter(|n| n.has_tag_name("edge")) {
            let mut keep = true;
            let mut changed = Vec::new();
            for a in e
                .attributes()
                .filter(|a| matches!(a.name(), "source" | "target"))
            {
                let names: Vec<&str> = a
                    .value()
                    .split([' ', ','])
                    .filter(|n| !n.is_empty() && !groups_gone.contains(n))
                    .collect();
                if names.is_empty() {
                    keep = false;
                } else if names.len()
                    != a.value()
                        .split([' ', ','])
                        .filter(|n| !n.is_empty())
                        .count()
                {
                    changed.push((a.range_value(), names.join(" ")));
                }
            }
            if keep {
                edits.extend(changed);
            } else {
                cuts.push(e.range());
            }
        }
    }
    // Cuts inside a larger cut go with it.
    let outer: Vec<std::ops::Range<usize>> = cuts
        .iter()
        .filter(|r| {
            !cuts
                .iter()
                .any(|o| o != *r && o.start <= r.start && r.end <= o.end)
        })
        .cloned()
        .collect();
    let mut all: Vec<(std::ops::Range<usize>, String)> =
        outer.iter().map(|r| (r.clone(), String::new())).collect();
    all.extend(
        edits
            .into_iter()
            .filter(|(r, _)| !outer.iter().any(|o| o.start <= r.start && r.end <= o.end)),
    );
    all.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    let mut out = xml.to_string();
    for (r, t) in all {
        out.replace_range(r, &t);
    }
    Ok((out, gone.len()))
}

/// Connectors on a window whose `type` property says publisher (`pub...`).
fn publisher_connectors(w: Node) -> Vec<String> {
    w.children()
        .filter(|n| n.has_tag_name("connectors"))
        .flat_map(|c| c.children().filter(|n| n.has_tag_name("connector")))
        .filter(|c| {
            c.descendants()
                .filter(|n| n.has_tag_name("property") && n.attribute("name") == Some("type"))
                .any(|p| {
                    p.text()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                        .starts_with('p')
                })
        })
        .map(|c| c.attribute("name").unwrap_or("").to_string())
        .collect()
}

#[cfg(test)]
mod strip_tests {
    use super::*;

    const P: &str = r#"<project name='p'><contqueries><contquery name='cq'><windows>
<window-source name='a'><schema-string>id*:int64</schema-string>
<connectors><connector class='fs' name='in'><properties><property name='type'><![CDATA[pub]]></property></properties></connector></connectors></window-source>
<window-source name='b'><schema-string>id*:int64</schema-string>
<connectors><connector class='fs' name='inb'><properties><property name='type'>pub</property></properties></connector>
<connector class='fs' name='out'><properties><property name='type'>sub</property></properties></connector></connectors></window-source>
</windows></contquery></contqueries>
<project-connectors><connector-groups>
<connector-group name='G1'><connector-entry connector='cq/a/in' state='finished'/></connector-group>
<connector-group name='G2'><connector-entry connector='cq/b/inb' state='finished'/><connector-entry connector='cq/b/out' state='running'/></connector-group>
<connector-group name='G3'><connector-entry connector='cq/b/out' state='running'/></connector-group>
</connector-groups><edges><edge source='G1' target='G2'/><edge source='G2' target='G3'/><edge source='G1 G3' target='G2'/></edges></project-connectors>
</project>"#;

    #[test]
    fn publishers_and_their_orchestration_go_subscribers_stay() {
        let (out, n) = without_publishers(P).unwrap();
        assert_eq!(n, 2);
        let f = parse(Path::new("t"), &out).unwrap();
        let ws = &f.projects[0].contqueries[0].windows;
        assert!(
            ws.iter().all(|w| w.publisher_connectors.is_empty()),
            "{out}"
        );
        assert!(out.contains("name='out'"), "{out}");
        assert!(
            !out.contains("'cq/a/in'") && !out.contains("'cq/b/inb'"),
            "{out}"
        );
        assert!(!out.contains("name='G1'"), "{out}");
        assert!(out.contains("<edge source='G2' target='G3'/>"), "{out}");
        assert!(out.contains("source='G3' target='G2'"), "{out}");
        assert!(
            !out.contains("target='G2'/><edge source='G2'"),
            "the G1->G2 edge went: {out}"
        );
        assert_eq!(without_publishers(&out).unwrap().1, 0);
    }

    #[test]
    fn orchestration_of_publishers_only_goes_whole() {
        let x = "<project name='p'><contqueries><contquery name='cq'><windows><window-source name='a'><connectors><connector class='fs' name='in'><properties><property name='type'>pub</property></properties></connector></connectors></window-source></windows></contquery></contqueries><project-connectors><connector-groups><connector-group name='G'><connector-entry connector='cq/a/in' state='finished'/></connector-group></connector-groups><edges/></project-connectors></project>";
        let (out, n) = without_publishers(x).unwrap();
        assert_eq!(n, 1);
        assert!(!out.contains("connector"), "{out}");
    }
}
