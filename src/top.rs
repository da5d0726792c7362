//! `edgecm top`: a live view of a running manager over its admin API, one
//! line per source and engine (state, events/s in or out, backlog and its
//! age, a sparkline of the last minute), the journal's use on top. Plain
//! ANSI (clear and home, no curses), a frame a second; `q` or Ctrl-C ends
//! it; `-once` prints one frame (for scripts).
//!
//! It reads `GET /SASESP/metrics` (the Prometheus text: lines are easy to
//! read back, no JSON parser needed) over a plain HTTP connection.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// One scrape, by the rows it shows.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    /// source -> (state, events accepted)
    pub sources: BTreeMap<String, (String, u64)>,
    /// engine (slot name, serving) -> (state, acked, backlog, backlog age s)
    pub engines: BTreeMap<String, (String, u64, u64, u64)>,
    pub journal_bytes: u64,
    pub journal_max: u64,
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let at = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let end = labels[at..].find('"')?;
    Some(&labels[at..at + end])
}

/// Reads the metrics text into a [`Scrape`].
pub fn parse(metrics: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let v: f64 = value.parse().unwrap_or(0.0);
        let (name, labels) = key.split_once('{').unwrap_or((key, ""));
        let engine = || {
            let slot = label(labels, "engine").unwrap_or("?");
            match label(labels, "serving") {
                Some(x) if x != slot => format!("{slot} ({x})"),
                _ => slot.to_string(),
            }
        };
        match name {
            "edgecm_source_accepted_events_total" => {
                s.sources
                    .entry(label(labels, "source").unwrap_or("?").into())
                    .or_default()
                    .1 = v as u64
            }
            "edgecm_source_running" => {
                s.sources
                    .entry(label(labels, "source").unwrap_or("?").into())
                    .or_default()
                    .0 = label(labels, "state").unwrap_or("?").into()
            }
            "edgecm_engine_state" if v > 0.0 => {
                s.engines.entry(engine()).or_default().0 =
                    label(labels, "state").unwrap_or("?").into()
            }
            "edgecm_engine_acked_events_total" => {
                s.engines.entry(engine()).or_default().1 = v as u64
            }
            "edgecm_engine_backlog_events" => s.engines.entry(engine()).or_default().2 = v as u64,
            "edgecm_engine_backlog_age_seconds" => {
                s.engines.entry(engine()).or_default().3 = v as u64
            }
            "edgecm_journal_bytes" => s.journal_bytes = v as u64,
            "edgecm_journal_bytes_max" => s.journal_max = v as u64,
            _ => {}
        }
    }
    s
}

/// `▁▂▃▄▅▆▇█` for the values, scaled to their maximum.
pub fn sparkline(values: &VecDeque<f64>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|&v| {
            if max <= 0.0 {
                ' '
            } else {
                BARS[((v / max) * 7.0).round() as usize]
            }
        })
        .collect()
}

/// The rows of one frame, from this scrape, the one before and the history.
pub fn frame(
    now: &Scrape,
    before: Option<&Scrape>,
    secs: f64,
    history: &mut BTreeMap<String, VecDeque<f64>>,
) -> String {
    let mut o = String::new();
    let share = now.journal_bytes as f64 * 100.0 / now.journal_max.max(1) as f64;
    o.push_str(&format!(
        "edgecm top    journal {} of {} bytes ({share:.1} %)\n\n",
        now.journal_bytes, now.journal_max
    ));
    o.push_str(&format!(
        "{:<26} {:<10} {:>10} {:>10} {:>8}  last minute\n",
        "SOURCE", "STATE", "IN/S", "", ""
    ));
    // The rate since the last frame (none before: 0), kept for the sparkline.
    let mut step = |key: String, count: u64, prev: Option<u64>| {
        let rate = count.saturating_sub(prev.unwrap_or(count)) as f64 / secs;
        let h = history.entry(key).or_default();
        h.push_back(rate);
        while h.len() > 60 {
            h.pop_front();
        }
        (rate, sparkline(h))
    };
    for (name, (state, accepted)) in &now.sources {
        let prev = before.and_then(|b| b.sources.get(name)).map(|p| p.1);
        let (rate, spark) = step(format!("s:{name}"), *accepted, prev);
        o.push_str(&format!(
            "{name:<26} {state:<10} {rate:>10.0} {:>10} {:>8}  {spark}\n",
            "", ""
        ));
    }
    o.push_str(&format!(
        "\n{:<26} {:<10} {:>10} {:>10} {:>8}  last minute\n",
        "ENGINE", "STATE", "OUT/S", "BACKLOG", "AGE"
    ));
    for (name, (state, acked, backlog, age)) in &now.engines {
        let prev = before.and_then(|b| b.engines.get(name)).map(|p| p.1);
        let (rate, spark) = step(format!("e:{name}"), *acked, prev);
        o.push_str(&format!(
            "{name:<26} {state:<10} {rate:>10.0} {backlog:>10} {:>7}s  {spark}\n",
            age
        ));
    }
    o
}

/// `GET /SASESP/metrics` from `addr` (HOST:PORT).
fn scrape(addr: &str) -> Result<Scrape, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    let t = Some(Duration::from_secs(5));
    s.set_read_timeout(t).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET /SASESP/metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("{addr}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(parse(body))
}

/// Raw keys from a terminal while it runs; restored when dropped.
struct Raw(Option<rustix::termios::Termios>);

impl Raw {
    fn enter() -> Raw {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let stdin = std::io::stdin();
        let Ok(old) = tcgetattr(&stdin) else {
            return Raw(None);
        };
        let mut t = old.clone();
        t.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &t);
        Raw(Some(old))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                old,
            );
        }
    }
}

/// Runs `edgecm top` against `addr`; `once`: one frame and exit.
pub fn run(addr: &str, once: bool, every: Duration) -> Result<(), String> {
    let mut history = BTreeMap::new();
    let first = scrape(addr)?;
    if once {
        // Two scrapes a moment apart, so rates mean something.
        std::thread::sleep(every.min(Duration::from_secs(1)));
        let now = scrape(addr)?;
        print!(
            "{}",
            frame(
                &now,
                Some(&first),
                every.min(Duration::from_secs(1)).as_secs_f64(),
                &mut history
            )
        );
        return Ok(());
    }
    let _raw = Raw::enter();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while std::io::stdin().read(&mut b).is_ok_and(|n| n == 1) {
            if matches!(b[0], b'q' | b'Q' | 3) {
                let _ = tx.send(());
                return;
            }
        }
    });
    let mut before = first;
    let mut at = Instant::now();
    loop {
        if rx.recv_timeout(every).is_ok() {
            println!("\x1b[0m");
            return Ok(());
        }
        let now = match scrape(addr) {
            Ok(s) => s,
            Err(e) => {
                print!("\x1b[H\x1b[2Jedgecm top: {e}; trying again (q quits)\r\n");
                let _ = std::io::stdout().flush();
                continue;
            }
        };
        let secs = at.elapsed().as_secs_f64();
        at = Instant::now();
        let f = frame(&now, Some(&before), secs, &mut history).replace('\n', "\r\n");
        print!("\x1b[H\x1b[2J{f}\r\nq quits\r\n");
        let _ = std::io::stdout().flush();
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_read_back_and_a_frame() {
        let m = "# HELP x\nedgecm_source_accepted_events_total{source=\"trades\"} 100\nedgecm_source_running{source=\"trades\",state=\"running\"} 1\nedgecm_engine_state{cluster=\"c\",engine=\"esp1\",serving=\"esp4\",state=\"ready\"} 1\nedgecm_engine_acked_events_total{cluster=\"c\",engine=\"esp1\",serving=\"esp4\"} 40\nedgecm_engine_backlog_events{cluster=\"c\",engine=\"esp1\",serving=\"esp4\"} 60\nedgecm_engine_backlog_age_seconds{cluster=\"c\",engine=\"esp1\",serving=\"esp4\"} 3\nedgecm_journal_bytes 500\nedgecm_journal_bytes_max 1000\n";
        let s = parse(m);
        assert_eq!(s.sources["trades"], ("running".to_string(), 100));
        assert_eq!(s.engines["esp1 (esp4)"], ("ready".to_string(), 40, 60, 3));
        let mut before = s.clone();
        before.sources.get_mut("trades").unwrap().1 = 50;
        let f = frame(&s, Some(&before), 1.0, &mut BTreeMap::new());
        assert!(f.contains("journal 500 of 1000 bytes (50.0 %)"), "{f}");
        assert!(
            f.lines()
                .any(|l| l.starts_with("trades") && l.contains(" 50 ")),
            "{f}"
        );
        assert!(
            f.lines()
                .any(|l| l.starts_with("esp1 (esp4)") && l.contains(" 60 ") && l.contains("3s")),
            "{f}"
        );
        assert_eq!(sparkline(&VecDeque::from([0.0, 5.0, 10.0])), "▁▅█");
    }
}
