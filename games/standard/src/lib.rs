//! The `standard` mode: the load workload every comparison runs, exactly as the peer benchmarks
//! run it (DESIGN.md, "The standard workload"), so tickwire's figures and Colyseus's are like
//! for like. Each player has one entity and each room 50 drones (configurable), every entity
//! `{x, y, vx, vy, angle}` in a 1000 × 1000 area. Every tick each drone's velocity gets a
//! uniformly random acceleration in ±240 u/s² per axis, its speed is capped at 120 u/s, it moves,
//! bounces off the walls and points along its velocity: all five fields change every tick. A
//! player's input `{dx, dy}` (|d| ≤ 8, declared in steps of 1/64) moves its entity by d, once
//! per input, and sets v = 30·d and the angle to d's direction.
//!
//! Nothing here is special to the codec: the schema declares that a position follows its
//! velocity and an angle its velocity's direction, which is what makes the motion cheap.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use tickwire_game::glam::Vec2;
use tickwire_game::hecs::{Entity, World};
use tickwire_game::protocol::schema::Kind;
use tickwire_game::protocol::{Capture, Head, NetId, PlayerId, RoomEvent, Schema, Snapshot};
use tickwire_game::{Bot, Game, GameMode, Joiner, NoMessages, Outbox, Record, TickInput};

/// The area is [0, AREA] × [0, AREA].
pub const AREA: f32 = 1000.0;
pub const DRONE_ACCEL: f32 = 240.0;
pub const DRONE_MAX_SPEED: f32 = 120.0;
/// Longest move of one input, in units.
pub const MAX_STEP: f32 = 8.0;
/// A player's velocity is this times its last move (inputs come 30 times a second).
pub const INPUT_RATE: f32 = 30.0;

const PLAYER: u16 = 0;
const DRONE: u16 = 1;

#[derive(Clone, Debug)]
pub struct StandardConfig {
    pub drones: u32,
}

impl Default for StandardConfig {
    fn default() -> Self {
        StandardConfig { drones: 50 }
    }
}

/// The standard mode's own command-line flags, for a server binary that registers it.
#[derive(clap::Args, Clone, Debug)]
pub struct StandardArgs {
    /// Drones in each standard room.
    #[arg(long = "standard-drones", default_value_t = 50)]
    pub standard_drones: u32,
}

impl StandardArgs {
    pub fn config(&self) -> StandardConfig {
        StandardConfig {
            drones: self.standard_drones,
        }
    }
}

/// A player's input: the step its entity takes, each axis in [−8, 8] in steps of 1/64 (the
/// length is clamped to 8 by the game).
#[derive(Copy, Clone, Debug, Default, PartialEq, Record)]
pub struct StandardInput {
    #[tw(fixed_closed(-8.0, 8.0, 1, 64))]
    pub dx: f32,
    #[tw(fixed_closed(-8.0, 8.0, 1, 64))]
    pub dy: f32,
}

/// Players and drones alike: `pos` (1/16 unit) follows `vel` (1/8 unit/s), `angle` (2π/1024)
/// points along `vel` (see [`Body`]); the input is [`StandardInput`].
pub fn schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields = Body::fields().to_vec();
            let kinds = vec![
                Kind::new("player", fields.clone()),
                Kind::new("drone", fields),
            ];
            Arc::new(
                tickwire_game::declare::<Standard>(kinds)
                    .expect("the standard schema is well formed"),
            )
        })
        .clone()
}

/// What every entity replicates, declared for the schema and captured as it is.
#[derive(Clone, Debug, PartialEq, Record)]
pub struct Body {
    #[tw(fixed(0.0, 1024.0, 1, 16), integrate = "vel")]
    pub pos: Vec2,
    #[tw(fixed(-256.0, 256.0, 1, 8))]
    pub vel: Vec2,
    #[tw(angle(10), heading = "vel")]
    pub angle: f32,
}

struct Drone;

pub struct Standard {
    config: StandardConfig,
    rng: fastrand::Rng,
    next_net_id: u32,
    players: BTreeMap<PlayerId, Entity>,
    drones_spawned: bool,
    match_no: u32,
}

impl GameMode for Standard {
    type Config = StandardConfig;

    fn new_room(config: &StandardConfig, seed: u64) -> Standard {
        Standard {
            config: config.clone(),
            rng: fastrand::Rng::with_seed(seed),
            next_net_id: 1,
            players: BTreeMap::new(),
            drones_spawned: false,
            match_no: 0,
        }
    }
}

impl Standard {
    fn net_id(&mut self) -> NetId {
        let id = NetId(self.next_net_id);
        self.next_net_id += 1;
        id
    }

    fn random_spot(&mut self) -> Vec2 {
        Vec2::new(self.rng.f32() * AREA, self.rng.f32() * AREA)
    }

    fn spawn_drones(&mut self, world: &mut World) {
        if std::mem::replace(&mut self.drones_spawned, true) {
            return;
        }
        for _ in 0..self.config.drones {
            let (id, pos) = (self.net_id(), self.random_spot());
            world.spawn((
                id,
                Drone,
                Body {
                    pos,
                    vel: Vec2::ZERO,
                    angle: 0.0,
                },
            ));
        }
    }
}

/// Reflects a coordinate and its velocity off the walls at 0 and AREA.
fn bounce(p: &mut f32, v: &mut f32) {
    if *p < 0.0 {
        *p = -*p;
        *v = -*v;
    } else if *p > AREA {
        *p = 2.0 * AREA - *p;
        *v = -*v;
    }
}

impl Game for Standard {
    type Input = StandardInput;
    type ToRoom = NoMessages;
    type ToPlayer = NoMessages;

    fn min_players(&self) -> usize {
        1
    }

    fn add_player(
        &mut self,
        world: &mut World,
        player: PlayerId,
        _: &Joiner<'_>,
    ) -> Result<NetId, String> {
        self.spawn_drones(world);
        let (id, pos) = (self.net_id(), self.random_spot());
        let entity = world.spawn((
            id,
            player,
            Body {
                pos,
                vel: Vec2::ZERO,
                angle: 0.0,
            },
        ));
        self.players.insert(player, entity);
        Ok(id)
    }

    fn remove_player(&mut self, world: &mut World, player: PlayerId) {
        if let Some(entity) = self.players.remove(&player) {
            let _ = world.despawn(entity);
        }
    }

    fn start_match(&mut self, _world: &mut World, out: &mut Outbox<NoMessages>) {
        self.match_no += 1;
        out.event(RoomEvent::MatchStarted {
            match_no: self.match_no,
        });
    }

    /// A load workload never ends a match by itself.
    fn abort_match(&mut self, _world: &mut World) {}

    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, TickInput<StandardInput>)],
        dt: f32,
        _out: &mut Outbox<NoMessages>,
    ) {
        self.spawn_drones(world);
        for (body, _) in world.query_mut::<(&mut Body, &Drone)>() {
            let accel = Vec2::new(
                (self.rng.f32() * 2.0 - 1.0) * DRONE_ACCEL,
                (self.rng.f32() * 2.0 - 1.0) * DRONE_ACCEL,
            );
            body.vel = (body.vel + accel * dt).clamp_length_max(DRONE_MAX_SPEED);
            body.pos += body.vel * dt;
            bounce(&mut body.pos.x, &mut body.vel.x);
            bounce(&mut body.pos.y, &mut body.vel.y);
            body.angle = body.vel.y.atan2(body.vel.x);
        }
        for (player, input) in inputs {
            // Each input moves once: a held one (no newer input this step) does not.
            if !input.fresh {
                continue;
            }
            let Some(&entity) = self.players.get(player) else {
                continue;
            };
            let Ok(mut body) = world.get::<&mut Body>(entity) else {
                continue;
            };
            let d = Vec2::new(input.input.dx, input.input.dy).clamp_length_max(MAX_STEP);
            body.pos = (body.pos + d).clamp(Vec2::ZERO, Vec2::splat(AREA));
            body.vel = d * INPUT_RATE;
            if d != Vec2::ZERO {
                body.angle = d.y.atan2(d.x);
            }
        }
    }

    fn schema(&self) -> Arc<Schema> {
        schema()
    }

    fn new_bot(&self, seed: u64) -> Option<Box<dyn Bot<StandardInput>>> {
        Some(Box::new(Walker::new(seed)))
    }

    fn capture(&self, world: &World, out: &mut Capture) {
        let schema = schema();
        let fields = &schema.kinds()[PLAYER as usize].fields;
        let mut q = world.query::<(&NetId, &Body, Option<&PlayerId>)>();
        for (id, body, player) in q.iter() {
            let head = Head {
                id: *id,
                kind: if player.is_some() { PLAYER } else { DRONE },
                owner: player.copied(),
            };
            out.push_record(head, fields, body);
        }
    }
}

/// The standard workload's player: each input a step of half the longest (4 units) in a
/// direction that turns slowly, about a third of a radian a second at 30 inputs a second. It
/// does not look at the world, so a load generator can run it without decoding snapshots.
pub struct Walker {
    heading: f32,
    turn: f32,
}

/// Radians the heading turns per input.
const WALKER_TURN: f32 = 0.01;

impl Walker {
    pub fn new(seed: u64) -> Walker {
        let mut rng = fastrand::Rng::with_seed(seed);
        Walker {
            heading: rng.f32() * std::f32::consts::TAU,
            turn: if rng.bool() {
                WALKER_TURN
            } else {
                -WALKER_TURN
            },
        }
    }

    /// The next input: a 4-unit step.
    pub fn next_move(&mut self) -> StandardInput {
        self.heading = (self.heading + self.turn).rem_euclid(std::f32::consts::TAU);
        let d = Vec2::from_angle(self.heading) * (MAX_STEP / 2.0);
        StandardInput { dx: d.x, dy: d.y }
    }
}

impl Bot<StandardInput> for Walker {
    fn act(&mut self, _me: PlayerId, _view: &Snapshot) -> StandardInput {
        self.next_move()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(d: Vec2, fresh: bool) -> TickInput<StandardInput> {
        TickInput {
            input: StandardInput { dx: d.x, dy: d.y },
            fresh,
        }
    }

    #[test]
    fn the_schema_is_the_one_docs_protocol_gives() {
        use tickwire_game::protocol::schema::{Field, FieldType, Predict};
        let body = vec![
            Field::new("pos", FieldType::fixed(0.0, 1024.0, 1, 16), 2)
                .predicted(Predict::Integrate(1)),
            Field::new("vel", FieldType::fixed(-256.0, 256.0, 1, 8), 2),
            Field::new("angle", FieldType::Angle { bits: 10 }, 1).predicted(Predict::Heading(1)),
        ];
        let s = schema();
        assert_eq!(s.kinds().len(), 2);
        assert!(s.kinds().iter().all(|k| k.fields == body));
        let axis = FieldType::fixed_closed(-8.0, 8.0, 1, 64);
        assert_eq!(
            s.input(),
            [Field::new("dx", axis.clone(), 1), Field::new("dy", axis, 1)]
        );
    }

    #[test]
    fn drones_change_every_field_every_tick_and_stay_in_the_area() {
        let mut game = Standard::new_room(&StandardConfig::default(), 7);
        let mut world = World::new();
        game.add_player(&mut world, PlayerId(1), &Joiner::named("p"))
            .unwrap();
        let capture = |game: &Standard, world: &World| {
            let mut c = Capture::new(schema().stride());
            game.capture(world, &mut c);
            Snapshot::capture(c, Default::default())
        };
        let mut before = capture(&game, &world);
        assert_eq!(before.len(), 51);
        let mut changed_everything = 0;
        for _ in 0..600 {
            game.step(&mut world, &[], 1.0 / 60.0, &mut Outbox::default());
            let after = capture(&game, &world);
            for (b, a) in before
                .iter()
                .zip(after.iter())
                .filter(|(b, _)| b.kind == DRONE)
            {
                // x, y, vx, vy (angle can round to the same step).
                if (0..4).all(|s| b.values[s] != a.values[s]) {
                    changed_everything += 1;
                }
            }
            before = after;
        }
        assert!(
            changed_everything > 600 * 50 * 8 / 10,
            "{changed_everything}"
        );
        for (body, _) in world.query::<(&Body, &Drone)>().iter() {
            assert!(body.vel.length() <= DRONE_MAX_SPEED + 1e-3);
            assert!((0.0..=AREA).contains(&body.pos.x) && (0.0..=AREA).contains(&body.pos.y));
        }
    }

    #[test]
    fn an_input_moves_its_player_once() {
        let mut game = Standard::new_room(&StandardConfig { drones: 0 }, 1);
        let mut world = World::new();
        game.add_player(&mut world, PlayerId(1), &Joiner::named("p"))
            .unwrap();
        let entity = game.players[&PlayerId(1)];
        let start = world.get::<&Body>(entity).unwrap().pos;
        let dir = Vec2::new(2.4, 3.2);
        for fresh in [true, false] {
            game.step(
                &mut world,
                &[(PlayerId(1), input(dir, fresh))],
                1.0 / 60.0,
                &mut Outbox::default(),
            );
        }
        let body = world.get::<&Body>(entity).unwrap();
        let d = dir;
        assert!((body.pos - (start + d).clamp(Vec2::ZERO, Vec2::splat(AREA))).length() < 1e-4);
        assert!((body.vel - d * INPUT_RATE).length() < 1e-4);
        assert!((body.angle - d.y.atan2(d.x)).abs() < 1e-6);
    }

    #[test]
    fn a_walker_steps_four_units_and_turns_slowly() {
        let mut w = Walker::new(3);
        let moves: Vec<Vec2> = (0..30)
            .map(|_| {
                let i = w.next_move();
                assert!(i.to_slots().is_ok(), "within the declared input");
                Vec2::new(i.dx, i.dy)
            })
            .collect();
        for pair in moves.windows(2) {
            assert!((pair[0].length() - 4.0).abs() < 1e-4);
            let turned = pair[0].angle_to(pair[1]).abs();
            assert!(turned > 0.005 && turned < 0.02, "{turned}");
        }
    }
}
