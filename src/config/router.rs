//! ESP router models (`<esp-router>`, esp-protocol.md §7.1): read to check
//! what `-output-routers` writes, and by the stand-in's `PUT routers/{name}`.
//! Only the structure is checked: engines with a pub/sub port, destinations
//! whose literal `engine-func` names a listed engine, routes whose `to`
//! names destinations. Expressions (`*-func` beyond literal names, `*-expr`
//! regular expressions) are kept as text, not evaluated.

use std::path::Path;

use super::xml;

/// What an `<esp-router>` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub name: String,
    /// `(name, host, port)`.
    pub engines: Vec<(String, String, u16)>,
    /// `(name, engine-func)` of each publish-destination.
    pub destinations: Vec<(String, String)>,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub to: Vec<String>,
    /// `(element, text)` of each `*-expr`.
    pub exprs: Vec<(String, String)>,
}

impl Route {
    pub fn expr(&self, name: &str) -> Option<&str> {
        self.exprs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The `item` elements of `parent`'s `list` children.
fn kids<'a, 'i>(
    parent: roxmltree::Node<'a, 'i>,
    list: &str,
    item: &str,
) -> Vec<roxmltree::Node<'a, 'i>> {
    parent
        .children()
        .filter(|n| n.has_tag_name(list))
        .flat_map(|l| l.children().filter(|n| n.is_element()))
        .filter(|n| n.has_tag_name(item))
        .collect()
}

/// Reads one `<esp-router>` (alone, or the first in `<engine><esp-routers>`).
/// `Err` says what is wrong and where (`line:col`).
pub fn parse(text: &str) -> Result<Router, String> {
    let doc = xml::parse_document(Path::new("router"), text).map_err(|d| d.to_string())?;
    let at = |n: roxmltree::Node| {
        let p = doc.text_pos_at(n.range().start);
        format!("{}:{}", p.row, p.col)
    };
    let r = doc
        .descendants()
        .find(|n| n.has_tag_name("esp-router"))
        .ok_or("no <esp-router> element")?;
    let name = r
        .attribute("name")
        .ok_or_else(|| format!("{}: <esp-router> has no name", at(r)))?
        .to_string();
    let mut engines = Vec::new();
    for e in kids(r, "esp-engines", "esp-engine") {
        let need = |a: &str| {
            e.attribute(a)
                .ok_or_else(|| format!("{}: <esp-engine> has no {a}", at(e)))
        };
        let port = need("port")?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{}: esp-engine port {port:?} is not a port", at(e)))?;
        engines.push((need("name")?.to_string(), need("host")?.to_string(), port));
    }
    let mut destinations = Vec::new();
    for d in kids(r, "esp-destinations", "publish-destination") {
        let dname = d
            .attribute("name")
            .ok_or_else(|| format!("{}: <publish-destination> has no name", at(d)))?;
        let t = d
            .children()
            .find(|n| n.has_tag_name("publish-target"))
            .ok_or_else(|| format!("{}: destination '{dname}' has no <publish-target>", at(d)))?;
        let func = |f: &str| {
            t.children()
                .find(|n| n.has_tag_name(f))
                .and_then(|n| n.text())
                .map(|s| s.trim().to_string())
        };
        for f in ["project-func", "contquery-func", "window-func"] {
            if func(f).is_none_or(|v| v.is_empty()) {
                return Err(format!("{}: destination '{dname}' has no <{f}>", at(t)));
            }
        }
        let engine = func("engine-func").unwrap_or_default();
        let literal = engine
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if literal && !engine.is_empty() && !engines.iter().any(|e| e.0 == engine) {
            return Err(format!(
                "{}: destination '{dname}' names engine '{engine}', which <esp-engines> does not list",
                at(t)
            ));
        }
        destinations.push((dname.to_string(), engine));
    }
    let mut routes = Vec::new();
    for rt in kids(r, "esp-routes", "esp-route") {
        let rname = rt
            .attribute("name")
            .ok_or_else(|| format!("{}: <esp-route> has no name", at(rt)))?;
        let to: Vec<String> = rt
            .attribute("to")
            .ok_or_else(|| format!("{}: route '{rname}' has no to", at(rt)))?
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        if let Some(bad) = to.iter().find(|t| !destinations.iter().any(|d| &d.0 == *t)) {
            return Err(format!(
                "{}: route '{rname}' goes to '{bad}', which is not a destination",
                at(rt)
            ));
        }
        let exprs = rt
            .children()
            .filter(|n| n.is_element() && n.tag_name().name().ends_with("-expr"))
            .map(|n| {
                (
                    n.tag_name().name().to_string(),
                    n.text().unwrap_or("").trim().to_string(),
                )
            })
            .collect();
        routes.push(Route {
            name: rname.to_string(),
            to,
            exprs,
        });
    }
    Ok(Router {
        name,
        engines,
        destinations,
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routers_own_example_reads_and_mistakes_are_placed() {
        let x = r#"<engine><esp-routers><esp-router name="router">
          <esp-engines><esp-engine name="esp1" host="localhost" port="61003"/><esp-engine name="esp2" host="localhost" port="61007"/></esp-engines>
          <esp-destinations><publish-destination name="test" opcode="upsert"><filter-func>lt($number,50)</filter-func>
            <publish-target><engine-func>esp2</engine-func><project-func>p</project-func><contquery-func>cq1</contquery-func><window-func>ifNext(lt($number,10),'Source1','Source2')</window-func></publish-target>
          </publish-destination></esp-destinations>
          <esp-routes><esp-route name="r1" to="test"><engine-expr>esp1</engine-expr><window-expr>Compute1</window-expr></esp-route></esp-routes>
        </esp-router></esp-routers></engine>"#;
        let r = parse(x).unwrap();
        assert_eq!(r.engines.len(), 2);
        assert_eq!(
            r.destinations,
            vec![("test".to_string(), "esp2".to_string())]
        );
        assert_eq!(r.routes[0].expr("window-expr"), Some("Compute1"));
        let e = parse(&x.replace("<engine-func>esp2", "<engine-func>esp9")).unwrap_err();
        assert!(e.starts_with("4:") && e.contains("esp9"), "{e}");
        let e = parse(&x.replace("to=\"test\"", "to=\"test,nope\"")).unwrap_err();
        assert!(e.contains("'nope', which is not a destination"), "{e}");
    }
}
