//! The decoders against every CSV and XML data file in ../shared/corpus/esp,
//! each with the schema and fs properties of the window whose connector reads
//! (or, for subscriber output, writes) it in the corpus's own project models.

mod support;

use edgecm::config::fs::from_properties;
use edgecm::config::project;
use edgecm::source::{Decoder, Layout, Options, Reader, Step};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::shared;

/// One decoded event as text: opcode letter, flags letter, fields.
type Row = (char, char, Vec<Option<String>>);

struct Outcome {
    events: Vec<Row>,
    errors: Vec<String>,
}

fn decode_file(path: &Path, dec: Decoder) -> Outcome {
    let mut reader = Reader::new(dec);
    let mut file = std::fs::File::open(path).unwrap();
    let mut out = Outcome {
        events: Vec::new(),
        errors: Vec::new(),
    };
    let mut eof = false;
    for _ in 0..1_000_000 {
        loop {
            match reader.next(eof) {
                Step::Event { .. } => out.events.push((
                    reader.event().opcode.letter(),
                    reader.event().flags.letter(),
                    reader
                        .event()
                        .fields()
                        .map(|f| f.map(|v| String::from_utf8(v.to_vec()).unwrap()))
                        .collect(),
                )),
                Step::Error { at, message, .. } => out.errors.push(format!("{at}: {message}")),
                Step::NeedMore => break,
            }
        }
        if eof {
            return out;
        }
        eof = reader.fill(&mut file).unwrap() == 0;
    }
    panic!("{}: did not reach its end", path.display());
}

/// Each fs connector of every window in a model file: window name and
/// properties.
fn fs_connectors(model: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let text = std::fs::read_to_string(model).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let mut out = Vec::new();
    for c in doc
        .descendants()
        .filter(|n| n.has_tag_name("connector") && n.attribute("class") == Some("fs"))
    {
        let window = c
            .ancestors()
            .find(|n| n.tag_name().name().starts_with("window-"))
            .and_then(|w| w.attribute("name"))
            .unwrap()
            .to_string();
        let props = c
            .descendants()
            .filter(|n| n.has_tag_name("property"))
            .map(|p| {
                let v: String = p.children().filter_map(|t| t.text()).collect();
                (
                    p.attribute("name").unwrap().to_string(),
                    v.trim().to_string(),
                )
            })
            .collect();
        out.push((window, props));
    }
    out
}

/// The corpus file a connector's `fsname` names: same repository prefix,
/// ending in the file's base name.
fn corpus_file(corpus: &Path, model: &Path, fsname: &str) -> Option<PathBuf> {
    let prefix = model.file_name()?.to_str()?.split("__").next()?.to_string();
    let base = Path::new(fsname).file_name()?.to_str()?.to_string();
    std::fs::read_dir(corpus)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&format!("{prefix}__"))
                && (n.ends_with(&format!("__{base}")) || n.ends_with(&format!("_{base}")))
        })
}

fn schema_of(model: &Path, window: &str) -> (project::Schema, bool) {
    let pf = project::load(model).unwrap();
    for p in &pf.projects {
        for cq in &p.contqueries {
            for w in &cq.windows {
                if w.name == window {
                    let s = w.schema.clone().expect("window has a schema").unwrap();
                    return (s, w.autogen_key);
                }
            }
        }
    }
    panic!("{}: no window {window}", model.display());
}

/// Splits a line of the corpus (no quoted fields there) for comparison:
/// strings as written, other types without padding, empty as null.
fn columns(line: &str, schema: &project::Schema) -> Vec<Option<String>> {
    let cols: Vec<&str> = line.split(',').collect();
    let mut out = vec![Some(cols[0].trim().to_ascii_lowercase())];
    for (c, f) in cols[2..].iter().zip(&schema.fields) {
        let c = if edgecm::source::value::trims(f.ty) {
            c.trim()
        } else {
            c
        };
        out.push((!c.is_empty()).then(|| c.to_string()));
    }
    out
}

#[test]
fn every_corpus_data_file_decodes_with_its_windows_schema() {
    let corpus = shared().join("corpus/esp");
    let mut covered: BTreeMap<String, String> = BTreeMap::new();
    let mut models: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    models.sort();
    for model in &models {
        let Ok(pf) = project::load(model) else {
            continue;
        };
        if pf.projects.is_empty() {
            continue;
        }
        for (window, mut props) in fs_connectors(model) {
            let fsname = props.iter().find(|(n, _)| n == "fsname").unwrap().1.clone();
            let Some(data) = corpus_file(&corpus, model, &fsname) else {
                continue;
            };
            // Subscriber output is the same dialect, laid out by the same
            // window: read it as a publisher would.
            for (n, v) in props.iter_mut() {
                match n.as_str() {
                    "type" => *v = "pub".into(),
                    "fsname" => *v = data.display().to_string(),
                    _ => {}
                }
            }
            props.retain(|(n, _)| !matches!(n.as_str(), "snapshot" | "repeatcount" | "rate"));
            let fs = from_properties(&props, &corpus).unwrap_or_else(|e| panic!("{e:?}"));
            let (schema, autogen) = schema_of(model, &window);
            let dec = Decoder::new(
                Layout::new(&schema, autogen, fs.noautogenfield),
                Options {
                    // Compared with the text as written (times are not rewritten
                    // into the engine's form here).
                    engine_dates: None,
                    ..edgecm::source::options(&fs).unwrap()
                },
            );
            let name = data.file_name().unwrap().to_str().unwrap().to_string();
            let out = decode_file(&data, dec);
            let text = std::fs::read_to_string(&data).unwrap();
            if name == "esppy__broker_surv_restricted.csv" {
                // The file does not match restrictedSource's schema
                // (symbol*:string,venue*:int32,restricted:int32): each line
                // is a clear error.
                assert!(out.events.is_empty(), "{name}: {:?}", out.events);
                assert_eq!(out.errors.len(), text.lines().count(), "{name}");
                assert_eq!(
                    out.errors[0],
                    "line 1: 10 columns where 5 were expected (opcode, flags and 3 fields: symbol, venue, restricted)"
                );
            } else if name.ends_with(".csv") {
                assert!(out.errors.is_empty(), "{name} ({window}): {:?}", out.errors);
                let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                assert_eq!(out.events.len(), lines.len(), "{name}");
                for (ev, line) in out.events.iter().zip(&lines) {
                    let cols = columns(line, &schema);
                    assert_eq!(Some(ev.0.to_string()), cols[0], "{name}: {line}");
                    assert_eq!(&ev.2[..], &cols[1..], "{name}: {line}");
                }
            } else {
                assert!(out.errors.is_empty(), "{name}: {:?}", out.errors);
                compare_xml_events(&text, &schema, &out.events, &name);
            }
            covered.insert(name, window);
        }
    }

    // The one data file no model in the corpus reads: esppy's dateformat test
    // data. Its schema and format are ours, written from the file.
    let data = corpus.join("esppy__pubsub_dateformat.csv");
    let schema = project::Schema::parse_compact(
        "id*:int64,sensorName:string,sensorValue:double,lastUpdated:date,lastUpdatedStamp:stamp",
    )
    .unwrap();
    let mut opts = Options::new(edgecm::config::FsType::Csv);
    opts.dates = Some(edgecm::source::value::DateFormat::parse("%d%b%Y %I:%M:%S %p").unwrap());
    let out = decode_file(
        &data,
        Decoder::new(Layout::new(&schema, false, false), opts),
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.events.len(), 4);
    assert!(out.events.iter().all(|e| e.0 == 'p'));
    covered.insert("esppy__pubsub_dateformat.csv".into(), "(our schema)".into());

    let mut all: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_str().unwrap().to_string())
        .filter(|n| n.ends_with(".csv") || n.ends_with("_data.xml"))
        .collect();
    all.sort();
    let done: Vec<String> = covered.keys().cloned().collect();
    assert_eq!(done, all, "every data file is decoded with a schema");
    assert_eq!(covered["esppy__broker_surv_trades.csv"], "trades");
}

/// Each decoded event against the `<event>` elements read by roxmltree.
fn compare_xml_events(text: &str, schema: &project::Schema, got: &[Row], name: &str) {
    let doc = roxmltree::Document::parse(text).unwrap();
    let want: Vec<Row> = doc
        .descendants()
        .filter(|n| n.has_tag_name("event"))
        .map(|e| {
            let child = |name: &str| {
                e.children()
                    .find(|c| c.has_tag_name(name))
                    .and_then(|c| c.text())
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            };
            let op = child("opcode").map_or('i', |o| o.chars().next().unwrap());
            let fields = schema.fields.iter().map(|f| child(&f.name)).collect();
            (op, 'n', fields)
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len(), "{name}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "{name}");
    }
}
