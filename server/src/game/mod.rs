//! Game modes. A mode is plain synchronous code over a hecs world: it never reads a clock or a
//! socket; the room hands it the inputs and the fixed time step.

pub mod arena;

use hecs::World;
use tickwire_protocol::{EntityState, NetId, PlayerId, RoomEvent, RoomState};

/// What a player wants this tick: the newest input the room holds for it.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct TickInput {
    pub move_dir: glam::Vec2,
    pub aim: f32,
    pub fire: bool,
}

pub trait Game: Send {
    /// Gives the player an entity; returns its net id.
    fn add_player(&mut self, world: &mut World, player: PlayerId, name: &str) -> NetId;
    fn remove_player(&mut self, world: &mut World, player: PlayerId);
    /// Advances one fixed step; pushes what happened to `events`.
    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, TickInput)],
        dt: f32,
        events: &mut Vec<RoomEvent>,
    );
    /// Appends the replicated state of every entity (any order) to `out`.
    fn capture(&self, world: &World, out: &mut Vec<EntityState>);
    fn state(&self) -> RoomState;
}

/// The modes this server knows.
pub const MODES: &[&str] = &[tickwire_protocol::DEFAULT_MODE];

pub fn is_known_mode(mode: &str) -> bool {
    MODES.contains(&mode)
}
