//! The games a server hosts, by mode name.

use crate::game::{Game, GameMode};
use std::collections::BTreeMap;
use std::sync::Arc;

type MakeGame = dyn Fn(u64) -> Box<dyn Game> + Send + Sync;

/// The modes a server hosts, by name, each with its config: what rooms can be created.
#[derive(Clone, Default)]
pub struct Modes {
    by_name: BTreeMap<String, Arc<MakeGame>>,
    /// The first registered: what a create or quick-join that names no mode gets.
    default: Option<String>,
}

/// A mode name registered twice.
#[derive(Debug, thiserror::Error)]
#[error("mode {0:?} is registered twice")]
pub struct DuplicateMode(pub String);

impl Modes {
    pub fn add<G: GameMode>(&mut self, name: &str, config: G::Config) -> Result<(), DuplicateMode> {
        if self.by_name.contains_key(name) {
            return Err(DuplicateMode(name.to_owned()));
        }
        let make = move |seed| Box::new(G::new_room(&config, seed)) as Box<dyn Game>;
        self.by_name.insert(name.to_owned(), Arc::new(make));
        self.default.get_or_insert_with(|| name.to_owned());
        Ok(())
    }

    /// The mode a request that names none (an empty mode) gets: the first one registered.
    pub fn default_mode(&self) -> Option<&str> {
        self.default.as_deref()
    }

    pub fn contains(&self, mode: &str) -> bool {
        self.by_name.contains_key(mode)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// A new game of `mode` for one room, if the mode is registered.
    pub fn new_game(&self, mode: &str, seed: u64) -> Option<Box<dyn Game>> {
        self.by_name.get(mode).map(|make| make(seed))
    }
}
