//! A schema in the shape of a top-down shooter, for this crate's own tests of the codec and the
//! receiver's world: three kinds (player, drone, projectile) with the same fields, `pos` (1/16
//! over [0, 1024), following `vel`), `vel` (1/8 over [-1024, 1024)), `aim` (10-bit angle) and
//! `health` (0..=255); an input `{move, aim, fire}` and a message each way. The shipped games declare their own schemas in their own crates.

use crate::delta::{self, Clock};
use crate::ids::{NetId, PlayerId, Tick};
use crate::schema::{Field, FieldType, Kind, MessageKinds, Predict, Schema};
use crate::snapshot::{Capture, EntityRef, Head, Snapshot};
use glam::Vec2;
use std::sync::{Arc, OnceLock};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Player = 0,
    Drone = 1,
    Projectile = 2,
}

impl EntityKind {
    pub fn from_bits(bits: u32) -> Option<EntityKind> {
        [
            EntityKind::Player,
            EntityKind::Drone,
            EntityKind::Projectile,
        ]
        .get(bits as usize)
        .copied()
    }
}

pub fn schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields = [
                (
                    "pos",
                    FieldType::fixed(0.0, 1024.0, 1, 16),
                    2,
                    Predict::Integrate(1),
                ),
                (
                    "vel",
                    FieldType::fixed(-1024.0, 1024.0, 1, 8),
                    2,
                    Predict::Hold,
                ),
                ("aim", FieldType::Angle { bits: 10 }, 1, Predict::Hold),
                (
                    "health",
                    FieldType::Int { min: 0, max: 255 },
                    1,
                    Predict::Hold,
                ),
            ]
            .map(|(name, ty, dims, predict)| Field {
                name: name.into(),
                ty,
                dims,
                predict,
            });
            let kinds = ["player", "drone", "projectile"].map(|name| Kind {
                name: name.into(),
                fields: fields.to_vec(),
            });
            let input = vec![
                Field::new("move", FieldType::fixed(-1.0, 1.0, 1, 256), 2),
                Field::new("aim", FieldType::Angle { bits: 12 }, 1),
                Field::new("fire", FieldType::Bool, 1),
            ];
            let item = FieldType::Enum {
                variants: vec!["medkit".into(), "shield".into()],
            };
            let messages = MessageKinds {
                to_room: vec![Kind::new(
                    "buy",
                    vec![
                        Field::new("item", item, 1),
                        Field::new("count", FieldType::Int { min: 1, max: 9 }, 1),
                    ],
                )],
                to_player: vec![Kind::new(
                    "bought",
                    vec![Field::new("count", FieldType::Int { min: 0, max: 9 }, 1)],
                )],
            };
            let schema = Schema::new(kinds.into())
                .and_then(|s| s.with_input(input))
                .and_then(|s| s.with_messages(messages));
            Arc::new(schema.expect("the fixture schema is well formed"))
        })
        .clone()
}

const SLOTS: usize = 6;

pub fn capture(tick: Tick, entities: impl IntoIterator<Item = EntityState>) -> Snapshot {
    let mut capture = Capture::new(SLOTS);
    for e in entities {
        capture.push(e.head(), &e.slots());
    }
    Snapshot::capture(capture, tick)
}

pub fn entities(snapshot: &Snapshot) -> impl Iterator<Item = EntityState> + '_ {
    snapshot.iter().filter_map(EntityState::from_entity)
}

/// One entity, every field quantised.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityState {
    pub id: NetId,
    pub kind: EntityKind,
    pub owner: Option<PlayerId>,
    pub pos: [u16; 2],
    /// Offset by half the range.
    pub vel: [u16; 2],
    pub aim: u16,
    pub health: u8,
}

impl EntityState {
    pub const REST_VEL: [u16; 2] = [1 << 13; 2];

    /// Through the schema's own quantisation.
    pub fn quantise(
        id: NetId,
        kind: EntityKind,
        owner: Option<PlayerId>,
        pos: Vec2,
        vel: Vec2,
        aim: f32,
        health: f32,
    ) -> EntityState {
        let schema = schema();
        let ty = |name| &schema.kinds()[0].field(name).expect("a fixture field").ty;
        let q = |name, v| ty(name).quantise(v) as u16;
        EntityState {
            id,
            kind,
            owner,
            pos: [q("pos", pos.x), q("pos", pos.y)],
            vel: [q("vel", vel.x), q("vel", vel.y)],
            aim: q("aim", aim),
            health: q("health", health) as u8,
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
            self.pos[0],
            self.pos[1],
            self.vel[0],
            self.vel[1],
            self.aim,
            self.health as u16,
        ]
        .map(u32::from)
    }

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

    /// Where the schema predicts this entity at `to`, moving at its own velocity since `from`.
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
}
