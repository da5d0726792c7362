//! File sources on real files: read once, followed across appends, rotation
//! and truncation (with inotify and with the stat poll), and resumed from a
//! position with nothing lost or read twice.

mod support;

use async_io::Timer;
use edgecm::config::fs::{from_properties, FsSource};
use edgecm::config::project::Schema;
use edgecm::journal::Position;
use edgecm::source::watch::Watch;
use edgecm::source::{FileSource, Layout, Next};
use futures_lite::future;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;
use support::scratch;

const SCHEMA: &str = "id*:int64,name:string";

fn fs(path: &Path, extra: &[(&str, &str)]) -> FsSource {
    let mut props = vec![
        ("type".to_string(), "pub".to_string()),
        ("fstype".to_string(), "csv".to_string()),
        ("fsname".to_string(), path.display().to_string()),
    ];
    props.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    from_properties(&props, path.parent().unwrap()).unwrap()
}

fn source(path: &Path, extra: &[(&str, &str)]) -> FileSource {
    let schema = Schema::parse_compact(SCHEMA).unwrap();
    let fs = fs(path, extra);
    FileSource::new("s", &fs, Layout::new(&schema, false, false)).unwrap()
}

/// Runs `f` with a deadline: a hang fails the test instead of stalling it.
fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    async_io::block_on(future::or(f, async {
        Timer::after(Duration::from_secs(30)).await;
        panic!("deadline of 30 s passed");
    }))
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Idle,
    Finished,
}

/// Events as `id` until the source is idle or finished, with positions.
async fn drain(src: &mut FileSource) -> (Vec<(i64, Position)>, End) {
    let mut got = Vec::new();
    for _ in 0..100_000 {
        match src.next().await.unwrap() {
            Next::Event(e, pos) => {
                let id = std::str::from_utf8(e.field(0).unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                got.push((id, pos));
            }
            Next::Idle => return (got, End::Idle),
            Next::Finished => return (got, End::Finished),
        }
    }
    panic!("no end after 100000 steps");
}

fn ids(v: &[(i64, Position)]) -> Vec<i64> {
    v.iter().map(|(i, _)| *i).collect()
}

fn lines(range: std::ops::RangeInclusive<i64>) -> String {
    range.map(|i| format!("i,n,{i},name{i}\n")).collect()
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn ino(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn a_file_read_once_ends_finished_with_exact_positions() {
    let dir = scratch("file-once");
    let path = dir.join("in.csv");
    std::fs::write(&path, format!("header line\n{}", lines(1..=3).trim_end())).unwrap();
    let mut src = source(&path, &[("header", "1")]);
    let (got, end) = run(drain(&mut src));
    assert_eq!(end, End::Finished);
    assert_eq!(ids(&got), [1, 2, 3]);
    let len = std::fs::metadata(&path).unwrap().len();
    // The last line has no newline: its position is the end of the file.
    let offsets: Vec<u64> = got
        .iter()
        .map(|(_, p)| match p {
            Position::File { ino: i, offset, .. } => {
                assert_eq!(*i, ino(&path));
                *offset
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(offsets, [12 + 12, 12 + 24, len]);
    assert_eq!(src.stats().events, 3);

    let mut src = source(
        &path,
        &[("header", "1"), ("repeatcount", "2"), ("maxevents", "8")],
    );
    let (got, end) = run(drain(&mut src));
    assert_eq!(
        (ids(&got), end),
        (vec![1, 2, 3, 1, 2, 3, 1, 2], End::Finished)
    );
}

#[test]
fn a_bad_line_stops_the_source_unless_errors_are_ignored() {
    let dir = scratch("file-bad");
    let path = dir.join("in.csv");
    std::fs::write(&path, "i,n,1,a\ni,n,two,b\ni,n,3,c\n").unwrap();
    let mut src = source(&path, &[]);
    let e = run(async {
        assert!(matches!(src.next().await, Ok(Next::Event(..))));
        match src.next().await {
            Err(e) => e,
            Ok(_) => panic!("line 2 is bad"),
        }
    });
    assert_eq!(
        e.to_string(),
        format!(
            "source 's': {}: line 2: field 'id' (int64): \"two\" is not a 64-bit integer",
            path.display()
        )
    );
    let mut src = source(&path, &[("ignorecsvparseerrors", "true")]);
    let (got, end) = run(drain(&mut src));
    assert_eq!((ids(&got), end), (vec![1, 3], End::Finished));
    assert_eq!(src.stats().errors, 1);
}

/// Appends (also half a line), rotation with a late write to the old file,
/// then truncation; every line once, in order.
fn follow_across_rotation_and_truncation(watch: impl FnOnce(&Path) -> Watch) {
    let dir = scratch("file-tail");
    let path = dir.join("app.csv");
    let rotated = dir.join("app.csv.1");
    std::fs::write(&path, lines(1..=3)).unwrap();
    let mut src = source(&path, &[("growinginputfile", "true")]).with_watch(watch(&path));
    run(async {
        let (got, end) = drain(&mut src).await;
        assert_eq!((ids(&got), end), (vec![1, 2, 3], End::Idle));

        append(&path, "i,n,4,na");
        let (got, _) = drain(&mut src).await;
        assert_eq!(ids(&got), [0i64; 0], "half a line is not an event yet");
        append(&path, "me4\n");
        append(&path, &lines(5..=5));
        let (got, _) = drain(&mut src).await;
        assert_eq!(ids(&got), [4, 5]);
        let old_ino = ino(&path);

        // Rotation: rename, a last write to the old file, a new file.
        std::fs::rename(&path, &rotated).unwrap();
        append(&rotated, &lines(6..=6));
        append(&path, &lines(7..=8));
        let mut all = Vec::new();
        for _ in 0..100 {
            let (got, _) = drain(&mut src).await;
            all.extend(got);
            if all.len() >= 3 {
                break;
            }
        }
        assert_eq!(ids(&all), [6, 7, 8]);
        assert!(matches!(all[0].1, Position::File { ino, .. } if ino == old_ino));
        assert!(matches!(all[2].1, Position::File { ino, offset, .. }
            if ino == self::ino(&path) && offset == lines(7..=8).len() as u64));

        // Truncation (copytruncate): shorter content from the start.
        std::fs::write(&path, "i,n,9,x\n").unwrap();
        let mut all = Vec::new();
        for _ in 0..100 {
            let (got, _) = drain(&mut src).await;
            all.extend(got);
            if !all.is_empty() {
                break;
            }
        }
        assert_eq!(ids(&all), [9]);
    });
}

#[test]
fn follows_appends_rotation_and_truncation_with_inotify() {
    follow_across_rotation_and_truncation(|path| {
        let w = Watch::new(path);
        // Not a skip: without inotify this is the poll test again.
        assert!(w.uses_inotify() || cfg!(not(target_os = "linux")));
        w
    });
}

#[test]
fn follows_appends_rotation_and_truncation_by_polling() {
    follow_across_rotation_and_truncation(|_| Watch::poll(Duration::from_millis(5)));
}

#[test]
fn a_followed_file_that_does_not_exist_yet_is_waited_for() {
    let dir = scratch("file-late");
    let path = dir.join("late.csv");
    let mut src = source(&path, &[("growinginputfile", "true")])
        .with_watch(Watch::poll(Duration::from_millis(5)));
    run(async {
        let first = future::or(async { drain(&mut src).await.0 }, async {
            // `or` polls the source first: it has found no file and is
            // waiting when this creates it.
            std::fs::write(&path, lines(1..=2)).unwrap();
            future::pending().await
        })
        .await;
        assert_eq!(ids(&first), [1, 2]);
    });
}

#[test]
fn resume_mid_file_loses_and_repeats_nothing() {
    let dir = scratch("file-resume");
    let path = dir.join("in.csv");
    std::fs::write(&path, format!("h\n{}", lines(1..=10))).unwrap();
    for stop_after in [1usize, 4, 9, 10] {
        let mut src = source(&path, &[("header", "1")]);
        let mut first = Vec::new();
        let pos = run(async {
            let mut pos = Position::None;
            for _ in 0..stop_after {
                match src.next().await.unwrap() {
                    Next::Event(e, p) => {
                        first.push(
                            std::str::from_utf8(e.field(0).unwrap())
                                .unwrap()
                                .parse::<i64>()
                                .unwrap(),
                        );
                        pos = p;
                    }
                    other => panic!("{other:?}"),
                }
            }
            pos
        });
        drop(src);
        let mut again = source(&path, &[("header", "1")]);
        again.resume_from(pos).unwrap();
        let (rest, end) = run(drain(&mut again));
        assert_eq!(end, End::Finished);
        first.extend(ids(&rest));
        assert_eq!(
            first,
            (1..=10).collect::<Vec<_>>(),
            "stopped after {stop_after}"
        );
    }
}

#[test]
fn resume_after_rotation_finishes_the_old_file_then_reads_the_new() {
    let dir = scratch("file-resume-rot");
    let path = dir.join("app.csv");
    std::fs::write(&path, lines(1..=5)).unwrap();
    let mut src = source(&path, &[("growinginputfile", "true")])
        .with_watch(Watch::poll(Duration::from_millis(5)));
    let pos = run(async {
        let mut pos = Position::None;
        for _ in 0..3 {
            if let Next::Event(_, p) = src.next().await.unwrap() {
                pos = p;
            }
        }
        pos
    });
    drop(src);
    std::fs::rename(&path, dir.join("app.csv.1")).unwrap();
    append(&dir.join("app.csv.1"), &lines(6..=6));
    std::fs::write(&path, lines(7..=8)).unwrap();

    let mut again = source(&path, &[("growinginputfile", "true")])
        .with_watch(Watch::poll(Duration::from_millis(5)));
    again.resume_from(pos).unwrap();
    let mut all = Vec::new();
    run(async {
        for _ in 0..100 {
            all.extend(drain(&mut again).await.0);
            if all.len() >= 5 {
                break;
            }
        }
    });
    assert_eq!(ids(&all), [4, 5, 6, 7, 8]);

    // The old file gone: the new file from its start.
    let pos = all[1].1;
    std::fs::remove_file(dir.join("app.csv.1")).unwrap();
    let mut third = source(&path, &[]);
    third.resume_from(pos).unwrap();
    let (got, _) = run(drain(&mut third));
    assert_eq!(ids(&got), [7, 8]);

    // A position past the end (the file was truncated meanwhile): from the start.
    let mut fourth = source(&path, &[]);
    let Position::File { dev, ino, .. } = all[4].1 else {
        panic!()
    };
    fourth
        .resume_from(Position::File {
            dev,
            ino,
            offset: 1 << 20,
        })
        .unwrap();
    let (got, _) = run(drain(&mut fourth));
    assert_eq!(ids(&got), [7, 8]);
}

/// After a resume mid-file, a bad line is still named by its line number
/// (counted from the file's start), not by a byte offset.
#[test]
fn a_bad_line_after_a_resume_is_named_by_its_line() {
    let dir = scratch("file-bad-line-resume");
    let path = dir.join("in.csv");
    let text = "i,n,1,a\ni,n,2,b\ni,n,3,c\ni,n,4,d\ni,n,5,e\ni,n,six,f\n";
    std::fs::write(&path, text).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    let after_third = text.match_indices('\n').nth(2).unwrap().0 as u64 + 1;
    let mut src = source(&path, &[]);
    src.resume_from(Position::File {
        dev: meta.dev(),
        ino: meta.ino(),
        offset: after_third,
    })
    .unwrap();
    let err = run(async {
        loop {
            match src.next().await {
                Ok(Next::Event(..)) => continue,
                Ok(other) => panic!("no error before {other:?}"),
                Err(e) => return e.to_string(),
            }
        }
    });
    assert!(err.contains("line 6"), "{err}");
    assert!(!err.contains("byte"), "{err}");
}
