//! The text form of failover messages, the body of `POST {base}/cluster`
//! (and of the `cluster` file a manager saves in its state dir). One item per
//! line, readable with `curl`:
//!
//! ```text
//! edgecm-failover 1
//! from 127.0.0.1:9001
//! update
//! epoch 3
//! counter 17
//! manager 0 127.0.0.1:9001
//! manager 1 127.0.0.1:9002
//! acked 0 1 123456          (engine, raw-source, event count)
//! ```
//! Other kinds: `register` + `config HEX`; `not-leader` + `epoch N` and
//! optionally `leader ADDR`; `refused` + `why TEXT`; `probe`; `alive`.

use super::{Acked, Body, Manager, Msg, Saved, Update};
use std::fmt::Write;

const MAGIC: &str = "edgecm-failover 1";

pub fn encode(m: &Msg) -> String {
    let mut s = format!("{MAGIC}\nfrom {}\n", m.from);
    match &m.body {
        Body::Register { config } => {
            let _ = writeln!(s, "register\nconfig {config:016x}");
        }
        Body::Update(u) => {
            let _ = writeln!(s, "update\nepoch {}\ncounter {}", u.epoch, u.counter);
            managers(&mut s, &u.managers);
            for ((e, src), n) in &u.acked {
                let _ = writeln!(s, "acked {e} {src} {n}");
            }
        }
        Body::NotLeader { epoch, leader } => {
            let _ = writeln!(s, "not-leader\nepoch {epoch}");
            if let Some(l) = leader {
                let _ = writeln!(s, "leader {l}");
            }
        }
        Body::Refused { why } => {
            let _ = writeln!(s, "refused\nwhy {}", why.replace('\n', " "));
        }
        Body::Probe => s.push_str("probe\n"),
        Body::Alive => s.push_str("alive\n"),
    }
    s
}

fn managers(s: &mut String, ms: &[Manager]) {
    for m in ms {
        let _ = writeln!(s, "manager {} {}", m.id, m.addr);
    }
}

/// `origin:line: what; accepted: ...`
fn err(origin: &str, line: usize, what: String) -> String {
    format!("{origin}:{line}: {what}")
}

fn number<T: std::str::FromStr>(origin: &str, n: usize, v: &str, what: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| err(origin, n, format!("{what} {v:?} is not a number")))
}

/// The fields of a message or saved state, with their line numbers.
struct Fields<'a> {
    kind: Option<(usize, &'a str)>,
    values: Vec<(usize, &'a str, &'a str)>,
}

fn fields<'a>(origin: &str, text: &'a str) -> Result<Fields<'a>, String> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    match lines.next() {
        Some((_, MAGIC)) => {}
        Some((n, other)) => {
            return Err(err(
                origin,
                n,
                format!("starts with {other:?}; accepted: {MAGIC:?}"),
            ))
        }
        None => return Err(err(origin, 1, format!("is empty; accepted: {MAGIC:?}"))),
    }
    let mut f = Fields {
        kind: None,
        values: Vec::new(),
    };
    for (n, l) in lines.filter(|(_, l)| !l.is_empty()) {
        match l.split_once(' ') {
            Some((k, v)) => f.values.push((n, k, v.trim())),
            None if f.kind.is_none() => f.kind = Some((n, l)),
            None => return Err(err(origin, n, format!("{l:?} has no value"))),
        }
    }
    Ok(f)
}

impl Fields<'_> {
    fn one(&self, origin: &str, key: &str) -> Result<(usize, &str), String> {
        self.values
            .iter()
            .find(|v| v.1 == key)
            .map(|v| (v.0, v.2))
            .ok_or_else(|| {
                let at = self.kind.map_or(1, |k| k.0);
                err(origin, at, format!("no {key:?} line"))
            })
    }

    fn managers(&self, origin: &str) -> Result<Vec<Manager>, String> {
        let mut out = Vec::new();
        for &(n, _, v) in self.values.iter().filter(|v| v.1 == "manager") {
            let (id, addr) = v
                .split_once(' ')
                .ok_or_else(|| err(origin, n, format!("manager {v:?}: accepted: ID ADDRESS")))?;
            let id: u8 = number(origin, n, id, "manager id")?;
            if id >= super::MANAGERS_MAX {
                return Err(err(
                    origin,
                    n,
                    format!("manager id {id}: accepted: 0..{}", super::MANAGERS_MAX - 1),
                ));
            }
            out.push(Manager {
                id,
                addr: addr.to_string(),
            });
        }
        Ok(out)
    }
}

pub fn decode(origin: &str, text: &str) -> Result<Msg, String> {
    let f = fields(origin, text)?;
    let from = f.one(origin, "from")?.1.to_string();
    let (kn, kind) = f
        .kind
        .ok_or_else(|| err(origin, 2, "no message kind".to_string()))?;
    let num = |key: &str| -> Result<u64, String> {
        let (n, v) = f.one(origin, key)?;
        number(origin, n, v, key)
    };
    let body = match kind {
        "register" => {
            let (n, v) = f.one(origin, "config")?;
            Body::Register {
                config: u64::from_str_radix(v, 16)
                    .map_err(|_| err(origin, n, format!("config {v:?} is not hexadecimal")))?,
            }
        }
        "update" => {
            let mut acked = Acked::new();
            for &(n, _, v) in f.values.iter().filter(|v| v.1 == "acked") {
                let p: Vec<&str> = v.split(' ').collect();
                let [e, s, c] = p[..] else {
                    return Err(err(
                        origin,
                        n,
                        format!("acked {v:?}: accepted: ENGINE SOURCE COUNT"),
                    ));
                };
                acked.insert(
                    (
                        number(origin, n, e, "engine")?,
                        number(origin, n, s, "source")?,
                    ),
                    number(origin, n, c, "count")?,
                );
            }
            Body::Update(Update {
                epoch: num("epoch")?,
                counter: num("counter")?,
                managers: f.managers(origin)?,
                acked,
            })
        }
        "not-leader" => Body::NotLeader {
            epoch: num("epoch")?,
            leader: f.one(origin, "leader").ok().map(|v| v.1.to_string()),
        },
        "refused" => Body::Refused {
            why: f.one(origin, "why")?.1.to_string(),
        },
        "probe" => Body::Probe,
        "alive" => Body::Alive,
        other => {
            return Err(err(
                origin,
                kn,
                format!(
                    "message kind {other:?}; accepted: register, update, not-leader, refused, probe, alive"
                ),
            ))
        }
    };
    Ok(Msg { from, body })
}

/// The `cluster` file: what a manager keeps across restarts.
pub fn encode_saved(s: &Saved) -> String {
    let mut out = format!("{MAGIC}\nsaved\nepoch {}\n", s.epoch);
    if let Some(id) = s.id {
        let _ = writeln!(out, "id {id}");
    }
    managers(&mut out, &s.managers);
    out
}

pub fn decode_saved(origin: &str, text: &str) -> Result<Saved, String> {
    let f = fields(origin, text)?;
    let (n, v) = f.one(origin, "epoch")?;
    Ok(Saved {
        epoch: number(origin, n, v, "epoch")?,
        id: match f.one(origin, "id") {
            Ok((n, v)) => Some(number(origin, n, v, "id")?),
            Err(_) => None,
        },
        managers: f.managers(origin)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<Msg> {
        let mut acked = Acked::new();
        acked.insert((0, 1), 123_456);
        acked.insert((5, 0), 7);
        [
            Body::Register {
                config: 0xdead_beef_0000_0001,
            },
            Body::Update(Update {
                epoch: 17,
                counter: 4,
                managers: vec![
                    Manager {
                        id: 1,
                        addr: "127.0.0.1:9002".into(),
                    },
                    Manager {
                        id: 0,
                        addr: "127.0.0.1:9001".into(),
                    },
                ],
                acked,
            }),
            Body::NotLeader {
                epoch: 3,
                leader: Some("127.0.0.1:9001".into()),
            },
            Body::NotLeader {
                epoch: 0,
                leader: None,
            },
            Body::Refused {
                why: "config differs".into(),
            },
            Body::Probe,
            Body::Alive,
        ]
        .into_iter()
        .map(|body| Msg {
            from: "127.0.0.1:9003".into(),
            body,
        })
        .collect()
    }

    #[test]
    fn every_message_round_trips() {
        for m in msgs() {
            assert_eq!(decode("body", &encode(&m)).unwrap(), m);
        }
        let s = Saved {
            id: Some(2),
            epoch: 18,
            managers: vec![Manager {
                id: 2,
                addr: "x:1".into(),
            }],
        };
        assert_eq!(decode_saved("cluster", &encode_saved(&s)).unwrap(), s);
    }

    #[test]
    fn bad_bodies_say_where_and_what_is_accepted() {
        let e = decode("body", "hello").unwrap_err();
        assert!(e.starts_with("body:1: starts with \"hello\""), "{e}");
        let e = decode(
            "body",
            "edgecm-failover 1\nfrom a:1\nupdate\nepoch x\ncounter 1\n",
        )
        .unwrap_err();
        assert_eq!(e, "body:4: epoch \"x\" is not a number");
        let e = decode("body", "edgecm-failover 1\nfrom a:1\nshout\n").unwrap_err();
        assert!(
            e.starts_with("body:3: message kind \"shout\"; accepted: register"),
            "{e}"
        );
        let e = decode(
            "body",
            "edgecm-failover 1\nfrom a:1\nupdate\nepoch 1\ncounter 1\nacked 1 2\n",
        )
        .unwrap_err();
        assert!(
            e.contains("body:6: acked \"1 2\": accepted: ENGINE SOURCE COUNT"),
            "{e}"
        );
    }
}
