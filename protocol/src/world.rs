//! A receiver's world: the snapshots decoded so far, kept so any of them can serve as the
//! baseline of a later delta. The client acknowledges only ticks it decoded, and the server never
//! deltas against a tick the client did not acknowledge nor older than
//! [`delta::MAX_BASELINE_AGE`] ticks, so the baseline is always here.

use crate::delta::{self, DecodeError};
use crate::{Schema, Snapshot, Tick};
use std::collections::VecDeque;
use std::sync::Arc;

/// Decoded snapshots kept as possible baselines: one per tick of the oldest baseline a server
/// may use ([`delta::MAX_BASELINE_AGE`]), and the newest.
pub const KEPT_SNAPSHOTS: usize = delta::MAX_BASELINE_AGE as usize + 1;

pub struct ClientWorld {
    /// The room's schema; None: read only each snapshot's header and keep its tick, with no
    /// entities (see [`ClientWorld::ticks_only`]).
    schema: Option<Arc<Schema>>,
    /// Ticks strictly increasing; the back is the newest. Shared, so handing the newest to the
    /// game costs a reference count, not a copy.
    kept: VecDeque<Arc<Snapshot>>,
}

/// What applying one snapshot did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// A snapshot newer than any before: it is now the current world. `delta`: it was encoded
    /// against a baseline (not a full snapshot).
    Newer { tick: Tick, delta: bool },
    /// Older than the current world (it arrived late): ignored.
    Stale(Tick),
}

impl ClientWorld {
    /// A world that decodes snapshots in the shape of `schema`.
    pub fn new(schema: Arc<Schema>) -> ClientWorld {
        ClientWorld {
            schema: Some(schema),
            kept: VecDeque::new(),
        }
    }

    pub fn schema(&self) -> Option<&Arc<Schema>> {
        self.schema.as_ref()
    }

    /// A world that follows the snapshot stream's ticks without decoding the entities: every
    /// kept snapshot is empty. For load generators, which must acknowledge ticks (the server
    /// does the same delta work for them as for a real player) but need not see the world;
    /// decoding is most of a client's CPU per snapshot.
    pub fn ticks_only() -> ClientWorld {
        ClientWorld {
            schema: None,
            kept: VecDeque::new(),
        }
    }

    /// The newest decoded snapshot.
    pub fn current(&self) -> Option<&Snapshot> {
        self.kept.back().map(|s| &**s)
    }

    /// The newest decoded snapshot, shared.
    pub fn current_shared(&self) -> Option<Arc<Snapshot>> {
        self.kept.back().cloned()
    }

    pub fn get(&self, tick: Tick) -> Option<&Snapshot> {
        self.kept
            .iter()
            .rev()
            .find(|s| s.tick == tick)
            .map(|s| &**s)
    }

    /// Decodes a delta body against the baseline it names and keeps the result.
    pub fn apply(&mut self, body: &[u8]) -> Result<Applied, DecodeError> {
        let header = delta::read_header(body)?;
        // The header names the baseline by its tick's low byte; the server never uses one more
        // than MAX_BASELINE_AGE ticks old, so the newest kept match is the one.
        let base = match header.baseline_low() {
            Some(low) => Some(
                self.kept
                    .iter()
                    .rev()
                    .find(|s| s.tick.0 & 0xff == low as u32)
                    .map(|s| &**s)
                    .ok_or(DecodeError::MissingBaseline(low))?,
            ),
            None => None,
        };
        let tick = header
            .tick(base.map(|b| b.tick))
            .ok_or(DecodeError::Malformed("tick overflow"))?;
        if let Some(current) = self.current()
            && tick <= current.tick
        {
            return Ok(Applied::Stale(tick));
        }
        let snapshot = match &self.schema {
            Some(schema) => delta::decode(schema, body, base)?,
            _ => {
                let tick_rate = match header {
                    delta::DeltaHeader::Full { tick_rate, .. } => tick_rate,
                    delta::DeltaHeader::Delta { .. } => base.map_or(0, |b| b.tick_rate),
                };
                Snapshot::empty(tick, 0).with_tick_rate(tick_rate)
            }
        };
        let delta = base.is_some();
        // Keep what a later delta may still name as its baseline.
        while self
            .kept
            .front()
            .is_some_and(|s| tick.0.saturating_sub(s.tick.0) > delta::MAX_BASELINE_AGE)
            || self.kept.len() >= KEPT_SNAPSHOTS
        {
            self.kept.pop_front();
        }
        self.kept.push_back(Arc::new(snapshot));
        Ok(Applied::Newer { tick, delta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetId;
    use crate::fixture::{self as arena, EntityKind, EntityState};

    fn encode(base: Option<&Snapshot>, next: &Snapshot) -> Vec<u8> {
        delta::encode(&arena::schema(), base, next)
    }

    fn snap(tick: u32, x: u16) -> Snapshot {
        arena::capture(
            Tick(tick),
            [EntityState {
                id: NetId(3),
                kind: EntityKind::Player,
                owner: None,
                pos: [x, 1],
                vel: [0, 0],
                aim: 0,
                health: 100,
            }],
        )
    }

    #[test]
    fn deltas_apply_in_order_and_late_ones_are_ignored() {
        let mut world = ClientWorld::new(arena::schema());
        let (s1, s2, s3) = (snap(1, 10), snap(2, 20), snap(3, 30));
        assert_eq!(
            world.apply(&encode(None, &s1)),
            Ok(Applied::Newer {
                tick: Tick(1),
                delta: false
            })
        );
        assert_eq!(
            world.apply(&encode(Some(&s1), &s3)),
            Ok(Applied::Newer {
                tick: Tick(3),
                delta: true
            })
        );
        assert_eq!(
            world.apply(&encode(Some(&s1), &s2)),
            Ok(Applied::Stale(Tick(2)))
        );
        assert_eq!(world.current(), Some(&s3));
        let s4 = snap(4, 40);
        assert_eq!(
            world.apply(&encode(Some(&s2), &s4)),
            Err(DecodeError::MissingBaseline(2))
        );
    }

    #[test]
    fn a_ticks_only_world_follows_the_ticks_without_entities() {
        let mut world = ClientWorld::ticks_only();
        let (s1, s3, s4) = (snap(1, 10), snap(3, 30), snap(4, 40));
        world.apply(&encode(None, &s1)).unwrap();
        assert_eq!(
            world.apply(&encode(Some(&s1), &s3)),
            Ok(Applied::Newer {
                tick: Tick(3),
                delta: true
            })
        );
        assert_eq!(
            world.apply(&encode(Some(&s3), &s4)),
            Ok(Applied::Newer {
                tick: Tick(4),
                delta: true
            })
        );
        let current = world.current().unwrap();
        assert_eq!((current.tick, current.tick_rate), (Tick(4), s1.tick_rate));
        assert!(current.is_empty());
    }
}
