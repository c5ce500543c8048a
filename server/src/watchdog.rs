//! Notices work that has stopped: a room that has not ticked, or a lobby that has not swept,
//! for [`STALL_AFTER`]. Each is logged once when it stalls (and once when it recovers) and
//! counted in `/metrics` (`tickwire_stalls_total` by what stalled, `tickwire_stalled` now).
//!
//! The watcher runs on a thread of its own, not on the async runtime: what it must see is
//! exactly a runtime whose workers are stuck. Watched tasks beat a [`Heartbeat`] (one atomic
//! store); the watcher holds them weakly, so a room that closes simply drops out. Registration
//! goes through a channel, so nothing here is shared behind a lock. [`Watch::scan`] is the
//! decision, kept free of clocks and threads so tests step it.

use crate::metrics::{STALLED, STALLS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A task that has not beaten its heartbeat for this long is stalled: rooms beat 10 to 240 times
/// a second and the lobby once a second, so this is far beyond any healthy pause.
pub const STALL_AFTER: Duration = Duration::from_secs(3);
/// How often the watcher looks.
const SCAN_EVERY: Duration = Duration::from_millis(500);

/// The last time a task made progress, in milliseconds since its watcher started.
pub struct Heartbeat {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Heartbeat {
    pub fn beat(&self) {
        self.last_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }
}

/// What one heartbeat belongs to, for the log and the metric's labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watched {
    /// `room 12`, `lobby`.
    pub what: String,
    /// The metric label: a room's mode, or `lobby`.
    pub kind: String,
}

/// A change [`Watch::scan`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Stalled { watched: Watched, silent_ms: u64 },
    Recovered { watched: Watched, silent_ms: u64 },
}

struct Entry {
    watched: Watched,
    beat: Weak<Heartbeat>,
    stalled_since: Option<u64>,
}

/// The watcher's state: every live heartbeat and whether it is stalled.
#[derive(Default)]
pub struct Watch {
    entries: Vec<Entry>,
}

impl Watch {
    pub fn add(&mut self, watched: Watched, beat: &Arc<Heartbeat>) {
        self.entries.push(Entry {
            watched,
            beat: Arc::downgrade(beat),
            stalled_since: None,
        });
    }

    /// How many watched tasks are stalled now.
    pub fn stalled(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.stalled_since.is_some())
            .count()
    }

    /// Looks at every heartbeat at `now_ms` (the heartbeats' clock); forgets dropped ones.
    pub fn scan(&mut self, now_ms: u64) -> Vec<Change> {
        let stall_ms = STALL_AFTER.as_millis() as u64;
        let mut changes = Vec::new();
        self.entries.retain_mut(|e| {
            let Some(beat) = e.beat.upgrade() else {
                return false;
            };
            let last = beat.last_ms();
            let silent_ms = now_ms.saturating_sub(last);
            match e.stalled_since {
                None if silent_ms >= stall_ms => {
                    e.stalled_since = Some(last);
                    changes.push(Change::Stalled {
                        watched: e.watched.clone(),
                        silent_ms,
                    });
                }
                Some(since) if last > since => {
                    e.stalled_since = None;
                    changes.push(Change::Recovered {
                        watched: e.watched.clone(),
                        silent_ms: last - since,
                    });
                }
                _ => {}
            }
            true
        });
        changes
    }
}

/// Hands out heartbeats and registers them with the watcher thread.
#[derive(Clone)]
pub struct Watchdog {
    epoch: Instant,
    register: mpsc::Sender<(Watched, Arc<Heartbeat>)>,
}

impl Watchdog {
    /// Starts the watcher thread. It ends when every `Watchdog` clone is dropped.
    pub fn start() -> std::io::Result<Watchdog> {
        let epoch = Instant::now();
        let (register, added) = mpsc::channel();
        std::thread::Builder::new()
            .name("tickwire-watchdog".into())
            .spawn(move || watch(epoch, added))?;
        Ok(Watchdog { epoch, register })
    }

    /// A heartbeat for `watched`, beaten once already.
    pub fn heartbeat(&self, watched: Watched) -> Arc<Heartbeat> {
        let beat = Arc::new(Heartbeat {
            epoch: self.epoch,
            last_ms: AtomicU64::new(0),
        });
        beat.beat();
        // The watcher only stops once every Watchdog is gone; a send cannot fail before.
        let _ = self.register.send((watched, beat.clone()));
        beat
    }
}

fn watch(epoch: Instant, added: mpsc::Receiver<(Watched, Arc<Heartbeat>)>) {
    let mut state = Watch::default();
    loop {
        // The scan period; registrations wake it early and are taken at once.
        match added.recv_timeout(SCAN_EVERY) {
            Ok((watched, beat)) => state.add(watched, &beat),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        while let Ok((watched, beat)) = added.try_recv() {
            state.add(watched, &beat);
        }
        for change in state.scan(epoch.elapsed().as_millis() as u64) {
            match change {
                Change::Stalled { watched, silent_ms } => {
                    tracing::error!(
                        "{} has made no progress for {silent_ms} ms: stalled",
                        watched.what
                    );
                    metrics::counter!(STALLS, "kind" => watched.kind).increment(1);
                }
                Change::Recovered { watched, silent_ms } => {
                    tracing::warn!("{} is moving again after {silent_ms} ms", watched.what);
                }
            }
        }
        metrics::gauge!(STALLED).set(state.stalled() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(n: u32) -> Watched {
        Watched {
            what: format!("room {n}"),
            kind: "arena".into(),
        }
    }

    fn beat_at(ms: u64) -> Arc<Heartbeat> {
        Arc::new(Heartbeat {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(ms),
        })
    }

    #[test]
    fn a_silent_heartbeat_stalls_once_and_recovers_once() {
        let mut watch = Watch::default();
        let (busy, stuck) = (beat_at(0), beat_at(0));
        watch.add(room(1), &busy);
        watch.add(room(2), &stuck);
        assert!(watch.scan(1_000).is_empty());
        busy.last_ms.store(2_900, Ordering::Relaxed);
        assert_eq!(
            watch.scan(3_000),
            vec![Change::Stalled {
                watched: room(2),
                silent_ms: 3_000
            }]
        );
        assert_eq!(watch.stalled(), 1);
        // Still stalled: said once, not every scan.
        busy.last_ms.store(3_400, Ordering::Relaxed);
        assert!(watch.scan(3_500).is_empty());
        busy.last_ms.store(7_000, Ordering::Relaxed);
        stuck.last_ms.store(7_000, Ordering::Relaxed);
        assert_eq!(
            watch.scan(7_010),
            vec![Change::Recovered {
                watched: room(2),
                silent_ms: 7_000
            }]
        );
        assert_eq!(watch.stalled(), 0);
    }

    #[test]
    fn a_closed_room_is_forgotten_not_reported() {
        let mut watch = Watch::default();
        let gone = beat_at(0);
        watch.add(room(3), &gone);
        drop(gone);
        assert!(watch.scan(60_000).is_empty());
        assert!(watch.entries.is_empty());
    }
}
