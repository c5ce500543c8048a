//! Replication: the history of recent snapshots, each player's acknowledged baseline, and the
//! per-tick encode cache (one delta per distinct baseline, shared by every player who acked it).
//!
//! Plain synchronous code: the room calls it with the captured snapshot and gets bytes back.

use bytes::Bytes;
use std::collections::VecDeque;
use tickwire_protocol::{Snapshot, Tick, delta};

/// Snapshots kept to delta against: about one second at 60 Hz. An ack older than this gets a
/// full snapshot.
pub const HISTORY_LEN: usize = 64;

#[derive(Default)]
pub struct History {
    /// Oldest first; ticks strictly increasing.
    snapshots: VecDeque<Snapshot>,
}

impl History {
    pub fn push(&mut self, snapshot: Snapshot) {
        if self.snapshots.len() == HISTORY_LEN {
            self.snapshots.pop_front();
        }
        self.snapshots.push_back(snapshot);
    }

    pub fn get(&self, tick: Tick) -> Option<&Snapshot> {
        let (a, b) = self.snapshots.as_slices();
        [a, b].into_iter().find_map(|s| {
            s.binary_search_by_key(&tick, |snap| snap.tick)
                .ok()
                .map(|i| &s[i])
        })
    }

    pub fn latest(&self) -> Option<&Snapshot> {
        self.snapshots.back()
    }

    pub fn len(&self) -> usize {
        self.snapshots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }

    pub fn clear(&mut self) {
        self.snapshots.clear();
    }
}

/// Encodes the latest snapshot once per distinct baseline within one tick.
#[derive(Default)]
pub struct EncodeCache {
    tick: Option<Tick>,
    /// Few entries per tick (players acking the same few ticks): a vector beats a map here.
    entries: Vec<(Option<Tick>, Bytes)>,
    /// Encodes performed, for benchmarks and metrics.
    pub encodes: u64,
}

impl EncodeCache {
    /// The delta from `baseline` (which must be in `history`, else a full snapshot is made) to
    /// the latest snapshot in `history`.
    pub fn encode(&mut self, history: &History, baseline: Option<Tick>) -> Option<Bytes> {
        let latest = history.latest()?;
        if self.tick != Some(latest.tick) {
            self.tick = Some(latest.tick);
            self.entries.clear();
        }
        // Never delta against a tick we do not hold, nor against one too old for the format.
        let base = baseline
            .and_then(|t| history.get(t))
            .filter(|b| delta::usable_baseline(b, latest));
        let key = base.map(|b| b.tick);
        if let Some((_, bytes)) = self.entries.iter().find(|(k, _)| *k == key) {
            return Some(bytes.clone());
        }
        let bytes = Bytes::from(delta::encode(base, latest));
        self.encodes += 1;
        self.entries.push((key, bytes.clone()));
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_protocol::{EntityKind, EntityState, NetId};

    fn snap(tick: u32, x: u16) -> Snapshot {
        Snapshot::capture(
            Tick(tick),
            vec![EntityState {
                id: NetId(1),
                kind: EntityKind::Drone,
                owner: None,
                pos: [x, 0],
                vel: [0, 0],
                aim: 0,
                health: 1,
            }],
        )
    }

    #[test]
    fn cache_encodes_once_per_baseline_and_falls_back_to_full() {
        let mut history = History::default();
        for t in 1..=HISTORY_LEN as u32 + 10 {
            history.push(snap(t, t as u16));
        }
        assert_eq!(history.len(), HISTORY_LEN);
        assert!(history.get(Tick(5)).is_none());
        let mut cache = EncodeCache::default();
        let latest = history.latest().unwrap().tick;
        let a = cache.encode(&history, Some(Tick(latest.0 - 2))).unwrap();
        let b = cache.encode(&history, Some(Tick(latest.0 - 2))).unwrap();
        assert_eq!(a, b);
        assert_eq!(cache.encodes, 1);
        // Too old, unknown and absent baselines all give the same full snapshot.
        let full = cache.encode(&history, Some(Tick(5))).unwrap();
        cache.encode(&history, None).unwrap();
        cache.encode(&history, Some(Tick(latest.0 + 100))).unwrap();
        assert_eq!(cache.encodes, 2);
        assert_eq!(delta::read_header(&full).unwrap().baseline_low(), None);
        let base = history.get(Tick(latest.0 - 2)).unwrap();
        assert_eq!(
            delta::decode(&a, Some(base)).unwrap(),
            *history.latest().unwrap()
        );
    }
}
