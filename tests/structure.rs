//! The house rules of issue 25, checked on the source tree: the floors that
//! `src/lib.rs` lists (its "# Floors" docs, ground floor first), no module
//! importing one on a floor above its own (so no circle between top-level
//! modules), and no source file over 700 lines. A new module must be given
//! its floor there.

use std::path::{Path, PathBuf};

/// Top-level modules, ground floor first: the backticked module names of
/// the "# Floors" section of `src/lib.rs`'s docs.
fn floors(lib: &str) -> Vec<String> {
    let section: String = lib
        .lines()
        .skip_while(|l| !l.starts_with("//! # Floors"))
        .skip(1)
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_string)
        .collect()
}

const LINES_MAX: usize = 700;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The hot path's crate (`wire/`): its files are held to the same length.
fn wire() -> Vec<PathBuf> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("wire/src"),
        &mut files,
    );
    files
}

fn src() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    (root, files)
}

/// The top-level module a file belongs to (`None`: lib.rs, main.rs).
fn module_of(root: &Path, f: &Path) -> Option<String> {
    let rel = f.strip_prefix(root).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let m = first.trim_end_matches(".rs").to_string();
    (m != "lib" && m != "main").then_some(m)
}

/// `crate::NAME` paths in code (comments and the unit tests left out).
fn imports(text: &str) -> Vec<String> {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_top_level_module_has_a_floor_and_lib_rs_lists_them_all() {
    let (root, files) = src();
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let floors = floors(&lib);
    assert!(floors.len() > 10, "lib.rs lists its floors: {floors:?}");
    for f in &files {
        if let Some(m) = module_of(&root, f) {
            assert!(
                floors.contains(&m),
                "{m} ({}) has no floor in lib.rs",
                f.display()
            );
            assert!(
                lib.contains(&format!("pub mod {m};")),
                "lib.rs does not declare {m}"
            );
        }
    }
}

#[test]
fn no_module_imports_one_on_a_floor_above_its_own() {
    let (root, files) = src();
    let floors = floors(&std::fs::read_to_string(root.join("lib.rs")).unwrap());
    let floor = |m: &str| floors.iter().position(|f| f == m);
    let mut wrong = Vec::new();
    for f in &files {
        let Some(m) = module_of(&root, f) else {
            continue;
        };
        let here = floor(&m).unwrap_or(usize::MAX);
        let text = std::fs::read_to_string(f).unwrap();
        for i in imports(&text) {
            if i != m && floor(&i).is_some_and(|there| there > here) {
                wrong.push(format!("{} imports crate::{i}", f.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports that run up a floor:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_source_file_is_over_700_lines() {
    let (_, mut files) = src();
    files.extend(wire());
    assert!(files.len() > 100, "both crates' sources: {}", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > LINES_MAX).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split along a seam:\n{}", long.join("\n"));
}

#[test]
fn the_import_scan_sees_paths_and_skips_comments() {
    let text = "use crate::journal::Position;\n// crate::daemon in a comment\nlet x = crate::route::ids::EngineIds::default(); // crate::admin\n#[cfg(test)]\nuse crate::cli;";
    assert_eq!(imports(text), vec!["journal", "route"]);
}
