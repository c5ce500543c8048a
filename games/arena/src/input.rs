//! The arena's input: where the player moves, where it aims, and whether it fires. Declared
//! for the wire as `move` (two components in [−1, 1] in steps of 1/4096, both ends included), `aim` (a 16-bit
//! angle) and `buttons` (a bool: fire held; the name is the contract's, from when it was a
//! bit field).

use tickwire_game::Record;
use tickwire_game::glam::Vec2;

#[derive(Copy, Clone, Debug, Default, PartialEq, Record)]
pub struct ArenaInput {
    /// Movement direction; the game clamps its length to 1 (0 = stand still).
    #[tw(name = "move", fixed_closed(-1.0, 1.0, 1, 4096))]
    pub move_dir: Vec2,
    /// Aim angle in radians, 0 pointing along +x.
    #[tw(angle(16))]
    pub aim: f32,
    #[tw(name = "buttons")]
    pub fire: bool,
}

impl ArenaInput {
    /// The input as the server applies it: what survives quantisation. A client predicting its
    /// own player moves by this, so it lands where the server does.
    pub fn as_applied(&self) -> ArenaInput {
        self.to_slots()
            .and_then(|s| ArenaInput::from_slots(&s))
            .unwrap_or_default()
    }
}
