//! Replication: the history of recent snapshots, each player's acknowledged baseline, and the
//! per-tick encode cache (one delta per distinct baseline, shared by every player who acked it).
//!
//! Plain synchronous code: the room calls it with the captured snapshot and gets bytes back.

use bytes::Bytes;
use std::collections::VecDeque;
use tickwire_protocol::{Schema, Snapshot, Tick, delta};

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
    pub fn encode(
        &mut self,
        schema: &Schema,
        history: &History,
        baseline: Option<Tick>,
    ) -> Option<Bytes> {
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
        let bytes = Bytes::from(delta::encode(schema, base, latest));
        self.encodes += 1;
        self.entries.push((key, bytes.clone()));
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use tickwire_arena::view as arena;
    use tickwire_arena::{EntityKind, EntityState};
    use tickwire_protocol::world::{Applied, ClientWorld};
    use tickwire_protocol::{NetId, PlayerId};

    fn snap(tick: u32, x: u16) -> Snapshot {
        arena::capture(
            Tick(tick),
            [EntityState {
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
        let a = cache
            .encode(&arena::schema(), &history, Some(Tick(latest.0 - 2)))
            .unwrap();
        let b = cache
            .encode(&arena::schema(), &history, Some(Tick(latest.0 - 2)))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(cache.encodes, 1);
        // Too old, unknown and absent baselines all give the same full snapshot.
        let full = cache
            .encode(&arena::schema(), &history, Some(Tick(5)))
            .unwrap();
        cache.encode(&arena::schema(), &history, None).unwrap();
        cache
            .encode(&arena::schema(), &history, Some(Tick(latest.0 + 100)))
            .unwrap();
        assert_eq!(cache.encodes, 2);
        assert_eq!(delta::read_header(&full).unwrap().baseline_low(), None);
        let base = history.get(Tick(latest.0 - 2)).unwrap();
        assert_eq!(
            delta::decode(&arena::schema(), &a, Some(base)).unwrap(),
            *history.latest().unwrap()
        );
    }

    /// One step of a random world: entities move (some in straight lines), turn, get hurt,
    /// spawn and despawn.
    fn evolve(world: &mut Vec<EntityState>, tick: u32, next_id: &mut u32, rng: &mut fastrand::Rng) {
        world.retain(|_| rng.u32(0..50) != 0);
        for e in world.iter_mut() {
            match rng.u32(0..8) {
                0 => e.vel = [rng.u16(0..16384), rng.u16(0..16384)],
                1 => e.aim = rng.u16(0..1024),
                2 => e.health = rng.u8(..),
                3 => e.pos = [rng.u16(0..16384), rng.u16(0..16384)],
                _ => e.pos = e.advance(Tick(tick - 1), Tick(tick), 60).pos,
            }
        }
        for _ in 0..rng.usize(0..4) {
            *next_id += 1 + rng.u32(0..3);
            world.push(EntityState {
                id: NetId(*next_id),
                kind: EntityKind::from_bits(rng.u32(0..3)).unwrap(),
                owner: rng.bool().then(|| PlayerId(rng.u32(0..40))),
                pos: [rng.u16(0..16384), rng.u16(0..16384)],
                vel: [8192 + rng.u16(0..200), 8192],
                aim: rng.u16(0..1024),
                health: 100,
            });
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever snapshots and acks are lost or late, every snapshot a client decodes equals
        /// the server's quantised world at that tick, and clients that see the same acks share
        /// one encode.
        #[test]
        fn clients_converge_through_loss(
            seed in any::<u64>(),
            snapshot_loss in 0u32..60,
            ack_loss in 0u32..60,
            ack_delay in 0usize..6,
            ticks in 60u32..240,
        ) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut world: Vec<EntityState> = Vec::new();
            let mut next_id = 0;
            let mut history = History::default();
            let mut cache = EncodeCache::default();
            // Three clients with independent loss.
            let mut clients: Vec<(ClientWorld, Option<Tick>, VecDeque<Option<Tick>>)> =
                (0..3).map(|_| (ClientWorld::new(arena::schema()), None, VecDeque::new())).collect();
            let mut decoded = 0;
            for t in 1..=ticks {
                evolve(&mut world, t, &mut next_id, &mut rng);
                history.push(arena::capture(Tick(t), world.iter().copied()));
                let truth = history.latest().unwrap().clone();
                for (client, acked, in_flight) in clients.iter_mut() {
                    // Acks sent `ack_delay` ticks ago arrive now, unless lost.
                    if in_flight.len() > ack_delay
                        && let Some(Some(a)) = in_flight.pop_front()
                    {
                        *acked = Some(acked.map_or(a, |x| x.max(a)));
                    }
                    let body = cache.encode(&arena::schema(), &history, *acked).unwrap();
                    let mut ack = None;
                    if rng.u32(0..100) >= snapshot_loss {
                        match client.apply(&body) {
                            Ok(Applied::Newer { tick, .. }) => {
                                prop_assert_eq!(tick, truth.tick);
                                prop_assert_eq!(client.current(), Some(&truth));
                                decoded += 1;
                            }
                            other => prop_assert!(false, "unexpected {:?}", other),
                        }
                        ack = client.current().map(|s| s.tick);
                    }
                    in_flight.push_back(if rng.u32(0..100) >= ack_loss { ack } else { None });
                }
            }
            prop_assert!(decoded > 0);
            prop_assert!(cache.encodes <= ticks as u64 * 3);
        }
    }
}
