//! Waiting for a followed file to change: inotify on the file's folder where
//! the kernel has it, a stat poll otherwise, behind one [`Watch::changed`].
//!
//! The folder, not the file, is watched, so a rename (rotation), a new file
//! under the name, a truncation and an append all wake the source. A wake-up
//! only says "look again": the source stats and reads to find out what
//! happened, so a lost or spurious event costs nothing but a look. Even with
//! inotify the source looks again every [`SAFETY_POLL`], in case the kernel's
//! event queue overflowed.

use async_io::{Async, Timer};
use futures_lite::future;
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

/// How often a followed file is looked at without inotify.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often it is looked at even with inotify.
pub const SAFETY_POLL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Watch {
    inotify: Option<Async<OwnedFd>>,
    interval: Duration,
}

impl Watch {
    /// Watches the folder of `path` with inotify, or polls if that fails.
    pub fn new(path: &Path) -> Watch {
        match Self::inotify(path) {
            Ok(fd) => Watch {
                inotify: Some(fd),
                interval: SAFETY_POLL,
            },
            Err(e) => {
                log::info!(
                    "{}: inotify unavailable ({e}); looking for changes every {} ms",
                    path.display(),
                    POLL_INTERVAL.as_millis()
                );
                Watch::poll(POLL_INTERVAL)
            }
        }
    }

    /// Polls every `interval`, without inotify.
    pub fn poll(interval: Duration) -> Watch {
        Watch {
            inotify: None,
            interval,
        }
    }

    pub fn uses_inotify(&self) -> bool {
        self.inotify.is_some()
    }

    fn inotify(path: &Path) -> std::io::Result<Async<OwnedFd>> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        inotify::add_watch(
            &fd,
            dir,
            WatchFlags::MODIFY
                | WatchFlags::ATTRIB
                | WatchFlags::CLOSE_WRITE
                | WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MOVED_FROM
                | WatchFlags::MOVED_TO,
        )?;
        Async::new(fd)
    }

    /// Returns after something changed in the folder, or after the poll
    /// interval: either way the caller looks again.
    pub async fn changed(&mut self) {
        let Some(fd) = &self.inotify else {
            Timer::after(self.interval).await;
            return;
        };
        let woke = async {
            let _ = fd.readable().await;
        };
        future::or(woke, async {
            Timer::after(self.interval).await;
        })
        .await;
        // Drain the queued events: they are only wake-ups.
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(fd.get_ref(), &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}
