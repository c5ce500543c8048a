//! Game modes. A mode is plain synchronous code over a hecs world: it never reads a clock or a
//! socket; the room hands it the inputs and the fixed time step.

pub mod arena;
pub mod brain;
pub mod standard;

use hecs::World;
use std::collections::BTreeMap;
use std::sync::Arc;
use tickwire_protocol::{Capture, NetId, PlayerId, RoomEvent, Schema};

/// What a player wants this tick: the input its queue gives this step (see `room::inputs`).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct TickInput {
    pub move_dir: glam::Vec2,
    pub aim: f32,
    pub fire: bool,
    /// A new input this step; false when the player sent nothing newer and the last one is
    /// held (for a game that applies each input once, not each step).
    pub fresh: bool,
}

/// A game mode. The room owns the lifecycle (waiting, countdown, playing, finished); the mode
/// plays: between matches it runs a warm-up (players move, nothing counts), and from
/// `start_match` until it reports [`RoomEvent::MatchEnded`] it runs the match.
pub trait Game: Send {
    /// Players needed before a match may start.
    fn min_players(&self) -> usize;
    /// Gives the player an entity; returns its net id.
    fn add_player(&mut self, world: &mut World, player: PlayerId, name: &str) -> NetId;
    fn remove_player(&mut self, world: &mut World, player: PlayerId);
    /// Resets scores and positions and starts a match; pushes `MatchStarted`.
    fn start_match(&mut self, world: &mut World, events: &mut Vec<RoomEvent>);
    /// Stops a running match without a result (everybody left).
    fn abort_match(&mut self, world: &mut World);
    /// Advances one fixed step; pushes what happened to `events`, `MatchEnded` included when the
    /// match is over (the mode is then back to warm-up).
    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, TickInput)],
        dt: f32,
        events: &mut Vec<RoomEvent>,
    );
    /// The replicated schema every [`Game::capture`] follows (the same for every room of a mode).
    fn schema(&self) -> Arc<Schema>;
    /// Adds the replicated state of every entity (any order) to `out`, in the shape of
    /// [`Game::schema`].
    fn capture(&self, world: &World, out: &mut Capture);
}

/// A game the server can host under a mode name: how to make one for a new room.
pub trait GameMode: Game + Sized + 'static {
    /// What the mode is registered with (for the arena: drones, score limit, match length).
    type Config: Clone + Send + Sync + 'static;
    /// A fresh game for one room. `seed` differs from room to room, for the game's random
    /// numbers, so a room replays the same from the same inputs.
    fn new_room(config: &Self::Config, seed: u64) -> Self;
}

type MakeGame = dyn Fn(u64) -> Box<dyn Game> + Send + Sync;

/// The modes a server hosts, by name, each with its config: what rooms can be created.
#[derive(Clone, Default)]
pub struct Modes {
    by_name: BTreeMap<String, Arc<MakeGame>>,
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
        Ok(())
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
