//! Game modes. A mode is plain synchronous code over a hecs world: it never reads a clock or a
//! socket; the room hands it the inputs and the fixed time step.

pub mod arena;
pub mod brain;

use hecs::World;
use tickwire_protocol::{EntityState, NetId, PlayerId, RoomEvent};

/// What a player wants this tick: the input its queue gives this step (see `room::inputs`).
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct TickInput {
    pub move_dir: glam::Vec2,
    pub aim: f32,
    pub fire: bool,
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
    /// Appends the replicated state of every entity (any order) to `out`.
    fn capture(&self, world: &World, out: &mut Vec<EntityState>);
}

/// The modes this server knows.
pub const MODES: &[&str] = &[tickwire_protocol::DEFAULT_MODE];

pub fn is_known_mode(mode: &str) -> bool {
    MODES.contains(&mode)
}
