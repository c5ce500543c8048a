//! A snapshot: the quantised state of every replicated entity of a room at one tick.

use crate::ids::{NetId, Tick};
use crate::schema::EntityState;

/// The tick rate a snapshot assumes when none is given.
pub const DEFAULT_TICK_RATE: u8 = 60;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub tick: Tick,
    /// Simulation steps per second. Deltas predict a moving entity's position from its
    /// baseline velocity over the ticks between the two snapshots; this is the clock for that.
    /// 0 turns prediction off.
    pub tick_rate: u8,
    /// Sorted by id, ids unique. [`Snapshot::capture`] establishes this; the delta decoder
    /// preserves it.
    pub entities: Vec<EntityState>,
}

impl Snapshot {
    /// Builds a snapshot from entities in any order (the server's ECS iteration order).
    pub fn capture(tick: Tick, mut entities: Vec<EntityState>) -> Snapshot {
        entities.sort_unstable_by_key(|e| e.id);
        entities.dedup_by_key(|e| e.id);
        Snapshot {
            tick,
            tick_rate: DEFAULT_TICK_RATE,
            entities,
        }
    }

    pub fn with_tick_rate(mut self, tick_rate: u8) -> Snapshot {
        self.tick_rate = tick_rate;
        self
    }

    pub fn get(&self, id: NetId) -> Option<&EntityState> {
        self.entities
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.entities[i])
    }
}
