//! The games a server hosts, by mode name.

use crate::game::{GameMode, Messages, Record};
use crate::room::hosted::{Adapter, Hosted};
use std::collections::BTreeMap;
use std::sync::Arc;

type MakeGame = dyn Fn(u64) -> Box<dyn Hosted> + Send + Sync;

struct Mode {
    make: Box<MakeGame>,
    /// Whether the game has an AI, so rooms of it take server bots.
    bots: bool,
}

/// What a client may know of a mode before joining one of its rooms (`GET /api/modes`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModeInfo {
    pub name: String,
    pub bots: bool,
    /// The mode a create or quick-join that names none gets.
    pub default: bool,
}

/// The modes a server hosts, by name, each with its config: what rooms can be created.
#[derive(Clone, Default)]
pub struct Modes {
    by_name: BTreeMap<String, Arc<Mode>>,
    /// The first registered: what a create or quick-join that names no mode gets.
    default: Option<String>,
}

/// A mode that cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error("mode {0:?} is registered twice")]
    Duplicate(String),
    /// The schema a game returns must declare its own input and message types, or clients
    /// built from those types would be refused by every room.
    #[error("mode {mode:?}: its schema's {what} are not its types' declarations")]
    Undeclared { mode: String, what: &'static str },
}

impl Modes {
    pub fn add<G: GameMode>(&mut self, name: &str, config: G::Config) -> Result<(), ModeError> {
        if self.by_name.contains_key(name) {
            return Err(ModeError::Duplicate(name.to_owned()));
        }
        let probe = G::new_room(&config, 0);
        let schema = probe.schema();
        let bots = probe.new_bot(0).is_some();
        let undeclared = |what| ModeError::Undeclared {
            mode: name.to_owned(),
            what,
        };
        if schema.input() != G::Input::fields() {
            return Err(undeclared("input fields"));
        }
        let messages = schema.messages();
        if messages.to_room != G::ToRoom::kinds() || messages.to_player != G::ToPlayer::kinds() {
            return Err(undeclared("messages"));
        }
        let make = move |seed| {
            let game = G::new_room(&config, seed);
            Box::new(Adapter::known(game, schema.clone(), bots)) as Box<dyn Hosted>
        };
        let mode = Mode {
            make: Box::new(make),
            bots,
        };
        self.by_name.insert(name.to_owned(), Arc::new(mode));
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
    pub(crate) fn new_game(&self, mode: &str, seed: u64) -> Option<Box<dyn Hosted>> {
        self.by_name.get(mode).map(|m| (m.make)(seed))
    }

    /// Every mode, by name.
    pub fn list(&self) -> Vec<ModeInfo> {
        self.by_name
            .iter()
            .map(|(name, m)| ModeInfo {
                name: name.clone(),
                bots: m.bots,
                default: self.default.as_deref() == Some(name),
            })
            .collect()
    }
}
