//! Socket sources on 127.0.0.1: a listening source with three clients, one of
//! them sending garbage; a connecting source whose server closes on it.

mod support;

use async_io::Timer;
use edgecm::config::fs::{from_properties, FsSource};
use edgecm::config::project::Schema;
use edgecm::journal::Position;
use edgecm::source::{ConnectSource, Layout, ListenSource, Next};
use futures_lite::future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

fn fs(fsname: &str) -> FsSource {
    let props = vec![
        ("type".to_string(), "pub".to_string()),
        ("fstype".to_string(), "csv".to_string()),
        ("fsname".to_string(), fsname.to_string()),
    ];
    from_properties(&props, std::path::Path::new(".")).unwrap()
}

fn layout() -> Layout {
    Layout::new(
        &Schema::parse_compact("id*:int64,name:string").unwrap(),
        false,
        false,
    )
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    async_io::block_on(future::or(f, async {
        Timer::after(Duration::from_secs(30)).await;
        panic!("deadline of 30 s passed");
    }))
}

/// Sends lines `ids` in pieces of `chunk` bytes, splitting lines across writes.
fn send_lines(addr: SocketAddr, ids: std::ops::RangeInclusive<i64>, chunk: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    let text: String = ids.map(|i| format!("i,n,{i},client{i}\n")).collect();
    for piece in text.as_bytes().chunks(chunk) {
        s.write_all(piece).unwrap();
    }
}

#[test]
fn a_listening_source_serves_three_clients_and_drops_the_one_sending_garbage() {
    // `:port` means every IPv4 interface, as in ESP; the test binds loopback.
    let config = fs(":28080");
    assert_eq!(
        ListenSource::address(&config),
        Some("0.0.0.0:28080".parse().unwrap())
    );
    let mut src =
        ListenSource::bind("sock", &config, layout(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = src.local_addr().unwrap();
    let a = std::thread::spawn(move || send_lines(addr, 1..=1000, 7));
    let b = std::thread::spawn(move || send_lines(addr, 1001..=2000, 100));
    let (tx, rx) = mpsc::channel();
    let c = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"\x00\xff\xfe not an event\n").unwrap();
        // The source closes on us: read returns 0 (or a reset).
        let mut buf = [0u8; 16];
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = s.read(&mut buf);
        tx.send(
            matches!(r, Ok(0))
                || r.as_ref()
                    .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
        )
        .unwrap();
    });

    let mut got: Vec<(i64, u64)> = Vec::new();
    run(async {
        for _ in 0..1_000_000 {
            match src.next().await.unwrap() {
                Next::Event(e, Position::Socket { seq }) => {
                    let id = std::str::from_utf8(e.field(0).unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert_eq!(e.field(1).unwrap(), format!("client{id}").as_bytes());
                    got.push((id, seq));
                }
                Next::Event(_, other) => panic!("{other:?}"),
                Next::Idle => {
                    if got.len() == 2000 && src.disconnected == 1 {
                        return;
                    }
                }
                Next::Finished => panic!("a listening source does not finish"),
            }
        }
        panic!("step limit");
    });
    a.join().unwrap();
    b.join().unwrap();
    assert!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        "the garbage client was disconnected"
    );
    c.join().unwrap();

    // Each client's events in its order, all once; positions numbered 1, 2, ...
    let seqs: Vec<u64> = got.iter().map(|g| g.1).collect();
    assert_eq!(seqs, (1..=2000).collect::<Vec<u64>>());
    let from_a: Vec<i64> = got.iter().map(|g| g.0).filter(|i| *i <= 1000).collect();
    let from_b: Vec<i64> = got.iter().map(|g| g.0).filter(|i| *i > 1000).collect();
    assert_eq!(from_a, (1..=1000).collect::<Vec<_>>());
    assert_eq!(from_b, (1001..=2000).collect::<Vec<_>>());
    assert_eq!(src.stats().errors, 1);
}

#[test]
fn a_connecting_source_reconnects_and_numbers_on() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // First connection: two events and a third cut short (no newline), then close.
        let (mut s, _) = server.accept().unwrap();
        s.write_all(b"i,n,1,a\ni,n,2,b\ni,n,3,c").unwrap();
        drop(s);
        // Second connection: three more, held open until the test is done.
        let (mut s, _) = server.accept().unwrap();
        s.write_all(b"i,n,4,d\ni,n,5,e\ni,n,6,f\n").unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(20));
    });
    let mut src = ConnectSource::new("out", &fs(&format!("127.0.0.1:{port}")), layout()).unwrap();
    src.resume_from(Position::Socket { seq: 41 });
    let mut got = Vec::new();
    run(async {
        for _ in 0..10_000 {
            if let Next::Event(e, Position::Socket { seq }) = src.next().await.unwrap() {
                let id: i64 = std::str::from_utf8(e.field(0).unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                got.push((id, seq));
                if got.len() == 5 {
                    return;
                }
            }
        }
    });
    done_tx.send(()).unwrap();
    t.join().unwrap();
    // The line cut by the close is not an event (and takes no number).
    assert_eq!(got, [(1, 42), (2, 43), (4, 44), (5, 45), (6, 46)]);
    assert_eq!(src.stats().errors, 1);
}

/// A line cut by a disconnect is not an event: a client that sends
/// `...,2016-01-16 08:30:02.00` and closes gets that line dropped and
/// counted, never recorded with a truncated value.
#[test]
fn a_line_cut_by_a_disconnect_is_not_an_event() {
    let mut src = ListenSource::bind(
        "sock",
        &fs(":28081"),
        layout(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = src.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"i,n,1,whole\ni,n,2,cut sho").unwrap();
        // Dropped here: the connection closes mid-line.
    });
    let mut got = Vec::new();
    run(async {
        for _ in 0..1_000_000 {
            match src.next().await.unwrap() {
                Next::Event(e, _) => got.push(e.field(1).unwrap().to_vec()),
                Next::Idle => {
                    if src.stats().errors == 1 {
                        return;
                    }
                }
                Next::Finished => panic!("a listening source does not finish"),
            }
        }
        panic!("step limit");
    });
    client.join().unwrap();
    assert_eq!(got, [b"whole".to_vec()], "the cut line is not an event");
}

/// `listenaddress` (ours) keeps a `:PORT` source on one address, e.g.
/// loopback; ESP's `HOST:PORT` keeps meaning "connect out".
#[test]
fn listenaddress_keeps_a_listening_source_on_loopback() {
    let props = |extra: &[(&str, &str)]| {
        let mut p = vec![
            ("type".to_string(), "pub".to_string()),
            ("fstype".to_string(), "csv".to_string()),
            ("fsname".to_string(), ":28082".to_string()),
        ];
        p.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        p
    };
    let lo = from_properties(
        &props(&[("listenaddress", "127.0.0.1")]),
        std::path::Path::new("."),
    )
    .unwrap();
    assert_eq!(
        ListenSource::address(&lo),
        Some("127.0.0.1:28082".parse().unwrap())
    );
    let v6 = from_properties(
        &props(&[("listenaddress", "::1")]),
        std::path::Path::new("."),
    )
    .unwrap();
    assert_eq!(
        ListenSource::address(&v6),
        Some("[::1]:28082".parse().unwrap())
    );
    let bad = from_properties(
        &props(&[("listenaddress", "localhostx")]),
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert!(bad[0].1.contains("accepted: an IP address"), "{bad:?}");
    let mut connect = props(&[("listenaddress", "127.0.0.1")]);
    connect[2].1 = "127.0.0.1:28082".into();
    let e = from_properties(&connect, std::path::Path::new(".")).unwrap_err();
    assert!(e[0].1.contains("applies to a listening source"), "{e:?}");
    assert!(matches!(
        fs("127.0.0.1:28082").fsname,
        edgecm::config::FsName::Connect { .. }
    ));
}
