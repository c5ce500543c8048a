//! tickwire-game: the public game API, the only way a game reaches a tickwire server.
//!
//! A game is plain synchronous code over a hecs world, written in its own crate: it never reads
//! a clock or a socket, and never sees bincode; the room hands it the inputs and the fixed time
//! step, and takes what it replicates as a [`Capture`] in the shape of the [`Schema`] it
//! declares. The server re-exports this crate as `tickwire_server::game`; a server binary
//! registers games by mode name (`Server::builder(..).game::<MyGame>("mine", config)`).
//!
//! The crates a game needs are re-exported so its versions match the server's: [`hecs`],
//! [`glam`] and [`protocol`] (ids, the schema descriptor, snapshots, room events).

pub use glam;
pub use hecs;
pub use tickwire_protocol as protocol;

use hecs::World;
use std::sync::Arc;
use tickwire_protocol::{Capture, NetId, PlayerId, RoomEvent, Schema, Snapshot};

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
    /// A bot that plays this game, for seats the room fills with server bots; `None` (the
    /// default) when the game has no AI, and rooms of it then refuse bots.
    fn new_bot(&self, _seed: u64) -> Option<Box<dyn Bot>> {
        None
    }
}

/// What a player does in one step: the input a human's client or a [`Bot`] sends.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Action {
    /// Movement direction, length at most 1.
    pub move_dir: glam::Vec2,
    /// Aim angle in radians, in [-π, π].
    pub aim: f32,
    pub buttons: u8,
}

/// A game's AI. It sees what a player sees (the newest snapshot the player received) and plays
/// through the players' own input path, so a bot can do nothing a player could not. Server bots
/// and the `tickwire-bots` swarm both use it.
pub trait Bot: Send {
    /// What the player `me` does next, given the world it last saw.
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Action;
}

/// A game the server can host under a mode name: how to make one for a new room.
pub trait GameMode: Game + Sized + 'static {
    /// What the mode is registered with (for the arena: drones, score limit, match length).
    type Config: Clone + Send + Sync + 'static;
    /// A fresh game for one room. `seed` differs from room to room, for the game's random
    /// numbers, so a room replays the same from the same inputs.
    fn new_room(config: &Self::Config, seed: u64) -> Self;
}
