//! Name resolution that never holds the manager's thread.
//!
//! An address literal (`10.0.0.5`, `::1`, `[::1]`) is used as it is. A host
//! name is resolved by the C library's resolver (`getaddrinfo`, through
//! `ToSocketAddrs`) on a short-lived thread of its own, and the core waits for
//! the answer without blocking, up to a deadline. A resolver that hangs past
//! the deadline leaves its thread to finish on its own (the C library's own
//! time-outs end it); the caller reports the time-out and tries again later.
//! No thread pool is kept: resolution happens once per connection attempt
//! after a failure, not per request.

use async_io::Timer;
use futures_lite::future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::limits::RESOLVER_STACK;

/// `host` as an address literal, brackets allowed around IPv6.
pub fn literal(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

/// `host:port` for a `Host` header or a message: IPv6 literals in brackets.
pub fn authority(host: &str, port: u16) -> String {
    match literal(host) {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// The addresses of `host`, without blocking the calling thread for more
/// than it takes to start a thread.
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    if let Some(ip) = literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = async_channel::bounded(1);
    let name = host.to_string();
    std::thread::Builder::new()
        .name("edgecm-dns".into())
        .stack_size(RESOLVER_STACK)
        .spawn(move || {
            let r = (name.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            let _ = tx.send_blocking(r);
        })?;
    let answer = future::or(async { rx.recv().await.ok() }, async {
        Timer::after(timeout).await;
        None
    })
    .await;
    match answer {
        Some(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Some(Ok(_)) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}: the resolver returned no address"),
        )),
        Some(Err(e)) => Err(io::Error::new(e.kind(), format!("{host}: {e}"))),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{host}: no answer from the resolver within {timeout:?}"),
        )),
    }
}

/// `HOST:PORT` of another manager (`-standby`).
pub fn parse_peer(s: &str) -> Result<(&str, u16), String> {
    s.rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok().filter(|&p| p > 0)?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| format!("{s:?} is not accepted; accepted: HOST:PORT (e.g. 127.0.0.1:12347, leader.example:12347)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_resolver() {
        assert_eq!(literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("127.0.0.1"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal("esp1.example"), None);
        assert_eq!(authority("::1", 80), "[::1]:80");
        assert_eq!(authority("[::1]", 80), "[::1]:80");
        assert_eq!(authority("h", 80), "h:80");
        let a = async_io::block_on(resolve("[::1]", 8, Duration::from_millis(1))).unwrap();
        assert_eq!(a, vec!["[::1]:8".parse().unwrap()]);
    }

    #[test]
    fn localhost_resolves_on_a_thread() {
        let a = async_io::block_on(resolve("localhost", 9, Duration::from_secs(10))).unwrap();
        assert!(a.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }
}
