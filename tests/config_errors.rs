//! A table of broken configs: each is tests/data/valid.xml with one edit, and
//! must fail with exactly the listed diagnostics (`file:line:col: message`).

mod support;

use std::path::PathBuf;

use edgecm::config::Config;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn valid_text() -> String {
    std::fs::read_to_string(data().join("valid.xml")).expect("tests/data/valid.xml")
}

/// Applies `(find, replace)` edits (first occurrence each) to valid.xml and
/// returns every error as `file:line:col: message`, file by its name only.
fn errors_of(edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = valid_text();
    for (find, replace) in edits {
        let at = text
            .find(find)
            .unwrap_or_else(|| panic!("edit target {find:?} not in valid.xml"));
        text.replace_range(at..at + find.len(), replace);
    }
    match Config::parse(&data().join("config.xml"), &text) {
        Ok(_) => vec![],
        Err(e) => e
            .errors
            .iter()
            .map(|d| {
                let name = d.file.file_name().unwrap().to_string_lossy();
                // Paths inside messages are machine-specific: show them from tests/data.
                let message = d.message.replace(&format!("{}/", data().display()), "");
                format!("{name}:{}:{}: {message}", d.line, d.col)
            })
            .collect(),
    }
}

/// Values SAS's own clients write: `snapshot` on a publisher (esppy sets
/// it), `addcsvopcode=insert` (esppy's value).
#[test]
fn publisher_values_sas_clients_write_are_accepted() {
    let pub_ = "<property name='type'>pub</property>";
    for extra in [
        "<property name='snapshot'>false</property>",
        "<property name='snapshot'>true</property>",
        "<property name='addcsvopcode'>insert</property>",
    ] {
        let with = format!("{pub_}{extra}");
        assert_eq!(errors_of(&[(pub_, &with)]), Vec::<String>::new(), "{extra}");
    }
    let bad = format!("{pub_}<property name='addcsvopcode'>upsert</property>");
    let e = errors_of(&[(pub_, &bad)]);
    assert!(e[0].contains("accepted: true, false, insert"), "{e:?}");
}

/// `<esp-engine url>` (ours): scheme, host, port and path prefix in one;
/// `connect` names where to connect instead.
#[test]
fn engines_by_url_and_connect_address() {
    use edgecm::config::parse_engine_url as url;
    assert_eq!(
        url("https://esp-server.example.com/SASEventStreamProcessingServer/p1/").unwrap(),
        (
            "esp-server.example.com".into(),
            443,
            true,
            "/SASEventStreamProcessingServer/p1".into()
        )
    );
    assert_eq!(
        url("https://h.example:8443/SASEventStreamProcessingServer/p1/eventStreamProcessing/v1/")
            .unwrap(),
        (
            "h.example".into(),
            8443,
            true,
            "/SASEventStreamProcessingServer/p1".into()
        )
    );
    assert_eq!(
        url("http://[::1]:31415").unwrap(),
        ("::1".into(), 31415, false, String::new())
    );
    assert_eq!(
        url("http://h/SASESP").unwrap(),
        ("h".into(), 80, false, String::new())
    );
    for bad in [
        "ftp://h/",
        "https://",
        "https://h:0/",
        "https://h:x/",
        "https://h/p?q=1",
        "h:1",
    ] {
        assert!(url(bad).is_err(), "{bad}");
    }
    let e = edgecm::config::parse_engine(
        "t",
        "<esp-engine name='e' url='https://h.example/p/' connect='127.0.0.1:8443'/>",
    )
    .unwrap();
    assert_eq!(
        (e.host.as_str(), e.ha_port, e.tls, e.prefix.as_str()),
        ("h.example", 443, true, "/p")
    );
    assert_eq!(e.connect, Some(("127.0.0.1".to_string(), 8443)));
    let errs = |x: &str| {
        edgecm::config::parse_engine("t", x)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let both = errs("<esp-engine name='e' url='https://h/' host='h' ha_port='1'/>");
    assert!(both.contains("host and url name the same thing"), "{both}");
    let bad = errs("<esp-engine name='e' host='h' port='1' ha_port='2' connect='nowhere'/>");
    assert!(
        bad.contains("connect \"nowhere\" is not accepted; accepted: HOST:PORT"),
        "{bad}"
    );
    let scheme = errs("<esp-engine name='e' url='ftp://h/'/>");
    assert!(
        scheme.contains("t:1:") && scheme.contains("http or https"),
        "{scheme}"
    );
}

#[test]
fn the_valid_base_config_is_valid() {
    let c =
        Config::parse(&data().join("config.xml"), &valid_text()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.raw_sources.len(), 2);
    assert_eq!(c.clusters[0].engines.len(), 2);
    assert_eq!(c.clusters[0].spares.len(), 1);
    assert!(c.clusters[0].engines[1].tls);
    assert_eq!(c.clusters[0].engines[1].auth_user.as_deref(), Some("svc"));
    // d1 sets opcode='upsert' (it overrides each event's); d2 sets none (events keep theirs).
    use edgecm::event::Opcode;
    let (d1, d2) = (
        &c.esp_maps[0].maps[0].destination,
        &c.esp_maps[0].maps[1].destination,
    );
    assert_eq!(d1.opcode_for(Opcode::Delete), Opcode::Upsert);
    assert_eq!(d2.opcode_for(Opcode::Delete), Opcode::Delete);
}

struct Case {
    name: &'static str,
    edits: &'static [(&'static str, &'static str)],
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "unknown_element",
        edits: &[("<raw-sources>", "<raw-sources><bogus/>")],
        expect: &[
            "config.xml:10:20: unknown element <bogus> in <raw-sources>; accepted: <raw-source>",
        ],
    },
    Case {
        name: "unknown_attribute",
        edits: &[("<esp-engine name='e1'", "<esp-engine colour='red' name='e1'")],
        expect: &[
            "config.xml:61:25: unknown attribute 'colour' on <esp-engine>; accepted: name, host, port, ha_port, tls, url, connect",
        ],
    },
    Case {
        name: "missing_class_attribute",
        edits: &[("<raw-source name='trades' class='fs'>", "<raw-source name='trades'>")],
        expect: &[
            "config.xml:11:9: <raw-source> is missing its 'class' attribute",
        ],
    },
    Case {
        name: "missing_project_name_element",
        edits: &[("<project-name>p1</project-name>", "")],
        expect: &[
            "config.xml:5:9: <project> is missing its <project-name> element",
        ],
    },
    Case {
        name: "duplicate_engine",
        edits: &[("name='e2'", "name='e1'")],
        expect: &[
            "config.xml:62:25: engine name 'e1' is already used in this cluster (engines and spares share one namespace)",
        ],
    },
    Case {
        name: "duplicate_engine_between_engines_and_spares",
        edits: &[("name='s1'", "name='e2'")],
        expect: &[
            "config.xml:65:25: engine name 'e2' is already used in this cluster (engines and spares share one namespace)",
        ],
    },
    Case {
        name: "duplicate_cluster",
        edits: &[("</esp-clusters>", "<esp-cluster name='c1'><esp-engines><esp-engine name='x' host='h' port='1' ha_port='2'/></esp-engines></esp-cluster></esp-clusters>")],
        expect: &[
            "config.xml:68:20: esp-cluster name 'c1' is already used; names must be unique",
        ],
    },
    Case {
        name: "duplicate_map",
        edits: &[("<map name='venuesMap'>", "<map name='tradesMap'>")],
        expect: &[
            "config.xml:39:16: map name 'tradesMap' is already used; names must be unique",
        ],
    },
    Case {
        name: "duplicate_esp_map",
        edits: &[("</esp-maps>", "<esp-map name='map1' cluster-ref='c1' model-ref='model'/></esp-maps>")],
        expect: &[
            "config.xml:57:16: esp-map name 'map1' is already used; names must be unique",
        ],
    },
    Case {
        name: "duplicate_raw_source",
        edits: &[("<raw-source name='venues'", "<raw-source name='trades'")],
        expect: &[
            "config.xml:18:21: raw-source name 'trades' is already used; names must be unique",
            "config.xml:40:19: source 'venues' names no raw-source; defined: trades",
            "config.xml:51:55: adapter 'venues' names no raw-source; defined: trades",
        ],
    },
    Case {
        name: "duplicate_adapter_group",
        edits: &[("adapter-group name='G2'", "adapter-group name='G1'")],
        expect: &[
            "config.xml:52:30: adapter-group name 'G1' is already used; names must be unique",
            "config.xml:54:38: target 'G2' names no adapter-group; defined: G1",
        ],
    },
    Case {
        name: "from_source_not_a_raw_source",
        edits: &[("<from source='trades'/>", "<from source='nope'/>")],
        expect: &[
            "config.xml:29:19: source 'nope' names no raw-source; defined: trades, venues",
        ],
    },
    Case {
        name: "cluster_ref_not_defined",
        edits: &[("cluster-ref='c1'", "cluster-ref='c9'")],
        expect: &[
            "config.xml:27:30: cluster-ref 'c9' names no esp-cluster; defined: c1",
        ],
    },
    Case {
        name: "model_ref_not_defined",
        edits: &[("model-ref='model'", "model-ref='m9'")],
        expect: &[
            "config.xml:27:47: model-ref 'm9' names no project; defined: model",
        ],
    },
    Case {
        name: "target_window_not_found",
        edits: &[("<window-func>trades</window-func>", "<window-func>nope</window-func>")],
        expect: &[
            "config.xml:34:17: window-func 'nope' is not a window of p1/cq; its source windows: trades, venues, oddtypes, fed",
        ],
    },
    Case {
        name: "target_window_not_a_source",
        edits: &[("<window-func>venues</window-func>", "<window-func>big</window-func>")],
        expect: &[
            "config.xml:45:17: window 'big' is a <window-filter>; events can be published only into source windows: trades, venues, oddtypes, fed",
        ],
    },
    Case {
        name: "target_contquery_not_found",
        edits: &[("<contquery-func>cq</contquery-func>", "<contquery-func>cqx</contquery-func>")],
        expect: &[
            "config.xml:33:17: contquery-func 'cqx' is not a contquery of project 'p1'; it has: cq",
        ],
    },
    Case {
        name: "target_project_not_the_model",
        edits: &[("<project-func>p1</project-func>", "<project-func>p2</project-func>")],
        expect: &[
            "config.xml:32:17: project-func 'p2' is not the project of model-ref 'model' (project-name 'p1')",
        ],
    },
    Case {
        name: "hash_field_not_in_schema",
        edits: &[("<field name='broker'/>", "<field name='brokr'/>")],
        expect: &[
            "config.xml:36:30: hash field 'brokr' is not in window 'trades' schema; its fields: id, symbol, broker, price, when",
        ],
    },
    Case {
        name: "bad_opcode",
        edits: &[("opcode='upsert'", "opcode='inject'")],
        expect: &[
            "config.xml:30:41: opcode \"inject\" is not accepted; accepted: insert, update, upsert, delete, safedelete",
        ],
    },
    Case {
        name: "redundancy_zero",
        edits: &[("redundancy='1'", "redundancy='0'")],
        expect: &[
            "config.xml:59:32: redundancy \"0\" is not accepted; accepted: a whole number from 1 to 2 (the number of engines)",
        ],
    },
    Case {
        name: "redundancy_above_engines",
        edits: &[("redundancy='1'", "redundancy='3'")],
        expect: &[
            "config.xml:59:32: redundancy \"3\" is not accepted; accepted: a whole number from 1 to 2 (the number of engines)",
        ],
    },
    Case {
        name: "redundancy_with_multicast",
        edits: &[("redundancy='1'", "redundancy='2'")],
        expect: &[
            "config.xml:41:13: <multicast-destination> cannot use cluster 'c1' with redundancy 2: only hash and durable hash support redundancy",
        ],
    },
    Case {
        name: "port_out_of_range",
        edits: &[("port='41003'", "port='70000'")],
        expect: &[
            "config.xml:61:52: port \"70000\" is not accepted; accepted: a port from 1 to 65535",
        ],
    },
    Case {
        name: "ha_port_not_a_number",
        edits: &[("ha_port='41004'", "ha_port='http'")],
        expect: &[
            "config.xml:62:65: ha_port \"http\" is not accepted; accepted: a port from 1 to 65535",
        ],
    },
    Case {
        name: "adapter_not_a_raw_source",
        edits: &[("adapter='venues'", "adapter='venus'")],
        expect: &[
            "config.xml:51:55: adapter 'venus' names no raw-source; defined: trades, venues",
        ],
    },
    Case {
        name: "edge_names_unknown_group",
        edits: &[("target='G2'", "target='G3'")],
        expect: &[
            "config.xml:54:38: target 'G3' names no adapter-group; defined: G1, G2",
        ],
    },
    Case {
        name: "edges_with_a_cycle",
        edits: &[("<edge source='G1' target='G2'/>", "<edge source='G1' target='G2'/><edge source='G2' target='G1'/>")],
        expect: &[
            "config.xml:54:51: orchestration edges form a cycle through adapter-groups G1, G2; edges must go one way",
        ],
    },
    Case {
        name: "unknown_fs_property",
        edits: &[("<property name='fsname'>trades.csv</property>", "<property name='filename'>trades.csv</property>")],
        expect: &[
            "config.xml:11:9: raw-source 'trades': raw-source is missing the required property 'fsname'",
            "config.xml:15:13: raw-source 'trades': unknown property 'filename' for class fs; accepted: type, fstype, fsname, blocksize, transactional, header, growinginputfile, dateformat, rate, repeatcount, maxevents, prebuffer, noautogenfield, addcsvopcode, addcsvflags, csvfielddelimiter, ignorecsvparseerrors, publishwithupsert, configfilesection, listenaddress, snapshot",
        ],
    },
    Case {
        name: "binary_fstype",
        edits: &[("<property name='fstype'>csv</property>", "<property name='fstype'>binary</property>")],
        expect: &[
            "config.xml:14:13: raw-source 'trades': fstype 'binary': the SAS binary event format is not supported (its layout is undocumented); accepted: csv, json, xml",
        ],
    },
    Case {
        name: "unknown_fstype",
        edits: &[("<property name='fstype'>csv</property>", "<property name='fstype'>parquet</property>")],
        expect: &[
            "config.xml:14:13: raw-source 'trades': fstype \"parquet\" is not a known format; accepted: csv, json, xml",
        ],
    },
    Case {
        name: "subscriber_type",
        edits: &[("<property name='type'>pub</property>", "<property name='type'>sub</property>")],
        expect: &[
            "config.xml:13:13: raw-source 'trades': type 'sub': a raw-source only publishes into the grid; accepted: pub",
        ],
    },
    Case {
        name: "subscriber_only_property",
        edits: &[("<property name='type'>pub</property>", "<property name='type'>pub</property><property name='collapse'>true</property>")],
        expect: &[
            "config.xml:13:49: raw-source 'trades': property 'collapse' belongs to fs subscribers; a raw-source is a publisher. Accepted: type, fstype, fsname, blocksize, transactional, header, growinginputfile, dateformat, rate, repeatcount, maxevents, prebuffer, noautogenfield, addcsvopcode, addcsvflags, csvfielddelimiter, ignorecsvparseerrors, publishwithupsert, configfilesection, listenaddress, snapshot",
        ],
    },
    Case {
        name: "blocksize_zero",
        edits: &[("<property name='type'>pub</property>", "<property name='type'>pub</property><property name='blocksize'>0</property>")],
        expect: &[
            "config.xml:13:49: raw-source 'trades': blocksize \"0\" is not accepted; accepted: a whole number >= 1",
        ],
    },
    Case {
        name: "unsupported_class",
        edits: &[("class='fs'", "class='kafka'")],
        expect: &[
            "config.xml:11:35: raw-source class 'kafka' is not supported; accepted: fs",
        ],
    },
    Case {
        name: "expression_in_window_func",
        edits: &[("<window-func>trades</window-func>", "<window-func>ifNext(lt($x,1),'a')</window-func>")],
        expect: &[
            "config.xml:34:17: <window-func> \"ifNext(lt($x,1),'a')\" is an expression; only literal names are supported yet (e.g. <window-func>trades</window-func>)",
        ],
    },
    Case {
        name: "reserved_engine_name",
        edits: &[("name='e1'", "name='esp_local'")],
        expect: &[
            "config.xml:61:25: engine name 'esp_local' is reserved by ESP; choose another",
        ],
    },
    Case {
        name: "bad_durable_value",
        edits: &[("<hash-destination name='d1'", "<hash-destination durable='maybe' name='d1'")],
        expect: &[
            "config.xml:30:31: 'durable' of <hash-destination> is \"maybe\"; accepted: true, false",
        ],
    },
    Case {
        name: "durable_on_multicast",
        edits: &[("<multicast-destination name='d2'", "<multicast-destination durable='true' name='d2'")],
        expect: &[
            "config.xml:41:36: unknown attribute 'durable' on <multicast-destination>; accepted: name, opcode",
        ],
    },
    Case {
        name: "two_cluster_managers",
        edits: &[("</esp-cluster-managers>", "<esp-cluster-manager name='m2'/></esp-cluster-managers>")],
        expect: &[
            "config.xml:70:3: <esp-cluster-managers> holds only one <esp-cluster-manager> (as dfesp_cluster_manager); run one edgecm per manager",
        ],
    },
    Case {
        name: "bad_adapter_state",
        edits: &[("state='started'", "state='stopped'")],
        expect: &[
            "config.xml:51:72: adapter state \"stopped\" is not accepted; accepted: started, finished",
        ],
    },
    Case {
        name: "project_url_not_file",
        edits: &[("file://model.xml", "http://x/model.xml")],
        expect: &[
            "config.xml:6:11: project-url \"http://x/model.xml\" is not supported; accepted: file://PATH (relative to the config file's folder)",
        ],
    },
    Case {
        name: "project_file_missing",
        edits: &[("file://model.xml", "file://missing.xml")],
        expect: &[
            "config.xml:6:11: project file missing.xml: cannot read: No such file or directory (os error 2)",
        ],
    },
    Case {
        name: "project_file_not_well_formed",
        edits: &[("file://model.xml", "file://broken-model.xml")],
        expect: &[
            "broken-model.xml:6:7: not well-formed XML: expected 'window-source' tag, not 'windows' at 6:7",
        ],
    },
    Case {
        name: "project_name_not_in_file",
        edits: &[("<project-name>p1</project-name>", "<project-name>p2</project-name>")],
        expect: &[
            "config.xml:7:11: project 'p2' is not in model.xml; it holds: p1",
        ],
    },
    Case {
        name: "target_schema_has_unknown_type",
        edits: &[("<window-func>venues</window-func>", "<window-func>oddtypes</window-func>")],
        expect: &[
            "model.xml:20:11: field 'v' has unknown type \"float\"; accepted: int32, int64, double, money, string, rstring, date, stamp, blob, array(dbl), array(double), array(i32), array(int32), array(i64), array(int64)",
        ],
    },
    Case {
        name: "config_not_well_formed",
        edits: &[("</map>", "</mapp>")],
        expect: &[
            "config.xml:38:11: not well-formed XML: expected 'map' tag, not 'mapp' at 38:11",
        ],
    },
    Case {
        name: "two_destinations_in_one_map",
        edits: &[("</hash-destination>", "</hash-destination><multicast-destination name='d3'><publish-target><project-func>p1</project-func><contquery-func>cq</contquery-func><window-func>trades</window-func></publish-target></multicast-destination>")],
        expect: &[
            "config.xml:37:32: <map> holds one destination; put a second one in its own <map>",
        ],
    },
    Case {
        name: "map_without_destination",
        edits: &[("<multicast-destination name='d2'>", "<multicast-destination-x name='d2'>"), ("</multicast-destination>", "</multicast-destination-x>")],
        expect: &[
            "config.xml:39:11: <map> has no destination; accepted: <multicast-destination>, <roundrobin-destination>, <hash-destination>",
            "config.xml:41:13: unknown element <multicast-destination-x> in <map>; accepted: <from>, <multicast-destination>, <roundrobin-destination>, <hash-destination>",
        ],
    },
    Case {
        name: "hash_without_fields",
        edits: &[("<fields><field name='broker'/></fields>", "")],
        expect: &[
            "config.xml:30:13: <hash-destination> is missing its <fields> element",
        ],
    },
    Case {
        name: "listen_port_zero",
        edits: &[("<property name='fsname'>:5555</property>", "<property name='fsname'>:0</property>")],
        expect: &[
            "config.xml:22:13: raw-source 'venues': fsname \":0\": port \"0\" is outside 1..=65535",
        ],
    },
    Case {
        name: "bad_rate",
        edits: &[("<property name='type'>pub</property>", "<property name='type'>pub</property><property name='rate'>fast</property>")],
        expect: &[
            "config.xml:13:49: raw-source 'trades': rate \"fast\" is not accepted; accepted: a number of events per second > 0",
        ],
    },
    Case {
        name: "text_in_container",
        edits: &[("<esp-engines>", "<esp-engines>oops")],
        expect: &[
            "config.xml:60:24: unexpected text \"oops\" in <esp-engines>; it holds only elements",
        ],
    },
    Case {
        name: "wrong_root",
        edits: &[("<engine>", "<engin>"), ("</engine>", "</engin>")],
        expect: &[
            "config.xml:1:1: root element is <engin>; accepted: <engine> holding <esp-cluster-managers>, or <esp-cluster-managers>",
        ],
    },
];

#[test]
fn every_broken_config_fails_with_exactly_its_diagnostics() {
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for case in CASES {
        let got = errors_of(case.edits);
        if got.is_empty() {
            failures.push(format!("{}: config was accepted", case.name));
        } else if got != case.expect {
            failures.push(format!(
                "{}:\n  expected {:#?}\n  got {:#?}",
                case.name, case.expect, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// Hostile XML (issue 10): entity expansion is refused (no DTD at all), a
/// node flood and deep nesting end in a positioned error, never a crash or
/// a memory blow-up.
#[test]
fn hostile_xml_is_refused_cheaply() {
    let p = std::path::Path::new("/x/cm.xml");
    let lol = "<?xml version='1.0'?><!DOCTYPE l [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]><engine>&b;</engine>";
    let e = edgecm::config::Config::parse(p, lol)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/x/cm.xml:1:") && e.contains("DTD"), "{e}");
    let deep = format!(
        "<engine>{}{}</engine>",
        "<a>".repeat(200_000),
        "</a>".repeat(200_000)
    );
    let e = edgecm::config::Config::parse(p, &deep)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/x/cm.xml:1:") && e.contains("nodes limit"),
        "{e}"
    );
    let deep = format!(
        "<engine>{}{}</engine>",
        "<a>".repeat(50_000),
        "</a>".repeat(50_000)
    );
    let e = edgecm::config::Config::parse(p, &deep)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/x/cm.xml:"), "{e}");
    let e = edgecm::config::parse_engine("PUT body", &deep).unwrap_err();
    assert!(!e.is_empty());
}
