//! The arena's input: where the player moves, where it aims, and whether it fires. Declared
//! for the wire as `move` (two components in [−1, 1] in steps of 1/4096, both ends included), `aim` (a 16-bit
//! angle) and `buttons` (a bool: fire held; the name is the contract's, from when it was a
//! bit field).

use tickwire_game::glam::Vec2;
use tickwire_game::protocol::schema::{Field, FieldType};
use tickwire_game::{Record, Values};

#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct ArenaInput {
    /// Movement direction; the game clamps its length to 1 (0 = stand still).
    pub move_dir: Vec2,
    /// Aim angle in radians, 0 pointing along +x.
    pub aim: f32,
    pub fire: bool,
}

impl Record for ArenaInput {
    fn fields() -> Vec<Field> {
        vec![
            Field::new("move", FieldType::fixed_closed(-1.0, 1.0, 1, 4096), 2),
            Field::new("aim", FieldType::Angle { bits: 16 }, 1),
            Field::new("buttons", FieldType::Bool, 1),
        ]
    }

    fn write(&self, out: &mut Vec<f32>) {
        out.extend([
            self.move_dir.x,
            self.move_dir.y,
            self.aim,
            self.fire as u8 as f32,
        ]);
    }

    fn read(v: &mut Values<'_>) -> Self {
        ArenaInput {
            move_dir: v.vec2(),
            aim: v.f32(),
            fire: v.bool(),
        }
    }
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
