//! A snapshot: the quantised state of every replicated entity of a room at one tick.

use crate::ids::{NetId, Tick};
use crate::schema::EntityState;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub tick: Tick,
    /// Sorted by id, ids unique. [`Snapshot::capture`] establishes this; the delta decoder
    /// preserves it.
    pub entities: Vec<EntityState>,
}

impl Snapshot {
    /// Builds a snapshot from entities in any order (the server's ECS iteration order).
    pub fn capture(tick: Tick, mut entities: Vec<EntityState>) -> Snapshot {
        entities.sort_unstable_by_key(|e| e.id);
        entities.dedup_by_key(|e| e.id);
        Snapshot { tick, entities }
    }

    pub fn get(&self, id: NetId) -> Option<&EntityState> {
        self.entities
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.entities[i])
    }
}
