//! The config model against the real files in ../shared/corpus: the seed's
//! sample, its runnable local variant, and every ESP project model.

mod support;

use edgecm::config::{project, AdapterState, Config, FieldType, FsName, FsType, Policy};
use support::shared;

#[test]
fn broker_local_checks_clean_with_its_maps_clusters_and_order() {
    let path = shared().join("corpus/cm/broker-local.xml");
    let c = Config::load(&format!("file://{}", path.display())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.manager, "broker-manager");
    let names: Vec<&str> = c.raw_sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["trades", "venuesSource", "restrictedSource"]);
    let trades = &c.raw_sources[0].fs;
    assert_eq!(trades.fstype, FsType::Csv);
    assert_eq!(trades.blocksize, 50);
    assert_eq!(trades.dateformat.as_deref(), Some("%Y-%m-%d %H:%M:%S"));
    match &trades.fsname {
        FsName::File(p) => assert!(
            p.ends_with("corpus/esp/esppy__broker_surv_trades.csv"),
            "{}",
            p.display()
        ),
        other => panic!("trades should read a file, not {other:?}"),
    }

    let m = &c.esp_maps[0];
    assert_eq!(c.clusters[m.cluster].name, "local");
    assert_eq!(c.projects[m.model].project.name, "project");
    let policies: Vec<(&str, &str, &str)> = m
        .maps
        .iter()
        .map(|mp| {
            (
                mp.name.as_str(),
                mp.destination.policy.name(),
                mp.destination.target.window.as_str(),
            )
        })
        .collect();
    assert_eq!(
        policies,
        [
            ("venuesMap", "multicast", "venuesSource"),
            ("restrictedMap", "multicast", "restrictedSource"),
            ("tradesMap", "hash", "trades"),
        ]
    );
    let trades_dest = &m.maps[2].destination;
    let Policy::Hash { fields, durable } = &trades_dest.policy else {
        panic!("tradesMap is hash")
    };
    assert!(!durable);
    assert_eq!(trades_dest.schema.fields[fields[0]].name, "broker");
    assert_eq!(fields, &[8], "broker is the 9th field of the trades schema");

    // G1 (venues, restricted, both to finish) before G2 (trades).
    let o = &m.orchestration;
    let wave_names: Vec<Vec<&str>> = o
        .waves
        .iter()
        .map(|w| w.iter().map(|&g| o.groups[g].name.as_str()).collect())
        .collect();
    assert_eq!(wave_names, [vec!["G1"], vec!["G2"]]);
    assert!(o.groups[0]
        .entries
        .iter()
        .all(|e| e.state == AdapterState::Finished));

    let cl = &c.clusters[0];
    let engines: Vec<(&str, u16)> = cl
        .engines
        .iter()
        .map(|e| (e.name.as_str(), e.ha_port))
        .collect();
    assert_eq!(engines, [("esp1", 41001), ("esp2", 41004), ("esp3", 41007)]);
    assert_eq!(cl.spares[0].name, "esp4");
    assert_eq!(cl.redundancy, 1);

    // The model's source windows carry their own fs publishers: warned, not failed.
    assert_eq!(c.warnings.len(), 3, "{:#?}", c.warnings);
    assert!(c
        .warnings
        .iter()
        .all(|w| w.message.contains("carries its own publisher connector")));
}

#[test]
fn seed_sample_fails_only_for_binary_fstype_and_missing_broker_xml() {
    let path = shared().join("corpus/cm/seed-sample.xml");
    let e =
        Config::load(&path.display().to_string()).expect_err("the seed sample cannot run as is");
    let got: Vec<(u32, u32, &str)> = e
        .errors
        .iter()
        .map(|d| (d.line, d.col, d.message.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    // <project-url>file://broker.xml</project-url> on line 6
    assert_eq!((got[0].0, got[0].1), (6, 21));
    assert!(
        got[0].2.contains("broker.xml") && got[0].2.contains("cannot read"),
        "{}",
        got[0].2
    );
    // <property name='fstype'>binary</property> on line 15
    assert_eq!((got[1].0, got[1].1), (15, 17));
    assert!(
        got[1]
            .2
            .contains("SAS binary event format is not supported"),
        "{}",
        got[1].2
    );
    assert!(
        got[1].2.contains("accepted: csv, json, xml"),
        "{}",
        got[1].2
    );
    assert!(e.errors.iter().all(|d| d.file == path));
}

/// (file, project, contquery, window, schema as `name*:type,...`)
const DECLARED: &[(&str, &str, &str, &str, &str)] = &[
    ("esppy__broker_surv_model.xml", "project", "query", "trades",
     "id*:int64,symbol:string,currency:int32,time:int64,msecs:int32,price:double,quant:int32,venue:int32,broker:int32,buyer:int32,seller:int32,buysellflg:int32,tradetime:stamp"),
    ("esppy__broker_surv_model.xml", "project", "query", "brokersSource",
     "broker*:int32,brokerName:string,brokerage:string,brokerAddress:string,brokerEmail:string,brokerPhone:string,brokerSms:string,brokerMms:string"),
    ("esppy__broker_surv_model.xml", "project", "query", "restrictedSource", "symbol*:string,venue*:int32,restricted:int32"),
    ("esppy__broker_surv_model.xml", "project", "query", "violations", "id*:int64,violation:string"),
    ("esppy__filter_on_opcode_model.xml", "project", "contQuery", "sourceWindow",
     "ID*:int64,symbol:string,price:money,quant:int32,vwap:double,trade_date:date,tstamp:stamp"),
    ("esppy__model_sa.xml", "ESPUnitTestProjectSA", "contquery", "w_data", "id*:int64,x_c:double,y_c:double"),
    ("esppy__model_sa.xml", "ESPUnitTestProjectSA", "contquery", "w_calculate",
     "y_c:double,x_c:double,id*:int64,min_x:double,max_x:double,alert:int32"),
    ("esppy__aggregate_userdef_model.xml", "project", "contQuery", "sw_01", "ID*:int32,symbol:string,quantity:int32,price:double"),
    ("esppy__xml_connector_publisher_model.xml", "xml_connector_publisher", "cq_01", "tradesWindow",
     "ID*:int32,symbol:string,currency:int32,udate:date,msecs:int32,price:double,quant:int32,venue:int32,broker:int32,buyer:int32,seller:int32,buysellflg:int32"),
    ("esp-kubernetes__example-1.xml", "array", "cq", "sw", "id*:int32,gb:int32,dbl:array(dbl)"),
    ("esp-studio-examples__union_model.xml", "union", "contquery_01", "sourceWindow_01", "ID*:int32,symbol:string,price:double"),
    ("iot-esp-ha-using-kafka__kafka1.xml", "kafka1", "cq1", "kafka_incoming", "index_esp*:int64,user:double,idl:double"),
    ("iot-esp-routers__source_project.xml", "source_project", "cq1", "Source1", "id*:double,name:string,number:double"),
    ("iot-esp-routers__destination_project.xml", "destination_project", "cq1", "Source2", "id*:double,name:string,number:double,number2:double"),
];

fn compact(s: &edgecm::config::Schema) -> String {
    s.fields
        .iter()
        .map(|f| format!("{}{}:{}", f.name, if f.key { "*" } else { "" }, f.ty))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn every_corpus_project_model_parses_and_yields_its_declared_schemas() {
    let dir = shared().join("corpus/esp");
    let mut models = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("<project ") && !text.contains("<project>") {
            continue; // routers and event data, not project models
        }
        let file = project::load(&path).unwrap_or_else(|d| panic!("{d}"));
        assert!(!file.projects.is_empty(), "{}", path.display());
        for p in &file.projects {
            assert!(
                p.xml.starts_with("<project") && p.xml.ends_with("</project>"),
                "{}",
                path.display()
            );
            for cq in &p.contqueries {
                for w in &cq.windows {
                    if let Some(Err(d)) = &w.schema {
                        panic!("{}: window {} schema: {d}", path.display(), w.name);
                    }
                    if w.is_source() {
                        assert!(
                            matches!(&w.schema, Some(Ok(s)) if !s.fields.is_empty()),
                            "{}: {}",
                            path.display(),
                            w.name
                        );
                    }
                }
            }
        }
        models += 1;
    }
    assert!(models >= 9, "found {models} project models");

    for (file, proj, cq, window, want) in DECLARED {
        let f = project::load(&dir.join(file)).unwrap();
        let p = f
            .project(proj)
            .unwrap_or_else(|| panic!("{file}: no project {proj}"));
        let w = p
            .contquery(cq)
            .and_then(|q| q.windows.iter().find(|w| w.name == *window))
            .unwrap_or_else(|| panic!("{file}: no window {cq}/{window}"));
        let got = compact(w.schema.as_ref().unwrap().as_ref().unwrap());
        assert_eq!(&got, want, "{file} {window}");
        // The compact form round-trips through our own schema-string parser.
        assert_eq!(
            compact(&edgecm::config::Schema::parse_compact(want).unwrap()),
            *want
        );
    }
}

#[test]
fn field_type_aliases_parse_to_one_type() {
    assert_eq!(FieldType::parse("array(double)"), Some(FieldType::ArrayDbl));
    assert_eq!(FieldType::parse("ARRAY(I64)"), Some(FieldType::ArrayI64));
    assert_eq!(FieldType::parse("array(int32)"), Some(FieldType::ArrayI32));
    assert_eq!(FieldType::parse("float"), None);
}
