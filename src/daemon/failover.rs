//! The failover shell: what the owner (`owner`) does with the protocol of
//! `failover`. Messages come in through the admin API (`POST
//! {base}/cluster`) and go out as HTTP POSTs to the other managers' admin
//! APIs; a role change tells the senders their mode (publish, or trim as a
//! standby: `engine::sender::Orders`); what the node must keep across
//! restarts is saved in `{state-dir}/cluster`.

use super::Core;
use crate::failover::{wire, Msg, Node, Out, Role, Timing};
use crate::journal::Storage;
use async_executor::LocalExecutor;
use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// The path of failover messages under each admin base.
pub const PATH: &str = "/cluster";
const SAVED_FILE: &str = "cluster";

/// How this manager takes part in failover (from the command line).
#[derive(Debug, Clone, Default)]
pub struct FailoverOptions {
    /// The address other managers reach this one at (its admin API).
    pub me: Option<String>,
    /// `-standby HOST:PORT`: the leader to register with.
    pub standby: Option<String>,
    /// Every manager of a cluster must run the same config.
    pub fingerprint: u64,
}

/// Failover traffic, for the metrics.
#[derive(Debug, Default)]
pub struct Traffic {
    pub sent_messages: Cell<u64>,
    pub sent_bytes: Cell<u64>,
    pub send_failures: Cell<u64>,
    pub received_messages: Cell<u64>,
    pub received_bytes: Cell<u64>,
}

/// The address other managers reach this one at: the admin API's bound
/// address; when bound to every interface, the local address of the route
/// to the leader (a connected UDP socket: nothing is sent), else loopback.
pub fn advertised(bound: std::net::SocketAddr, leader: Option<&str>) -> String {
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let local = leader.and_then(|l| {
        let s = std::net::UdpSocket::bind((bound.ip(), 0)).ok()?;
        s.connect(l).ok()?;
        s.local_addr().ok()
    });
    match local {
        Some(a) => std::net::SocketAddr::new(a.ip(), bound.port()).to_string(),
        None => {
            log::warn!(
                "failover: -http {bound} binds every interface; other managers are told 127.0.0.1:{}; bind -http to the address they reach this manager at",
                bound.port()
            );
            format!("127.0.0.1:{}", bound.port())
        }
    }
}

/// The node a manager starts with: what it saved, else a standby of
/// `-standby`, else the leader of a new failover group.
pub fn start_node(state_dir: &Path, o: &FailoverOptions, timing: Timing) -> Result<Node, String> {
    let me = o.me.clone().unwrap_or_else(|| "local".to_string());
    let path = state_dir.join(SAVED_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let saved = wire::decode_saved(&path.display().to_string(), &text)?;
            if saved.managers.iter().any(|m| m.addr != me) {
                log::info!(
                    "failover: {} names {} managers (epoch {}); asking them who leads",
                    path.display(),
                    saved.managers.len(),
                    saved.epoch
                );
            }
            Ok(Node::restart(
                &me,
                saved,
                o.standby.as_deref(),
                o.fingerprint,
                timing,
                0,
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(match &o.standby {
            Some(l) => Node::standby(&me, l, o.fingerprint, timing, 0),
            None => Node::leader(&me, o.fingerprint, timing, 0),
        }),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn role_upper(r: Role) -> &'static str {
    match r {
        Role::Leader => "LEADER",
        Role::Standby => "STANDBY",
    }
}

impl Core {
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A message from another manager, as the admin API received it.
    pub(crate) fn failover_receive(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut super::owner::Control,
        body: &str,
    ) -> Result<(), String> {
        let msg = wire::decode("body", body)?;
        self.traffic
            .received_messages
            .set(self.traffic.received_messages.get() + 1);
        self.traffic
            .received_bytes
            .set(self.traffic.received_bytes.get() + body.len() as u64);
        self.failover_step(ex, ctl, Some(msg));
        Ok(())
    }

    /// Keeps what the node must keep across restarts (the journal's own
    /// write-temp, fsync, rename, fsync-folder).
    pub(super) fn save_node(&self, saved: &crate::failover::Saved) {
        let r = self
            .shared
            .journal
            .borrow_mut()
            .storage_mut()
            .replace(SAVED_FILE, wire::encode_saved(saved).as_bytes());
        if let Err(e) = r {
            log::error!(
                "failover: cannot save {}: {e}",
                self.options.state_dir.join(SAVED_FILE).display()
            );
        }
    }

    pub(super) fn failover_out(
        self: &Rc<Self>,
        ex: &LocalExecutor<'_>,
        ctl: &mut super::owner::Control,
        o: Out,
    ) {
        match o {
            Out::Send { to, msg } => {
                let core = self.clone();
                ex.spawn(async move { core.peer_send(&to, &msg).await })
                    .detach();
            }
            Out::Role { from, to, epoch } => {
                let leader = ctl.node.leader_addr().map(str::to_string);
                log::warn!(
                    "role={}=>{} epoch={epoch}{}",
                    role_upper(from),
                    role_upper(to),
                    match (to, leader) {
                        (Role::Standby, Some(l)) => format!(" leader={l}"),
                        _ => String::new(),
                    }
                );
                if to == Role::Leader {
                    // What the old leader had delivered counts as ours.
                    for (&k, &v) in &ctl.peer_acked {
                        let e = ctl.acked.entry(k).or_insert(0);
                        *e = (*e).max(v);
                    }
                }
                // The node's role is `to` already: senders are told it.
                ctl.tell_senders();
            }
            Out::Acked => {
                for (&k, &v) in ctl.node.acked() {
                    let e = ctl.peer_acked.entry(k).or_insert(0);
                    *e = (*e).max(v);
                }
                ctl.tell_senders();
            }
            Out::Refused { by, why } => {
                log::error!("failover: {by} refused this manager: {why}");
            }
        }
    }

    async fn peer_send(&self, to: &str, msg: &Msg) {
        let body = wire::encode(msg);
        let Some((host, port)) = to.rsplit_once(':') else {
            log::error!("failover: manager address {to:?} has no port");
            return;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(port) = port.parse::<u16>() else {
            log::error!("failover: manager address {to:?} has no port number");
            return;
        };
        let mut client = crate::http::client::Client::new(host, port)
            .with_auth(self.options.security.for_peer(host, port));
        let path = format!("{}{PATH}", crate::http::BASES[0]);
        let timeout = Duration::from_millis(self.options.timeout_ms.max(1));
        let t = &self.traffic;
        t.sent_messages.set(t.sent_messages.get() + 1);
        t.sent_bytes.set(t.sent_bytes.get() + body.len() as u64);
        let r = client
            .request("POST", &path, Some("text/plain"), body.as_bytes(), timeout)
            .await;
        let failed = match r {
            Ok(r) if r.is_success() => None,
            Ok(r) => Some(format!(
                "answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body).trim()
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = failed {
            t.send_failures.set(t.send_failures.get() + 1);
            log::debug!("failover: POST {path} to {to}: {why}");
        }
    }

    /// Engines may be added or removed only where the change cannot make
    /// managers route differently (the change is not mirrored yet).
    pub(crate) fn engines_changeable(&self, ctl: &super::owner::Control) -> Result<(), String> {
        let node = &ctl.node;
        if node.role() == Role::Standby {
            return Err(format!(
                "this manager is a standby; change engines through the leader{}",
                node.leader_addr()
                    .map(|l| format!(" at {l}"))
                    .unwrap_or_default()
            ));
        }
        if node.managers().len() > 1 {
            return Err(format!(
                "{} standby managers are registered and engine changes are not mirrored to them; stop them first",
                node.managers().len() - 1
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cluster_file_restarts_a_manager_that_does_not_lead_at_once() {
        let dir = std::env::temp_dir().join(format!("edgecm-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let timing = Timing {
            tick_ms: 100,
            retries: 2,
        };
        let o = FailoverOptions {
            me: Some("127.0.0.1:1".into()),
            standby: None,
            fingerprint: 9,
        };
        let fresh = start_node(&dir, &o, timing).unwrap();
        assert_eq!(fresh.role(), Role::Leader);
        let mut s = fresh.saved();
        s.managers.push(crate::failover::Manager {
            id: 1,
            addr: "127.0.0.1:2".into(),
        });
        let mut storage = crate::journal::DirStorage::open(&dir).unwrap();
        crate::journal::Storage::replace(
            &mut storage,
            SAVED_FILE,
            wire::encode_saved(&s).as_bytes(),
        )
        .unwrap();
        let again = start_node(&dir, &o, timing).unwrap();
        assert_eq!(again.role(), Role::Standby, "asks 127.0.0.1:2 first");
        std::fs::write(dir.join(SAVED_FILE), "nonsense").unwrap();
        let e = start_node(&dir, &o, timing).unwrap_err();
        assert!(e.contains("cluster:1: starts with \"nonsense\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
