//! Engines end to end on 127.0.0.1: the journal's blocks published by
//! senders to `edgecm engine` stand-ins (the real binary), and the HTTP
//! client against servers that misbehave.

mod support;

use async_executor::LocalExecutor;
use async_io::Async;
use edgecm::config::project::Schema;
use edgecm::config::FsType;
use edgecm::engine::deadletter::DeadLetters;
use edgecm::engine::encode::{Tag, Window};
use edgecm::engine::sender::{Deploy, Sender, Settings, Shared};
use edgecm::engine::State;
use edgecm::http::client::{Client, HttpError, BODY_KEEP};
use edgecm::journal::block::BlockWriter;
use edgecm::journal::{Journal, Limits, MemStorage, NewRecord, Position};
use edgecm::route::EngineSet;
use edgecm::source::{decode_all, Decoder, Layout, Options, OwnedEvent as Event};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::net::TcpListener;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};
use support::StandIn;

const PROJECT: &str = r#"<project name="trading" pubsub="auto" threads="1">
  <contqueries>
    <contquery name="cq">
      <windows>
        <window-source name="trades" insert-only="true">
          <schema>
            <fields>
              <field name="id" type="int64" key="true"/>
              <field name="broker" type="string"/>
              <field name="price" type="double"/>
              <field name="qty" type="int32"/>
              <field name="ts" type="stamp"/>
              <field name="note" type="string"/>
            </fields>
          </schema>
        </window-source>
      </windows>
    </contquery>
  </contqueries>
</project>"#;

/// Status, body, truncated.
type Answer = (u16, Vec<u8>, bool);

fn schema() -> Schema {
    Schema::parse_compact("id*:int64,broker:string,price:double,qty:int32,ts:stamp,note:string")
        .expect("schema")
}

fn window() -> Window {
    let s = schema();
    Window {
        label: "trading/cq/trades".into(),
        inject_path: "/windows/trading/cq/trades/state?value=injected".into(),
        project: "trading".into(),
        fields: Tag::all(s.fields.iter().map(|f| (f.name.as_str(), f.key))),
        opcode: None,
        transactional: false,
    }
}

/// Events with text that needs escaping (XML) and quoting (CSV), nulls,
/// several opcodes and flags.
/// Fewer bytes than any event of [`events`] takes as XML (`<event ...>`
/// with five `<value>` elements): bounds the events in one request.
const EVENT_XML_MIN: usize = 100;

fn events(n: u64) -> Vec<Event> {
    const BROKERS: [&str; 6] = ["A&B", "x,y", "say \"hi\"", "ünï", "<tag>", "plain"];
    (0..n)
        .map(|i| {
            let op = [b'i', b'u', b'p'][(i % 3) as usize];
            let flags = if i % 13 == 0 { b'p' } else { b'n' };
            let note = match i % 7 {
                0 => None,
                1 => Some("tab\there; semi".to_string()),
                _ => Some(format!("n{i}")),
            };
            let fields = vec![
                Some(i.to_string()),
                Some(BROKERS[(i % 6) as usize].to_string()),
                Some(format!("{}.{}", i % 1000, i % 97)),
                Some((i % 5000).to_string()),
                Some(format!(
                    "2024-05-0{} 12:34:56.{:06}",
                    1 + i % 9,
                    i % 1_000_000
                )),
                note,
            ];
            (
                op,
                flags,
                fields
                    .into_iter()
                    .map(|f| f.map(String::into_bytes))
                    .collect(),
            )
        })
        .collect()
}

/// A journal holding `evs` in blocks of `blocksize`, each destined to `dest`.
fn journal(
    evs: &[Event],
    blocksize: usize,
    engines: &[u8],
    dest: EngineSet,
) -> Journal<MemStorage> {
    let mut j = Journal::open(MemStorage::new(1), Limits::default()).expect("journal");
    for &e in engines {
        j.add_engine(e);
    }
    let mut w = BlockWriter::default();
    for chunk in evs.chunks(blocksize) {
        w.clear();
        for (op, fl, fields) in chunk {
            w.push(*op, *fl, fields.iter().map(|f| f.as_deref()));
        }
        let r = NewRecord {
            dest,
            source: 0,
            target: 0,
            position: Position::None,
            count: w.count,
            time_ms: 0,
            origin: edgecm::journal::Origin::NONE,
        };
        j.append(r, &w.buf).expect("append");
    }
    j.sync().expect("sync");
    j
}

fn shared(j: Journal<MemStorage>, dir: &Path) -> Rc<Shared<MemStorage>> {
    Rc::new(Shared {
        journal: j.into(),
        synced: Default::default(),
        acked: Default::default(),
        dead_letters: DeadLetters::new(dir).into(),
        deployed: Default::default(),
        reference: edgecm::journal::reference::Reference::memory(1 << 20).into(),
        windows: std::cell::RefCell::new(vec![std::rc::Rc::new(window())]),
    })
}

fn settings(tick_ms: u64, retries: u32, timeout_ms: u64) -> Settings {
    let mut s = Settings::new(tick_ms, retries, timeout_ms);
    s.backoff_min = Duration::from_millis(20);
    s.backoff_max = Duration::from_millis(200);
    s
}

fn sender(id: u8, port: u16, s: Settings) -> Sender {
    let deploy = Rc::new(Deploy::new("trading", PROJECT));
    Sender::new(id, &format!("esp{id}"), "127.0.0.1", port, vec![deploy], s)
}

/// The events here are built with formatted stamps, as a manager run with
/// `-engine-dateformat` sends them: the stand-in is told the same format.
const DATES: &str = "%Y-%m-%d %H:%M:%S";

/// Reads a stand-in recording back with the CSV decoder.
fn recorded(path: &Path) -> Vec<Event> {
    let layout = Layout::new(&schema(), false, false);
    let mut opts = Options::new(FsType::Csv);
    opts.dates = Some(edgecm::source::value::DateFormat::parse("%Y-%m-%d %H:%M:%S").unwrap());
    let data = std::fs::read(path).unwrap_or_default();
    decode_all(&data, Decoder::new(layout, opts))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_same(got: &[Event], want: &[Event]) {
    assert_eq!(got.len(), want.len(), "event count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "event {i} differs");
    }
}

/// Runs `f` on a local executor (where senders are spawned) to completion.
fn run<T>(f: impl FnOnce(&LocalExecutor<'static>) -> T) -> T {
    let ex: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    f(ex)
}

fn publish_all(base: &str, blocksize: usize) {
    publish_all_with(base, blocksize, false);
}

fn publish_all_with(base: &str, blocksize: usize, pipeline: bool) {
    let dir = support::scratch(if pipeline {
        "engine-publish-pipelined"
    } else {
        "engine-publish"
    });
    let rec = dir.join("rec");
    let si = StandIn::start(
        0,
        &[
            "-base",
            base,
            "-record",
            rec.to_str().unwrap(),
            "-dateformat",
            DATES,
        ],
    );
    let evs = events(100_000);
    let total = evs.len() as u64;
    run(|ex| {
        let sh = shared(
            journal(&evs, blocksize, &[0], EngineSet::from_bits(1)),
            &dir,
        );
        let mut set = settings(200, 3, 30_000);
        set.pipeline = pipeline;
        let s = sender(0, si.port, set);
        let (status, stop) = (s.status.clone(), s.stop.clone());
        ex.spawn(edgecm::engine::sender::sync_on_ack(sh.clone()))
            .detach();
        ex.spawn(s.run(sh.clone())).detach();
        let deadline = Instant::now() + Duration::from_secs(600);
        let ok = async_io::block_on(ex.run(status.wait_for(|s| s.acked_events == total, deadline)));
        assert!(ok, "not all acknowledged: {:?}", status.get());
        let st = status.get();
        let want = if base == "v1" {
            "/eventStreamProcessing/v1"
        } else {
            "/SASESP"
        };
        assert_eq!(st.base, Some(want));
        assert_eq!(
            (st.state, st.deploys, st.rejected_events),
            (State::Ready, 1, 0)
        );
        assert_eq!(sh.journal.borrow().backlog(0), 0);
        stop.stop();
    });
    assert_same(&recorded(&rec.join("trading.cq.trades.csv")), &evs);
}

#[test]
fn publishes_100k_events_under_v1_field_by_field() {
    publish_all("v1", 250);
}

#[test]
fn publishes_100k_events_under_sasesp_field_by_field() {
    publish_all("sasesp", 500);
}

#[test]
fn pipelined_requests_deliver_100k_events_once_and_in_order() {
    publish_all_with("v1", 250, true);
}

#[test]
fn pipelined_requests_that_fail_are_sent_again_and_lose_nothing() {
    let dir = support::scratch("engine-5xx-pipelined");
    let rec = dir.join("rec");
    // Every third inject fails with a 503 (before recording), with
    // requests behind it on the wire that the stand-in takes.
    let si = StandIn::start(
        0,
        &[
            "-fail-every",
            "3",
            "-record",
            rec.to_str().unwrap(),
            "-dateformat",
            DATES,
        ],
    );
    let evs = events(20_000);
    let failed = run(|ex| {
        // Small records and requests: many requests in each window.
        let sh = shared(journal(&evs, 20, &[0], EngineSet::from_bits(1)), &dir);
        let mut set = settings(200, 1000, 30_000);
        set.pipeline = true;
        let s = sender(0, si.port, set);
        let stop = s.stop.clone();
        let sw = s.status.clone();
        ex.spawn(edgecm::engine::sender::sync_on_ack(sh.clone()))
            .detach();
        ex.spawn(s.run(sh.clone())).detach();
        let deadline = Instant::now() + Duration::from_secs(300);
        assert!(
            async_io::block_on(ex.run(sw.wait_for(|s| s.acked_events == 20_000, deadline))),
            "{:?}",
            sw.get()
        );
        assert_eq!(sh.journal.borrow().backlog(0), 0);
        stop.stop();
        sw.get().failed_requests
    });
    // Every event at least once; those behind a failed request may come
    // twice and before it.
    let got = recorded(&rec.join("trading.cq.trades.csv"));
    assert!(
        got.len() > evs.len(),
        "a 503 comes before recording: only requests taken behind a failed one on the wire come twice, and none did ({failed} failed)"
    );
    let mut unique = got.clone();
    unique.sort_by_key(|e| format!("{e:?}"));
    unique.dedup();
    let mut want = evs.clone();
    want.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(unique, want, "every event, at least once");
    eprintln!(
        "pipelined, every third request refused with 503: {} events recorded for {} ({} sent again), {failed} failed requests",
        got.len(),
        evs.len(),
        got.len() - evs.len()
    );
}

#[test]
fn refused_blocks_go_to_dead_letters_and_the_cursor_advances() {
    let dir = support::scratch("engine-4xx");
    let si = StandIn::start(0, &["-reject-window", "trades", "-dateformat", DATES]);
    let evs = events(1000);
    run(|ex| {
        let sh = shared(journal(&evs, 100, &[0], EngineSet::from_bits(1)), &dir);
        let s = sender(0, si.port, settings(200, 3, 30_000));
        let stop = s.stop.clone();
        let sw = s.status.clone();
        ex.spawn(edgecm::engine::sender::sync_on_ack(sh.clone()))
            .detach();
        ex.spawn(s.run(sh.clone())).detach();
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(async_io::block_on(
            ex.run(sw.wait_for(|s| s.rejected_events == 1000, deadline))
        ));
        let st = sw.get();
        assert_eq!(
            (st.acked_events, st.rejected_blocks, st.state),
            (0, 10, State::Ready)
        );
        assert_eq!(sh.journal.borrow().backlog(0), 0);
        stop.stop();
    });
    let text = std::fs::read_to_string(dir.join("dead-letters.xml")).unwrap();
    let all = format!("<all>{text}</all>");
    let doc = roxmltree::Document::parse(&all).expect("dead letters parse as XML");
    let letters: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .collect();
    assert_eq!(letters.len(), 10);
    assert_eq!(letters[3].attribute("first-seq"), Some("300"));
    assert_eq!(letters[3].attribute("status"), Some("400"));
    let msg = letters[3]
        .children()
        .find(|n| n.has_tag_name("message"))
        .unwrap();
    assert!(
        msg.text().unwrap().contains("refuses events"),
        "{:?}",
        msg.text()
    );
    let events_in = letters[3]
        .descendants()
        .filter(|n| n.has_tag_name("event"))
        .count();
    assert_eq!(events_in, 100);
}

#[test]
fn server_errors_are_retried_and_lose_nothing() {
    let dir = support::scratch("engine-5xx");
    let rec = dir.join("rec");
    // Every second inject fails: the 6000 events make three requests.
    let si = StandIn::start(
        0,
        &[
            "-fail-every",
            "2",
            "-record",
            rec.to_str().unwrap(),
            "-dateformat",
            DATES,
        ],
    );
    let evs = events(6000);
    run(|ex| {
        let sh = shared(journal(&evs, 50, &[0], EngineSet::from_bits(1)), &dir);
        let s = sender(0, si.port, settings(200, 100, 30_000));
        let stop = s.stop.clone();
        let sw = s.status.clone();
        ex.spawn(edgecm::engine::sender::sync_on_ack(sh.clone()))
            .detach();
        ex.spawn(s.run(sh)).detach();
        let deadline = Instant::now() + Duration::from_secs(300);
        assert!(async_io::block_on(
            ex.run(sw.wait_for(|s| s.acked_events == 6000, deadline))
        ));
        assert!(sw.get().failed_requests >= 1, "{:?}", sw.get());
        stop.stop();
    });
    // A 503 is answered before recording: no duplicates at all.
    assert_same(&recorded(&rec.join("trading.cq.trades.csv")), &evs);
}

#[test]
fn a_killed_and_restarted_engine_loses_nothing() {
    let dir = support::scratch("engine-kill");
    let rec = dir.join("rec");
    let mut si = StandIn::start(0, &["-record", rec.to_str().unwrap(), "-dateformat", DATES]);
    let evs = events(20_000);
    let blocksize = 50;
    let mut failed = 0;
    run(|ex| {
        let sh = shared(
            journal(&evs, blocksize, &[0], EngineSet::from_bits(1)),
            &dir,
        );
        // A time-out long enough for a large request under emulation: a request
        // that times out was often recorded anyway (duplicates, bounded below).
        let s = sender(0, si.port, settings(50, 3, 10_000));
        let (sw, stop) = (s.status.clone(), s.stop.clone());
        ex.spawn(edgecm::engine::sender::sync_on_ack(sh.clone()))
            .detach();
        ex.spawn(s.run(sh)).detach();
        for (k, at) in [3000u64, 9000, 15000].into_iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(300);
            assert!(async_io::block_on(
                ex.run(sw.wait_for(|s| s.acked_events >= at, deadline))
            ));
            si.restart();
            // Each restart forgets the project: the sender must deploy again.
            let deadline = Instant::now() + Duration::from_secs(300);
            let want = k as u64 + 2;
            assert!(
                async_io::block_on(ex.run(sw.wait_for(|s| s.deploys >= want, deadline))),
                "no redeploy after restart {k}: {:?}",
                sw.get()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        assert!(async_io::block_on(
            ex.run(sw.wait_for(|s| s.acked_events == 20_000, deadline))
        ));
        stop.stop();
        failed = sw.get().failed_requests as usize;
    });
    let got = recorded(&rec.join("trading.cq.trades.csv"));
    // Every event at least once, in order; duplicates only the request in
    // flight at each kill, or at each failed request.
    let mut seen = vec![0u32; evs.len()];
    for e in &got {
        let id: usize = std::str::from_utf8(e.2[0].as_ref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(e, &evs[id], "event {id} recorded differently");
        seen[id] += 1;
    }
    assert!(seen.iter().all(|&n| n >= 1), "an event was lost");
    let dups: u32 = seen.iter().map(|&n| n - 1).sum();
    let per_request = edgecm::engine::sender::REQUEST_BODY_MAX / EVENT_XML_MIN + blocksize;
    assert!(
        dups as usize <= (3 + failed) * per_request,
        "{dups} duplicates for 3 kills and {failed} failed requests"
    );
}

#[test]
fn a_hung_engine_is_failed_and_does_not_stall_the_others() {
    let dir = support::scratch("engine-hung");
    let rec = dir.join("rec");
    let good = StandIn::start(0, &["-record", rec.to_str().unwrap(), "-dateformat", DATES]);
    let hung = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let hung_port = hung.get_ref().local_addr().unwrap().port();
    let evs = events(2000);
    run(|ex| {
        // Accepts connections and never answers; ends with the executor.
        ex.spawn(async move {
            let mut held = Vec::new();
            for _ in 0..1000 {
                match hung.accept().await {
                    Ok((c, _)) => held.push(c),
                    Err(_) => break,
                }
            }
        })
        .detach();
        let sh = shared(
            journal(&evs, 100, &[0, 1], EngineSet::from_bits(0b11)),
            &dir,
        );
        // The good engine gets time for a large request under emulation (a time-out
        // there would resend a request it processed); the hung one fails fast.
        let ok = sender(0, good.port, settings(100, 2, 10_000));
        let bad = sender(1, hung_port, settings(100, 2, 300));
        let (okw, badw) = (ok.status.clone(), bad.status.clone());
        let stops = [ok.stop.clone(), bad.stop.clone()];
        ex.spawn(edgecm::engine::sender::sync_on_ack(sh.clone()))
            .detach();
        ex.spawn(ok.run(sh.clone())).detach();
        ex.spawn(bad.run(sh.clone())).detach();
        let deadline = Instant::now() + Duration::from_secs(30);
        assert!(async_io::block_on(
            ex.run(badw.wait_for(|s| s.state == State::Failed, deadline))
        ));
        assert!(
            badw.get().last_error.unwrap().contains("within"),
            "a time-out"
        );
        assert!(async_io::block_on(
            ex.run(okw.wait_for(|s| s.acked_events == 2000, deadline))
        ));
        assert_eq!(badw.get().acked_events, 0);
        assert_eq!(
            sh.journal.borrow().backlog(1),
            2000,
            "the hung engine's events wait"
        );
        for s in stops {
            s.stop();
        }
    });
    assert_same(&recorded(&rec.join("trading.cq.trades.csv")), &evs);
}

/// A one-connection HTTP server: for each of `requests` requests, reads the
/// head and answers `reply`.
fn serve(reply: Vec<u8>, requests: usize) -> (u16, impl std::future::Future<Output = ()>) {
    let l = Async::<TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let port = l.get_ref().local_addr().unwrap().port();
    let task = async move {
        let Ok((mut c, _)) = l.accept().await else {
            return;
        };
        for _ in 0..requests {
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&b[..n]),
                }
            }
            if c.write_all(&reply).await.is_err() {
                return;
            }
        }
    };
    (port, task)
}

fn client_against(reply: Vec<u8>, requests: usize, timeout_ms: u64) -> Vec<Result<Answer, String>> {
    let ex = LocalExecutor::new();
    let (port, server) = serve(reply, requests);
    ex.spawn(server).detach();
    async_io::block_on(ex.run(async {
        let mut c = Client::new("127.0.0.1", port);
        let mut out = Vec::new();
        for _ in 0..requests {
            let r = c
                .request(
                    "GET",
                    "/SASESP/server",
                    None,
                    &[],
                    Duration::from_millis(timeout_ms),
                )
                .await;
            out.push(
                r.map(|r| (r.status, r.body, r.truncated))
                    .map_err(|e: HttpError| e.to_string()),
            );
        }
        out
    }))
}

#[test]
fn a_10_mb_answer_is_cut_not_buffered() {
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n".to_vec();
    reply.resize(reply.len() + 10 * 1024 * 1024, b'x');
    let r = client_against(reply, 1, 10_000);
    let (status, body, truncated) = r[0].clone().expect("an answer");
    assert_eq!((status, body.len(), truncated), (200, BODY_KEEP, true));
}

#[test]
fn a_garbage_answer_is_an_error_not_a_crash() {
    let r = client_against(
        b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02garbage\r\n\r\n".to_vec(),
        1,
        5000,
    );
    let e = r[0].clone().unwrap_err();
    assert!(e.contains("not an HTTP answer"), "{e}");
}

#[test]
fn chunked_answers_and_keep_alive() {
    let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n".to_vec();
    let r = client_against(reply, 3, 5000);
    for a in r {
        let (status, body, truncated) = a.expect("an answer");
        assert_eq!(
            (status, &body[..], truncated),
            (200, &b"hello world"[..], false)
        );
    }
}

#[test]
fn an_answer_that_never_comes_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let start = Instant::now();
    let r = async_io::block_on(async {
        let mut c = Client::new("127.0.0.1", port);
        c.request("GET", "/x", None, &[], Duration::from_millis(200))
            .await
    });
    assert!(matches!(r, Err(HttpError::Timeout(_))), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(l);
    // Nothing listens at all: a connection error, at once.
    let r = async_io::block_on(async {
        let mut c = Client::new("127.0.0.1", port);
        c.request("GET", "/x", None, &[], Duration::from_secs(5))
            .await
    });
    assert!(matches!(r, Err(HttpError::Connect(_))), "{r:?}");
}

#[test]
fn output_models_describe_what_is_deployed_and_routed() {
    use edgecm::engine::models::{LOCAL_CONTQUERY, LOCAL_PROJECT};
    use edgecm::standin::{Settings, StandIn};
    let cfg = support::shared().join("corpus/cm/broker-local.xml");
    let config = edgecm::config::Config::load(cfg.to_str().unwrap()).expect("broker-local");
    // The local project: read by the stand-in's model reader, and loaded.
    let projects = edgecm::engine::models::projects_xml(&config);
    let file = edgecm::config::project::parse(Path::new("p.xml"), &projects)
        .unwrap_or_else(|d| panic!("{d}\n{projects}"));
    let p = &file.projects[0];
    assert_eq!(p.name, LOCAL_PROJECT);
    let windows = &p.contquery(LOCAL_CONTQUERY).unwrap().windows;
    let names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["trades", "venuesSource", "restrictedSource"]);
    for w in windows {
        assert!(w.is_source());
        assert_eq!(
            w.publisher_connectors.as_slice(),
            std::slice::from_ref(&w.name),
            "ESP's fs connector reads it"
        );
        let map = config
            .esp_maps
            .iter()
            .flat_map(|m| &m.maps)
            .find(|m| config.raw_sources[m.source].name == w.name)
            .unwrap();
        let schema = w.schema.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(schema.fields, map.destination.schema.fields, "{}", w.name);
    }
    assert!(
        projects.contains("esppy__broker_surv_trades.csv"),
        "{projects}"
    );
    assert!(
        projects.contains("<connector-entry connector=\"cq/trades/trades\" state=\"finished\"/>")
            && projects.contains("<edge source=\"esp-map1.G1\" target=\"esp-map1.G2\"/>"),
        "orchestration: {projects}"
    );
    let mut s = StandIn::new(Settings::default());
    let v1 = "/eventStreamProcessing/v1";
    let (code, body) = s.handle(
        "PUT",
        &format!("{v1}/projects/{LOCAL_PROJECT}"),
        None,
        projects.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    // The router: read by the stand-in, routes matching only the local windows.
    let routers = edgecm::engine::models::routers_xml(&config);
    let (code, body) = s.handle(
        "PUT",
        &format!("{v1}/routers/broker"),
        None,
        routers.as_bytes(),
    );
    assert_eq!(code, 200, "{body}\n{routers}");
    let r = edgecm::config::router::parse(&routers).unwrap();
    assert_eq!(
        r.engines,
        [
            ("esp1".to_string(), "127.0.0.1".to_string(), 41003),
            ("esp2".to_string(), "127.0.0.1".to_string(), 41006),
            ("esp3".to_string(), "127.0.0.1".to_string(), 41009)
        ]
    );
    // venues and restricted: one destination per engine (multicast); trades: one (hash, commented).
    assert_eq!(r.destinations.len(), 7);
    let exprs: Vec<(&str, &str, &str, &str)> = r
        .routes
        .iter()
        .map(|rt| {
            (
                rt.expr("engine-expr").unwrap(),
                rt.expr("project-expr").unwrap(),
                rt.expr("contquery-expr").unwrap(),
                rt.expr("window-expr").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        exprs,
        [
            ("^esp_local$", "^edgecm_local$", "^cq$", "^venuesSource$"),
            (
                "^esp_local$",
                "^edgecm_local$",
                "^cq$",
                "^restrictedSource$"
            ),
            ("^esp_local$", "^edgecm_local$", "^cq$", "^trades$"),
        ]
    );
    assert_eq!(r.routes[2].to, ["dest4"]);
    assert_eq!(r.routes[0].to, ["dest2-esp1", "dest2-esp2", "dest2-esp3"]);
    assert!(routers.contains("no documented string hash"), "{routers}");
    assert!(routers.contains("esp4"), "the spare is mentioned");
    assert_eq!(
        edgecm::engine::models::regex_literal("a.b(c)"),
        "a\\.b\\(c\\)"
    );
}
