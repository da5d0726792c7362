//! Publishing throughput to one `edgecm engine` stand-in over loopback, and
//! bytes on the wire per event, for the broker trades data.
//!
//!   cargo bench --bench engine                 # blocksize 1, 50, 500
//!   cargo bench --bench engine -- --events N   # events per case (default 50,000; 5,000 for blocksize 1)
//!
//! The trades CSV (../shared/corpus/esp, read through the broker-local config
//! in ../shared/corpus/cm) is decoded once, repeated up to N events, and put
//! in an in-memory journal in blocks of the blocksize; one sender publishes
//! it to a stand-in serving on a thread of this process (recording to a
//! scratch folder, as in the tests). Both sides share the machine's cores.

use async_executor::LocalExecutor;
use edgecm::config::{Config, FsName};
use edgecm::engine::deadletter::DeadLetters;
use edgecm::engine::encode::Window;
use edgecm::engine::sender::{Deploy, Sender, Settings, Shared};
use edgecm::journal::block::BlockWriter;
use edgecm::journal::{Journal, Limits, MemStorage, NewRecord, Position};
use edgecm::route::EngineSet;
use edgecm::source::{decode_all, Decoder, Layout, OwnedEvent as Event};
use edgecm::standin;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: Option<usize> = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse().expect("--events N"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(
        root.join("../shared/corpus/cm/broker-local.xml")
            .to_str()
            .unwrap(),
    )
    .expect("broker-local config");
    let (source, dest) = config
        .esp_maps
        .iter()
        .flat_map(|m| &m.maps)
        .find(|m| config.raw_sources[m.source].name == "trades")
        .map(|m| (&config.raw_sources[m.source], &m.destination))
        .expect("a map from the trades source");
    let FsName::File(path) = &source.fs.fsname else {
        panic!("trades is a file source")
    };
    let csv = std::fs::read(path).expect("trades csv");
    let layout = Layout::new(&dest.schema, false, source.fs.noautogenfield);
    let opts = edgecm::source::options(&source.fs).expect("fs options");
    let trades =
        decode_all(&csv, Decoder::new(layout, opts)).unwrap_or_else(|e| panic!("trades {e}"));
    let csv_per_event = csv.len() as f64 / trades.len() as f64;
    let model = &config.projects[config.esp_maps[0].model];
    let window = edgecm::engine::window(&edgecm::journal::layout::WindowSpec::of(dest, false));
    println!(
        "trades: {} events, {:.1} bytes per CSV line; window {}",
        trades.len(),
        csv_per_event,
        window.label
    );
    println!("blocksize  events   seconds  events/s  body bytes/event  wire bytes/event");
    for blocksize in [1usize, 50, 500] {
        let n = events.unwrap_or(if blocksize == 1 { 5_000 } else { 50_000 });
        let evs: Vec<&Event> = trades.iter().cycle().take(n).collect();
        let (secs, body) = run_case(
            &evs,
            blocksize,
            &window,
            &model.project.name,
            &model.project.xml,
        );
        let requests = n.div_ceil(blocksize) as f64;
        // Request head as the client writes it (method, path, Host, User-Agent,
        // Accept, Content-Type, Content-Length), about 230 bytes, plus the answer's.
        let head = 230.0 + 180.0;
        println!(
            "{blocksize:>9}  {n:>6}  {secs:>8.3}  {:>8.0}  {:>16.1}  {:>16.1}",
            n as f64 / secs,
            body as f64 / n as f64,
            (body as f64 + requests * head) / n as f64
        );
    }
    println!("CSV line: {csv_per_event:.1} bytes per event");
}

/// Publishes `evs` in blocks; returns seconds taken and request body bytes.
fn run_case(
    evs: &[&Event],
    blocksize: usize,
    window: &Window,
    project: &str,
    xml: &str,
) -> (f64, u64) {
    let dir = std::env::temp_dir().join(format!(
        "edgecm-bench-engine-{}-{blocksize}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = standin::Settings {
        record: Some(dir.join("rec")),
        ..Default::default()
    };
    std::thread::spawn(move || standin::serve_on(listener, settings));

    let mut j = Journal::open(MemStorage::new(1), Limits::default()).unwrap();
    j.add_engine(0);
    let mut w = BlockWriter::default();
    for chunk in evs.chunks(blocksize) {
        w.clear();
        for (op, fl, fields) in chunk {
            w.push(*op, *fl, fields.iter().map(|f| f.as_deref()));
        }
        let r = NewRecord {
            dest: EngineSet::from_bits(1),
            source: 0,
            target: 0,
            position: Position::None,
            count: w.count,
            time_ms: 0,
            origin: edgecm::journal::Origin::NONE,
        };
        j.append(r, &w.buf).unwrap();
    }
    j.sync().unwrap();
    let shared = Rc::new(Shared {
        journal: j.into(),
        synced: Default::default(),
        acked: Default::default(),
        dead_letters: DeadLetters::new(&dir).into(),
        deployed: Default::default(),
        reference: edgecm::journal::reference::Reference::memory(1 << 20).into(),
        windows: std::cell::RefCell::new(vec![std::rc::Rc::new(window.clone())]),
    });
    let deploy = Rc::new(Deploy::new(project, xml));
    let s = Sender::new(
        0,
        "esp1",
        "127.0.0.1",
        port,
        vec![deploy],
        Settings::new(1000, 3, 10_000),
    );
    let (status, stop) = (s.status.clone(), s.stop.clone());
    let ex = LocalExecutor::new();
    ex.spawn(edgecm::engine::sender::sync_on_ack(shared.clone()))
        .detach();
    ex.spawn(s.run(shared)).detach();
    let total = evs.len() as u64;
    // Time from the deploy's end to the last acknowledgement.
    let far = Instant::now() + Duration::from_secs(600);
    assert!(async_io::block_on(
        ex.run(status.wait_for(|s| s.deploys == 1, far))
    ));
    let deployed = status.get().request_bytes;
    let start = Instant::now();
    assert!(
        async_io::block_on(ex.run(status.wait_for(|s| s.acked_events == total, far))),
        "not all acknowledged: {:?}",
        status.get()
    );
    let secs = start.elapsed().as_secs_f64();
    let st = status.get();
    assert_eq!(st.rejected_events, 0, "{:?}", st.last_error);
    stop.stop();
    let _ = std::fs::remove_dir_all(&dir);
    (secs, st.request_bytes - deployed)
}
