//! The arena's replicated schema and its typed view of a snapshot's entities.
//!
//! Snapshots hold quantised integers only, so the server's captured world and a client's decoded
//! world compare exactly. Every kind (player, drone, projectile) has the same fields, with this
//! precision:
//! - position: 1/16 unit over [0, 1024) → 14 bits per axis
//! - velocity: 1/8 unit/s over [-1024, 1024) → 14 bits per axis
//! - aim: 2π/1024 (about 0.35°) → 10 bits
//! - health: whole points 0..=255 → 8 bits

use serde::{Deserialize, Serialize};
use std::f32::consts::TAU;
use std::sync::{Arc, OnceLock};
use tickwire_game::glam::Vec2;
use tickwire_game::protocol::delta::{self, Clock};
use tickwire_game::protocol::schema::{Field, FieldType, Kind, Predict, Schema};
use tickwire_game::protocol::{Capture, EntityRef, Head, NetId, PlayerId, Snapshot, Tick};

pub const POS_BITS: u32 = 14;
pub const POS_SCALE: f32 = 16.0;
pub const VEL_BITS: u32 = 14;
pub const VEL_SCALE: f32 = 8.0;
pub const AIM_BITS: u32 = 10;
pub const HEALTH_BITS: u32 = 8;
pub const KIND_BITS: u32 = 2;

const POS_MAX_Q: u32 = (1 << POS_BITS) - 1;
const VEL_HALF_Q: i32 = 1 << (VEL_BITS - 1);
const AIM_STEPS: u32 = 1 << AIM_BITS;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    Player = 0,
    Drone = 1,
    Projectile = 2,
}

impl EntityKind {
    pub fn from_bits(bits: u32) -> Option<EntityKind> {
        match bits {
            0 => Some(EntityKind::Player),
            1 => Some(EntityKind::Drone),
            2 => Some(EntityKind::Projectile),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Player => "player",
            EntityKind::Drone => "drone",
            EntityKind::Projectile => "projectile",
        }
    }
}

/// The arena's schema: the kinds in [`EntityKind`]'s order, each with `pos` (following `vel`),
/// `vel`, `aim` and `health`; the input is [`crate::ArenaInput`].
pub fn schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let field = |name: &str, ty, dims, predict| Field {
                name: name.into(),
                ty,
                dims,
                predict,
            };
            let fields = vec![
                field(
                    "pos",
                    FieldType::fixed(0.0, 1024.0, 1, POS_SCALE as u32),
                    2,
                    Predict::Integrate(1),
                ),
                field(
                    "vel",
                    FieldType::fixed(-1024.0, 1024.0, 1, VEL_SCALE as u32),
                    2,
                    Predict::Hold,
                ),
                field(
                    "aim",
                    FieldType::Angle {
                        bits: AIM_BITS as u8,
                    },
                    1,
                    Predict::Hold,
                ),
                field(
                    "health",
                    FieldType::Int { min: 0, max: 255 },
                    1,
                    Predict::Hold,
                ),
            ];
            let kinds = [
                EntityKind::Player,
                EntityKind::Drone,
                EntityKind::Projectile,
            ]
            .map(|k| Kind {
                name: k.as_str().into(),
                fields: fields.clone(),
            })
            .into();
            let schema = tickwire_game::declare::<crate::Arena>(kinds);
            Arc::new(schema.expect("the arena schema is well formed"))
        })
        .clone()
}

/// Slots of an arena entity: pos x, y, vel x, y, aim, health.
pub const SLOTS: usize = 6;

/// A snapshot of arena entities (any order).
pub fn capture(tick: Tick, entities: impl IntoIterator<Item = EntityState>) -> Snapshot {
    let mut capture = Capture::new(SLOTS);
    for e in entities {
        capture.push(e.head(), &e.slots());
    }
    Snapshot::capture(capture, tick)
}

/// The arena entities of a snapshot (entities of kinds the arena does not know are skipped).
pub fn entities(snapshot: &Snapshot) -> impl Iterator<Item = EntityState> + '_ {
    snapshot.iter().filter_map(EntityState::from_entity)
}

/// The arena entity `id` of a snapshot.
pub fn get(snapshot: &Snapshot, id: NetId) -> Option<EntityState> {
    snapshot.get(id).and_then(EntityState::from_entity)
}

/// One entity as replicated: every field already quantised.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityState {
    pub id: NetId,
    pub kind: EntityKind,
    /// The player who owns it: a player's own avatar, or the shooter of a projectile.
    pub owner: Option<PlayerId>,
    pub pos: [u16; 2],
    /// Stored offset by half the range, so it is unsigned on the wire.
    pub vel: [u16; 2],
    pub aim: u16,
    pub health: u8,
}

impl EntityState {
    /// The quantised velocity of an entity at rest (zero on both axes).
    pub const REST_VEL: [u16; 2] = [VEL_HALF_Q as u16; 2];

    /// Quantises simulation values into a replicated state.
    pub fn quantise(
        id: NetId,
        kind: EntityKind,
        owner: Option<PlayerId>,
        pos: Vec2,
        vel: Vec2,
        aim: f32,
        health: f32,
    ) -> EntityState {
        let s = quantised_slots(pos, vel, aim, health);
        EntityState {
            id,
            kind,
            owner,
            pos: [s[0] as u16, s[1] as u16],
            vel: [s[2] as u16, s[3] as u16],
            aim: s[4] as u16,
            health: s[5] as u8,
        }
    }

    pub fn head(&self) -> Head {
        Head {
            id: self.id,
            kind: self.kind as u16,
            owner: self.owner,
        }
    }

    pub fn slots(&self) -> [u32; SLOTS] {
        [
            self.pos[0] as u32,
            self.pos[1] as u32,
            self.vel[0] as u32,
            self.vel[1] as u32,
            self.aim as u32,
            self.health as u32,
        ]
    }

    /// The typed view of a snapshot entity in the arena's schema.
    pub fn from_entity(e: EntityRef<'_>) -> Option<EntityState> {
        let v = e.values.get(..SLOTS)?;
        Some(EntityState {
            id: e.id,
            kind: EntityKind::from_bits(e.kind as u32)?,
            owner: e.owner,
            pos: [v[0] as u16, v[1] as u16],
            vel: [v[2] as u16, v[3] as u16],
            aim: v[4] as u16,
            health: v[5] as u8,
        })
    }

    /// Where the arena's schema predicts this entity at `to`, moving at its own velocity since
    /// `from` (what a delta costs nothing for).
    pub fn advance(&self, from: Tick, to: Tick, tick_rate: u8) -> EntityState {
        let mut out = [0; SLOTS];
        let clock = Clock {
            from,
            to,
            tick_rate,
        };
        let slots = self.slots();
        delta::predict(&schema(), self.kind as u16, &slots, &slots, clock, &mut out);
        EntityState {
            pos: [out[0] as u16, out[1] as u16],
            ..*self
        }
    }

    pub fn position(&self) -> Vec2 {
        Vec2::new(dequantise_pos(self.pos[0]), dequantise_pos(self.pos[1]))
    }

    pub fn velocity(&self) -> Vec2 {
        Vec2::new(dequantise_vel(self.vel[0]), dequantise_vel(self.vel[1]))
    }

    pub fn aim_angle(&self) -> f32 {
        dequantise_aim(self.aim)
    }
}

/// The slots of an entity's simulation values (what [`EntityState::quantise`] holds), for a
/// capture that pushes them straight into the snapshot.
#[inline]
pub fn quantised_slots(pos: Vec2, vel: Vec2, aim: f32, health: f32) -> [u32; SLOTS] {
    [
        quantise_pos(pos.x) as u32,
        quantise_pos(pos.y) as u32,
        quantise_vel(vel.x) as u32,
        quantise_vel(vel.y) as u32,
        quantise_aim(aim) as u32,
        round(health).clamp(0, 255) as u32,
    ]
}

/// `x` rounded half away from zero (as `f32::round`), saturating, NaN as 0. Without SSE4.1 a
/// float `round` is a library call; capturing a room rounds five values an entity, so this one
/// truncates instead (exact: below 2^23 the fraction `x - trunc(x)` is exact, above it `x` is
/// whole).
fn round(x: f32) -> i64 {
    let t = x as i64;
    let frac = x - t as f32;
    t.saturating_add((frac >= 0.5) as i64)
        .saturating_sub((frac <= -0.5) as i64)
}

pub fn quantise_pos(v: f32) -> u16 {
    round(v * POS_SCALE).clamp(0, POS_MAX_Q as i64) as u16
}

pub fn dequantise_pos(q: u16) -> f32 {
    q as f32 / POS_SCALE
}

pub fn quantise_vel(v: f32) -> u16 {
    let q = round(v * VEL_SCALE).clamp(-(VEL_HALF_Q as i64), (VEL_HALF_Q - 1) as i64);
    (q + VEL_HALF_Q as i64) as u16
}

pub fn dequantise_vel(q: u16) -> f32 {
    (q as i32 - VEL_HALF_Q) as f32 / VEL_SCALE
}

/// Any finite angle maps onto [0, AIM_STEPS); non-finite angles become 0.
pub fn quantise_aim(angle: f32) -> u16 {
    if !angle.is_finite() {
        return 0;
    }
    round(angle * (AIM_STEPS as f32 / TAU)).rem_euclid(AIM_STEPS as i64) as u16
}

/// Back to an angle in [-PI, PI).
pub fn dequantise_aim(q: u16) -> f32 {
    let a = (q as u32 % AIM_STEPS) as f32 / AIM_STEPS as f32 * TAU;
    if a >= std::f32::consts::PI {
        a - TAU
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_round_trips_within_precision() {
        for v in [0.0f32, 1.03, 499.97, 1000.0] {
            assert!((dequantise_pos(quantise_pos(v)) - v).abs() <= 0.5 / POS_SCALE);
        }
        for v in [-1000.0f32, -3.3, 0.0, 219.99, 600.0] {
            assert!((dequantise_vel(quantise_vel(v)) - v).abs() <= 0.5 / VEL_SCALE);
        }
        for a in [-3.1f32, -1.0, 0.0, 0.5, 3.1] {
            let back = dequantise_aim(quantise_aim(a));
            let diff = (back - a + std::f32::consts::PI).rem_euclid(TAU) - std::f32::consts::PI;
            assert!(diff.abs() <= TAU / AIM_STEPS as f32);
        }
        assert_eq!(quantise_pos(f32::NAN), 0);
        assert_eq!(quantise_pos(1e9), POS_MAX_Q as u16);
        assert_eq!(quantise_vel(f32::NAN), quantise_vel(0.0));
        for x in [
            0.0f32, 0.49999997, 0.5, 1.5, 2.5, -0.5, -1.5, -2.4999998, 8388607.5, 1e20, -1e20,
        ] {
            assert_eq!(round(x), x.round() as i64, "{x}");
        }
        assert_eq!(round(f32::NAN), 0);
    }
}
