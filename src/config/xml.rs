//! Reading XML with positions: the one place that turns roxmltree nodes into
//! diagnostics that quote `file:line:col` and say what would be accepted.
//!
//! Everything here collects errors instead of stopping at the first, so that
//! `edgecm check` reports every problem of a config in one run.

use std::fmt;
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

/// One finding about a config or project file, anchored at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Parses `text` as XML with limits that keep hostile input cheap: no DTD
/// (so no entity expansion) and a bounded node count.
pub fn parse_document<'i>(file: &Path, text: &'i str) -> Result<Document<'i>, Diagnostic> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: crate::limits::XML_NODES_MAX,
        ..roxmltree::ParsingOptions::default()
    };
    Document::parse_with_options(text, opts).map_err(|e| {
        let pos = e.pos();
        Diagnostic {
            file: file.to_path_buf(),
            line: pos.row,
            col: pos.col,
            message: format!("not well-formed XML: {e}"),
        }
    })
}

/// A document being read, with the errors and warnings found so far.
pub struct Reader<'a, 'i> {
    pub file: &'a Path,
    pub doc: &'a Document<'i>,
    pub errors: &'a mut Vec<Diagnostic>,
    pub warnings: &'a mut Vec<Diagnostic>,
}

impl<'a, 'i> Reader<'a, 'i> {
    pub fn at(&self, byte: usize, message: String) -> Diagnostic {
        let pos = self.doc.text_pos_at(byte);
        Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.row,
            col: pos.col,
            message,
        }
    }

    pub fn error(&mut self, node: Node, message: String) {
        let d = self.at(node.range().start, message);
        self.errors.push(d);
    }

    pub fn warn(&mut self, node: Node, message: String) {
        let d = self.at(node.range().start, message);
        self.warnings.push(d);
    }

    /// Reports an error at the attribute `name` of `node` (at the element when absent).
    pub fn attr_error(&mut self, node: Node, name: &str, message: String) {
        let byte = node
            .attributes()
            .find(|a| a.name() == name)
            .map(|a| a.range().start)
            .unwrap_or(node.range().start);
        let d = self.at(byte, message);
        self.errors.push(d);
    }

    /// Errors for every attribute of `node` not in `accepted`.
    pub fn check_attrs(&mut self, node: Node, accepted: &[&str]) {
        for a in node.attributes() {
            if !accepted.contains(&a.name()) {
                let msg = format!(
                    "unknown attribute '{}' on <{}>; accepted: {}",
                    a.name(),
                    tag(node),
                    list_or_none(accepted)
                );
                let d = self.at(a.range().start, msg);
                self.errors.push(d);
            }
        }
    }

    /// The element children of `node` whose names are in `accepted`; any
    /// other element is reported, as is text that is not white space.
    pub fn children<'n, 'x>(&mut self, node: Node<'n, 'x>, accepted: &[&str]) -> Vec<Node<'n, 'x>> {
        let mut out = Vec::new();
        for c in node.children() {
            if c.is_element() {
                if accepted.contains(&tag(c)) {
                    out.push(c);
                } else {
                    let msg = format!(
                        "unknown element <{}> in <{}>; accepted: {}",
                        tag(c),
                        tag(node),
                        list_or_none(
                            &accepted
                                .iter()
                                .map(|a| format!("<{a}>"))
                                .collect::<Vec<_>>()
                        )
                    );
                    self.error(c, msg);
                }
            } else if c.is_text() && !c.text().unwrap_or("").trim().is_empty() {
                let msg = format!(
                    "unexpected text {:?} in <{}>; it holds only elements",
                    clip(c.text().unwrap_or("").trim()),
                    tag(node)
                );
                self.error(c, msg);
            }
        }
        out
    }

    /// The one child named `name`, reporting a missing or repeated one.
    pub fn one_child<'n, 'x>(
        &mut self,
        node: Node<'n, 'x>,
        kids: &[Node<'n, 'x>],
        name: &str,
    ) -> Option<Node<'n, 'x>> {
        let mut found = kids.iter().filter(|k| tag(**k) == name);
        let first = found.next().copied();
        if let Some(dup) = found.next() {
            self.error(
                *dup,
                format!("<{name}> given twice in <{}>; give it once", tag(node)),
            );
        }
        if first.is_none() {
            self.error(
                node,
                format!("<{}> is missing its <{name}> element", tag(node)),
            );
        }
        first
    }

    /// A required attribute; reports it when missing or empty.
    pub fn req_attr<'n>(&mut self, node: Node<'n, '_>, name: &str) -> Option<&'n str> {
        match node.attribute(name) {
            Some(v) if !v.trim().is_empty() => Some(v.trim()),
            Some(_) => {
                self.attr_error(
                    node,
                    name,
                    format!("attribute '{name}' of <{}> is empty", tag(node)),
                );
                None
            }
            None => {
                self.error(
                    node,
                    format!("<{}> is missing its '{name}' attribute", tag(node)),
                );
                None
            }
        }
    }

    /// The trimmed text of a leaf element; reports child elements and empty text.
    pub fn leaf_text(&mut self, node: Node) -> Option<String> {
        self.check_attrs(node, &[]);
        let mut text = String::new();
        for c in node.children() {
            if c.is_element() {
                self.error(
                    c,
                    format!("<{}> holds text only, not <{}>", tag(node), tag(c)),
                );
                return None;
            }
            if c.is_text() {
                text.push_str(c.text().unwrap_or(""));
            }
        }
        let t = text.trim();
        if t.is_empty() {
            self.error(node, format!("<{}> is empty; it needs a value", tag(node)));
            return None;
        }
        Some(t.to_string())
    }

    /// An optional boolean attribute (`true` or `false`).
    pub fn bool_attr(&mut self, node: Node, name: &str, default: bool) -> bool {
        match node.attribute(name) {
            None => default,
            Some(v) => match parse_bool(v) {
                Some(b) => b,
                None => {
                    self.attr_error(
                        node,
                        name,
                        format!(
                            "'{name}' of <{}> is {v:?}; accepted: true, false",
                            tag(node)
                        ),
                    );
                    default
                }
            },
        }
    }
}

pub fn tag<'a>(node: Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

pub fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items
            .iter()
            .map(|s| s.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub use edgecm_wire::clip;
