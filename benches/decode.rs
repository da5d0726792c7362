//! Decode figures (issue 3), one core, input in memory:
//!
//!   cargo bench --bench decode
//!
//! The trades CSV of ../shared/corpus (esppy's broker surveillance data, 13
//! fields with a `stamp` checked against `dateformat`) repeated to ~64 MB,
//! decoded with the trades window's real schema, each event also appended to
//! a journal block as the daemon does; then the XML data file the same way.
//! Prints MB/s, events/s and heap allocations per event after warm-up,
//! counted by a counting global allocator.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use edgecm::config::fs::FsType;
use edgecm::config::project;
use edgecm::journal::block::BlockWriter;
use edgecm::source::value::DateFormat;
use edgecm::source::{Decoder, Layout, Options, Reader, Step};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: AllocLayout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn window_schema(model: &Path, window: &str) -> project::Schema {
    let pf = project::load(model).expect("model parses");
    pf.projects
        .iter()
        .flat_map(|p| &p.contqueries)
        .flat_map(|c| &c.windows)
        .find(|w| w.name == window)
        .and_then(|w| w.schema.clone())
        .expect("window with schema")
        .expect("schema parses")
}

/// Decodes `input` once, in READ_CHUNK pieces as from a file; returns events.
fn decode(reader: &mut Reader, input: &[u8], block: &mut BlockWriter) -> u64 {
    let mut fed = 0;
    let mut events = 0;
    loop {
        let eof = fed == input.len();
        loop {
            match reader.next(eof) {
                Step::Event { .. } => {
                    let e = reader.event();
                    block.push(e.opcode.letter() as u8, e.flags.letter() as u8, e.fields());
                    if block.count == 50 {
                        block.clear();
                    }
                    events += 1;
                }
                Step::Error { at, message, .. } => panic!("{at}: {message}"),
                Step::NeedMore => break,
            }
        }
        if eof {
            return events;
        }
        fed += reader
            .fill_with(|b| {
                let n = b.len().min(input.len() - fed);
                b[..n].copy_from_slice(&input[fed..fed + n]);
                Ok(n)
            })
            .expect("memory");
    }
}

fn measure(name: &str, mut reader: Reader, unit: &[u8], target_bytes: usize) {
    let reps = (target_bytes / unit.len()).max(1);
    let mut input = Vec::with_capacity(unit.len() * reps);
    for _ in 0..reps {
        input.extend_from_slice(unit);
    }
    let mut block = BlockWriter::default();
    // Warm-up: buffers grow to their working size.
    decode(&mut reader, unit, &mut block);
    let mut best = f64::MAX;
    let mut events = 0;
    let mut allocs = 0;
    for _ in 0..3 {
        reader.restart(0);
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let t = Instant::now();
        events = decode(&mut reader, &input, &mut block);
        best = best.min(t.elapsed().as_secs_f64());
        allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    }
    println!(
        "{name}: {:.1} MB in {:.3} s: {:.0} MB/s, {:.2} M events/s, {:.1} bytes/event, {} allocations in {} events ({:.4}/event)",
        input.len() as f64 / 1e6,
        best,
        input.len() as f64 / 1e6 / best,
        events as f64 / 1e6 / best,
        input.len() as f64 / events as f64,
        allocs,
        events,
        allocs as f64 / events as f64
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("decode: bench");
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/esp");

    let schema = window_schema(&corpus.join("esppy__broker_surv_model.xml"), "trades");
    let mut opts = Options::new(FsType::Csv);
    opts.dates = Some(DateFormat::parse("%Y-%m-%d %H:%M:%S").unwrap());
    let trades = std::fs::read(corpus.join("esppy__broker_surv_trades.csv")).unwrap();
    let reader = Reader::new(Decoder::new(Layout::new(&schema, false, false), opts));
    measure("csv trades", reader, &trades, 64 << 20);

    let schema = window_schema(
        &corpus.join("esppy__xml_connector_publisher_model.xml"),
        "tradesWindow",
    );
    let xml = std::fs::read(corpus.join("esppy__xml_connector_publisher_data.xml")).unwrap();
    let mut opts = Options::new(FsType::Xml);
    opts.dates = Some(DateFormat::parse("%Y-%m-%d %H:%M:%S").unwrap());
    let reader = Reader::new(Decoder::new(Layout::new(&schema, false, false), opts));
    measure("xml trades", reader, &xml, 64 << 20);
}
