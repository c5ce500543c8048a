//! The default mode, `arena`: top-down players who move, aim and fire projectiles; wandering NPC
//! drones; hits, health, death, respawn, kills and score; a match ends at a score or a time
//! limit, a short pause shows the result, then the next match starts.
//!
//! Each system is a function over the hecs world, run in a fixed order by [`Arena::step`].

use crate::brain::Brain;
use crate::input::ArenaInput;
use crate::movement::{
    self, ARENA_SIZE, DRONE_RADIUS, DRONE_SPEED, PLAYER_RADIUS, PROJECTILE_RADIUS, PROJECTILE_SPEED,
};
use crate::news::ArenaNews;
use crate::view::{self as arena, EntityKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use tickwire_game::glam::Vec2;
use tickwire_game::hecs::{Entity, World};
use tickwire_game::protocol::{
    Capture, Head, MatchResult, NetId, PlayerId, PlayerScore, RoomEvent, Schema,
};
use tickwire_game::{Bot, Game, GameMode, Joiner, NoMessages, Outbox, TickInput};

pub const PLAYER_HEALTH: f32 = 100.0;
pub const DRONE_HEALTH: f32 = 30.0;
pub const PROJECTILE_DAMAGE: f32 = 25.0;
pub const PROJECTILE_TTL: f32 = 1.2;
pub const FIRE_COOLDOWN: f32 = 0.25;
pub const RESPAWN_DELAY: f32 = 2.0;
/// A match needs this many players (one: a player can practise on the drones).
pub const MIN_PLAYERS: usize = 1;
pub const SCORE_PLAYER_KILL: i32 = 10;
pub const SCORE_DRONE_KILL: i32 = 1;

#[derive(Clone, Debug)]
pub struct ArenaConfig {
    pub drones: u32,
    pub score_limit: i32,
    pub match_secs: f32,
    /// Seeds the room's random numbers, so a room replays the same from the same inputs.
    pub seed: u64,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        ArenaConfig {
            drones: 20,
            score_limit: 100,
            match_secs: 180.0,
            seed: 1,
        }
    }
}

/// The arena's own command-line flags, for a server binary that registers it.
#[derive(clap::Args, Clone, Debug)]
pub struct ArenaArgs {
    /// Wandering NPC drones in each arena room.
    #[arg(long, default_value_t = 20)]
    pub drones: u32,
    /// An arena match ends when a player reaches this score (10 per player kill, 1 per drone).
    #[arg(long, default_value_t = 100)]
    pub score_limit: i32,
    /// An arena match ends after this many seconds at the latest.
    #[arg(long, default_value_t = 180)]
    pub match_secs: u32,
}

impl ArenaArgs {
    pub fn config(&self) -> ArenaConfig {
        ArenaConfig {
            drones: self.drones,
            score_limit: self.score_limit,
            match_secs: self.match_secs as f32,
            ..ArenaConfig::default()
        }
    }
}

impl GameMode for Arena {
    type Config = ArenaConfig;

    fn new_room(config: &ArenaConfig, seed: u64) -> Arena {
        Arena::new(ArenaConfig {
            seed,
            ..config.clone()
        })
    }
}

// Components.
struct Body {
    pos: Vec2,
    vel: Vec2,
    radius: f32,
}
struct Aim(f32);
struct Health(f32);
struct Avatar {
    player: PlayerId,
    cooldown: f32,
    /// Some while dead: seconds until respawn.
    respawn_in: Option<f32>,
}
struct Drone {
    heading: f32,
    turn_in: f32,
}
struct Projectile {
    owner: PlayerId,
    ttl: f32,
}

struct PlayerRecord {
    name: String,
    entity: Entity,
    kills: u32,
    deaths: u32,
    score: i32,
}

enum Phase {
    /// Between matches: players move about, nothing fires, nothing counts.
    WarmUp,
    Playing {
        elapsed: f32,
    },
}

pub struct Arena {
    config: ArenaConfig,
    rng: fastrand::Rng,
    next_net_id: u32,
    /// Ordered, so results and iteration do not depend on hashing.
    players: BTreeMap<PlayerId, PlayerRecord>,
    phase: Phase,
    match_no: u32,
    drones_spawned: bool,
}

impl Arena {
    pub fn new(config: ArenaConfig) -> Arena {
        Arena {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            next_net_id: 1,
            players: BTreeMap::new(),
            phase: Phase::WarmUp,
            match_no: 0,
            drones_spawned: false,
        }
    }

    fn alloc_id(&mut self) -> NetId {
        let id = NetId(self.next_net_id);
        self.next_net_id = self.next_net_id.wrapping_add(1).max(1);
        id
    }

    fn random_pos(&mut self, radius: f32) -> Vec2 {
        let span = ARENA_SIZE - 2.0 * radius;
        Vec2::new(
            radius + self.rng.f32() * span,
            radius + self.rng.f32() * span,
        )
    }

    fn spawn_drones(&mut self, world: &mut World) {
        for _ in 0..self.config.drones {
            let id = self.alloc_id();
            let pos = self.random_pos(DRONE_RADIUS);
            let heading = self.rng.f32() * std::f32::consts::TAU - std::f32::consts::PI;
            world.spawn((
                id,
                EntityKind::Drone,
                Body {
                    pos,
                    vel: Vec2::ZERO,
                    radius: DRONE_RADIUS,
                },
                Aim(heading),
                Health(DRONE_HEALTH),
                Drone {
                    heading,
                    turn_in: 0.0,
                },
            ));
        }
        self.drones_spawned = true;
    }

    fn begin(&mut self, world: &mut World, events: &mut Outbox<ArenaNews>) {
        self.match_no += 1;
        clear_projectiles(world);
        self.phase = Phase::Playing { elapsed: 0.0 };
        for rec in self.players.values_mut() {
            rec.kills = 0;
            rec.deaths = 0;
            rec.score = 0;
        }
        let entities: Vec<Entity> = self.players.values().map(|r| r.entity).collect();
        for e in entities {
            let pos = self.random_pos(PLAYER_RADIUS);
            if let Ok((body, health, avatar)) =
                world.query_one_mut::<(&mut Body, &mut Health, &mut Avatar)>(e)
            {
                body.pos = pos;
                body.vel = Vec2::ZERO;
                health.0 = PLAYER_HEALTH;
                avatar.respawn_in = None;
                avatar.cooldown = 0.0;
            }
        }
        events.event(RoomEvent::MatchStarted {
            match_no: self.match_no,
        });
    }

    fn end_match(&mut self, world: &mut World, events: &mut Outbox<ArenaNews>) {
        let players: Vec<PlayerScore> = self
            .players
            .iter()
            .map(|(id, r)| {
                PlayerScore::new(*id, r.name.clone(), r.score)
                    .with("kills", r.kills.into())
                    .with("deaths", r.deaths.into())
            })
            .collect();
        // Highest score wins; a tie at the top has no winner.
        let best = players.iter().map(|p| p.score).max();
        let leaders: Vec<_> = players.iter().filter(|p| Some(p.score) == best).collect();
        let winner = (leaders.len() == 1).then(|| leaders[0].player);
        events.event(RoomEvent::MatchEnded(MatchResult {
            match_no: self.match_no,
            winner,
            players,
        }));
        clear_projectiles(world);
        self.phase = Phase::WarmUp;
    }

    fn score_reached(&self) -> bool {
        self.players
            .values()
            .any(|r| r.score >= self.config.score_limit)
    }
}

impl Game for Arena {
    type Input = ArenaInput;
    type ToRoom = NoMessages;
    type ToPlayer = ArenaNews;

    fn min_players(&self) -> usize {
        MIN_PLAYERS
    }

    fn start_match(&mut self, world: &mut World, events: &mut Outbox<ArenaNews>) {
        self.begin(world, events);
    }

    fn abort_match(&mut self, world: &mut World) {
        clear_projectiles(world);
        self.phase = Phase::WarmUp;
    }

    fn add_player(
        &mut self,
        world: &mut World,
        player: PlayerId,
        who: &Joiner<'_>,
    ) -> Result<NetId, String> {
        if !self.drones_spawned {
            self.spawn_drones(world);
        }
        let id = self.alloc_id();
        let pos = self.random_pos(PLAYER_RADIUS);
        let entity = world.spawn((
            id,
            EntityKind::Player,
            player,
            Body {
                pos,
                vel: Vec2::ZERO,
                radius: PLAYER_RADIUS,
            },
            Aim(0.0),
            Health(PLAYER_HEALTH),
            Avatar {
                player,
                cooldown: 0.0,
                respawn_in: None,
            },
        ));
        self.players.insert(
            player,
            PlayerRecord {
                name: who.name.to_owned(),
                entity,
                kills: 0,
                deaths: 0,
                score: 0,
            },
        );
        Ok(id)
    }

    fn remove_player(&mut self, world: &mut World, player: PlayerId) {
        if let Some(rec) = self.players.remove(&player) {
            let _ = world.despawn(rec.entity);
        }
        if self.players.is_empty() {
            self.abort_match(world);
        }
    }

    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, TickInput<ArenaInput>)],
        dt: f32,
        events: &mut Outbox<ArenaNews>,
    ) {
        let playing = match &mut self.phase {
            Phase::Playing { elapsed } => {
                *elapsed += dt;
                true
            }
            Phase::WarmUp => false,
        };
        let shots = apply_inputs(world, &self.players, inputs, dt);
        move_drones(world, &mut self.rng, dt);
        if !playing {
            return;
        }
        for (owner, pos, aim) in shots {
            let id = self.alloc_id();
            spawn_projectile(world, id, owner, pos, aim);
        }
        move_projectiles(world, dt);
        let kills = resolve_hits(world);
        for kill in kills {
            self.credit(world, kill, events);
        }
        respawn_players(world, dt, &mut self.rng);

        let out_of_time =
            matches!(self.phase, Phase::Playing { elapsed } if elapsed >= self.config.match_secs);
        if out_of_time || self.score_reached() {
            self.end_match(world, events);
        }
    }

    fn schema(&self) -> Arc<Schema> {
        arena::schema()
    }

    fn new_bot(&self, seed: u64) -> Option<Box<dyn Bot<ArenaInput>>> {
        Some(Box::new(Brain::new(seed)))
    }

    fn capture(&self, world: &World, out: &mut Capture) {
        let mut q = world.query::<(
            &NetId,
            &EntityKind,
            &Body,
            &Aim,
            Option<&Health>,
            Option<&PlayerId>,
            Option<&Projectile>,
        )>();
        for (id, kind, body, aim, health, player, projectile) in q.iter() {
            let head = Head {
                id: *id,
                kind: *kind as u16,
                owner: player.copied().or(projectile.map(|p| p.owner)),
            };
            let health = health.map_or(0.0, |h| h.0);
            out.push(
                head,
                &arena::quantised_slots(body.pos, body.vel, aim.0, health),
            );
        }
    }
}

/// What [`resolve_hits`] found: something died by a projectile of `killer`.
struct Kill {
    killer: PlayerId,
    victim: Victim,
}

enum Victim {
    Player(PlayerId),
    Drone(Entity),
}

impl Arena {
    fn credit(&mut self, world: &mut World, kill: Kill, events: &mut Outbox<ArenaNews>) {
        match kill.victim {
            Victim::Player(victim) => {
                if let Some(v) = self.players.get_mut(&victim) {
                    v.deaths += 1;
                }
                if let Some(k) = self.players.get_mut(&kill.killer) {
                    k.kills += 1;
                    k.score += SCORE_PLAYER_KILL;
                }
                events.tell_all(ArenaNews::kill(kill.killer, victim));
            }
            Victim::Drone(entity) => {
                if let Some(k) = self.players.get_mut(&kill.killer) {
                    k.score += SCORE_DRONE_KILL;
                }
                // A drone comes back at once somewhere else, keeping the entity count steady.
                let pos = self.random_pos(DRONE_RADIUS);
                if let Ok((body, health)) = world.query_one_mut::<(&mut Body, &mut Health)>(entity)
                {
                    body.pos = pos;
                    health.0 = DRONE_HEALTH;
                }
            }
        }
    }
}

/// Moves living players by the shared movement rules, turns them to their aim, and returns
/// the shots fired this step (owner, muzzle position, angle).
fn apply_inputs(
    world: &mut World,
    players: &BTreeMap<PlayerId, PlayerRecord>,
    inputs: &[(PlayerId, TickInput<ArenaInput>)],
    dt: f32,
) -> Vec<(PlayerId, Vec2, f32)> {
    let mut shots = Vec::new();
    for (player, held) in inputs {
        let input = &held.input;
        let Some(rec) = players.get(player) else {
            continue;
        };
        let Ok((body, aim, avatar)) =
            world.query_one_mut::<(&mut Body, &mut Aim, &mut Avatar)>(rec.entity)
        else {
            continue;
        };
        avatar.cooldown = (avatar.cooldown - dt).max(0.0);
        if avatar.respawn_in.is_some() {
            body.vel = Vec2::ZERO;
            continue;
        }
        let (pos, vel) = movement::step_player(body.pos, input.move_dir.clamp_length_max(1.0), dt);
        body.pos = pos;
        body.vel = vel;
        aim.0 = input.aim;
        if input.fire && avatar.cooldown <= 0.0 {
            avatar.cooldown = FIRE_COOLDOWN;
            let muzzle = pos + movement::aim_dir(input.aim) * (PLAYER_RADIUS + PROJECTILE_RADIUS);
            shots.push((avatar.player, muzzle, input.aim));
        }
    }
    shots
}

fn spawn_projectile(world: &mut World, id: NetId, owner: PlayerId, pos: Vec2, aim: f32) {
    world.spawn((
        id,
        EntityKind::Projectile,
        Body {
            pos,
            vel: movement::aim_dir(aim) * PROJECTILE_SPEED,
            radius: PROJECTILE_RADIUS,
        },
        Aim(aim),
        Projectile {
            owner,
            ttl: PROJECTILE_TTL,
        },
    ));
}

/// Drones fly straight, pick a new heading now and then, and bounce off the walls.
fn move_drones(world: &mut World, rng: &mut fastrand::Rng, dt: f32) {
    for (body, aim, drone) in world.query_mut::<(&mut Body, &mut Aim, &mut Drone)>() {
        drone.turn_in -= dt;
        if drone.turn_in <= 0.0 {
            drone.heading += (rng.f32() - 0.5) * 2.0;
            drone.turn_in = 0.5 + rng.f32() * 1.5;
        }
        let mut dir = movement::aim_dir(drone.heading);
        let next = body.pos + dir * DRONE_SPEED * dt;
        let lo = DRONE_RADIUS;
        let hi = ARENA_SIZE - DRONE_RADIUS;
        if next.x < lo || next.x > hi {
            dir.x = -dir.x;
        }
        if next.y < lo || next.y > hi {
            dir.y = -dir.y;
        }
        drone.heading = dir.y.atan2(dir.x);
        body.vel = dir * DRONE_SPEED;
        body.pos = movement::clamp_to_arena(body.pos + body.vel * dt, DRONE_RADIUS);
        aim.0 = drone.heading;
    }
}

fn move_projectiles(world: &mut World, dt: f32) {
    let mut gone = Vec::new();
    for (entity, body, projectile) in world.query_mut::<(Entity, &mut Body, &mut Projectile)>() {
        body.pos += body.vel * dt;
        projectile.ttl -= dt;
        let inside =
            body.pos.cmpge(Vec2::ZERO).all() && body.pos.cmple(Vec2::splat(ARENA_SIZE)).all();
        if projectile.ttl <= 0.0 || !inside {
            gone.push(entity);
        }
    }
    for e in gone {
        let _ = world.despawn(e);
    }
}

/// Each projectile hits the first living player (not its owner) or drone it overlaps, deals its
/// damage and disappears. Returns the kills.
fn resolve_hits(world: &mut World) -> Vec<Kill> {
    let projectiles: Vec<(Entity, PlayerId, Vec2)> = world
        .query_mut::<(Entity, &Projectile, &Body)>()
        .into_iter()
        .map(|(e, p, b)| (e, p.owner, b.pos))
        .collect();
    if projectiles.is_empty() {
        return Vec::new();
    }
    let mut kills = Vec::new();
    let mut spent = Vec::new();
    for (shot, owner, at) in projectiles {
        let mut targets = world.query::<(
            Entity,
            &Body,
            &mut Health,
            Option<&mut Avatar>,
            Option<&Drone>,
        )>();
        for (target, body, health, avatar, drone) in targets.iter() {
            let alive_player = avatar
                .as_ref()
                .is_some_and(|a| a.respawn_in.is_none() && a.player != owner);
            if !(alive_player || drone.is_some()) {
                continue;
            }
            if body.pos.distance_squared(at) > (body.radius + PROJECTILE_RADIUS).powi(2) {
                continue;
            }
            health.0 -= PROJECTILE_DAMAGE;
            spent.push(shot);
            if health.0 <= 0.0 {
                match avatar {
                    Some(a) => {
                        health.0 = 0.0;
                        a.respawn_in = Some(RESPAWN_DELAY);
                        kills.push(Kill {
                            killer: owner,
                            victim: Victim::Player(a.player),
                        });
                    }
                    None => kills.push(Kill {
                        killer: owner,
                        victim: Victim::Drone(target),
                    }),
                }
            }
            break;
        }
    }
    for e in spent {
        let _ = world.despawn(e);
    }
    kills
}

fn respawn_players(world: &mut World, dt: f32, rng: &mut fastrand::Rng) {
    for (body, health, avatar) in world.query_mut::<(&mut Body, &mut Health, &mut Avatar)>() {
        let Some(left) = avatar.respawn_in.as_mut() else {
            continue;
        };
        *left -= dt;
        if *left <= 0.0 {
            avatar.respawn_in = None;
            health.0 = PLAYER_HEALTH;
            let span = ARENA_SIZE - 2.0 * PLAYER_RADIUS;
            body.pos = Vec2::new(
                PLAYER_RADIUS + rng.f32() * span,
                PLAYER_RADIUS + rng.f32() * span,
            );
        }
    }
}

fn clear_projectiles(world: &mut World) {
    let shots: Vec<Entity> = world
        .query_mut::<(Entity, &Projectile)>()
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    for e in shots {
        let _ = world.despawn(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(arena: &Arena, world: &World) -> Vec<arena::EntityState> {
        let mut out = Capture::new(arena::SLOTS);
        arena.capture(world, &mut out);
        arena::entities(&tickwire_game::protocol::Snapshot::capture(
            out,
            Default::default(),
        ))
        .collect()
    }

    #[test]
    fn a_player_moves_fires_and_kills_a_standing_target() {
        let mut world = World::new();
        let mut arena = Arena::new(ArenaConfig {
            drones: 0,
            score_limit: SCORE_PLAYER_KILL,
            ..ArenaConfig::default()
        });
        let (a, b) = (PlayerId(1), PlayerId(2));
        arena
            .add_player(&mut world, a, &Joiner::named("a"))
            .unwrap();
        arena
            .add_player(&mut world, b, &Joiner::named("b"))
            .unwrap();
        let mut events = Outbox::default();
        arena.start_match(&mut world, &mut events);
        assert!(matches!(
            events.events()[0],
            RoomEvent::MatchStarted { match_no: 1 }
        ));
        assert!(matches!(arena.phase, Phase::Playing { .. }));

        // Put b right in front of a, then let a fire at it until it dies.
        let ea = arena.players[&a].entity;
        let eb = arena.players[&b].entity;
        world.get::<&mut Body>(ea).unwrap().pos = Vec2::new(100.0, 500.0);
        world.get::<&mut Body>(eb).unwrap().pos = Vec2::new(200.0, 500.0);
        let fire = TickInput {
            fresh: true,
            input: ArenaInput {
                move_dir: Vec2::ZERO,
                aim: 0.0,
                fire: true,
            },
        };
        events.take();
        for _ in 0..120 {
            arena.step(&mut world, &[(a, fire.clone())], 1.0 / 60.0, &mut events);
        }
        let (ended, told) = events.take();
        let ended = ended
            .filter_map(|e| match e {
                RoomEvent::MatchEnded(r) => Some(r),
                _ => None,
            })
            .next();
        assert!(told.eq([(None, ArenaNews::kill(a, b))]));
        let result = ended.expect("the score limit ends the match");
        assert_eq!(result.winner, Some(a));
        assert!(matches!(arena.phase, Phase::WarmUp));
        let entities = capture(&arena, &world);
        assert!(entities.iter().all(|e| e.kind == EntityKind::Player));
    }

    #[test]
    fn drones_wander_and_stay_inside() {
        let mut world = World::new();
        let mut arena = Arena::new(ArenaConfig {
            drones: 50,
            ..ArenaConfig::default()
        });
        arena
            .add_player(&mut world, PlayerId(1), &Joiner::named("a"))
            .unwrap();
        let before = capture(&arena, &world);
        let mut events = Outbox::default();
        for _ in 0..600 {
            arena.step(&mut world, &[], 1.0 / 60.0, &mut events);
        }
        let after = capture(&arena, &world);
        assert_eq!(before.len(), 51);
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.kind == EntityKind::Drone && b.pos != a.pos)
            .count();
        assert_eq!(moved, 50);
        for e in &after {
            let p = e.position();
            assert!(p.x >= 0.0 && p.x <= ARENA_SIZE && p.y >= 0.0 && p.y <= ARENA_SIZE);
        }
    }

    #[test]
    fn the_time_limit_ends_a_match_and_warm_up_does_not_fire() {
        let mut world = World::new();
        let mut arena = Arena::new(ArenaConfig {
            drones: 0,
            match_secs: 1.0,
            ..ArenaConfig::default()
        });
        let p = PlayerId(1);
        arena
            .add_player(&mut world, p, &Joiner::named("a"))
            .unwrap();
        let fire = TickInput {
            fresh: true,
            input: ArenaInput {
                move_dir: Vec2::X,
                aim: 0.0,
                fire: true,
            },
        };
        let mut events = Outbox::default();
        // Warm-up: the player moves but nothing is fired.
        for _ in 0..30 {
            arena.step(&mut world, &[(p, fire.clone())], 1.0 / 60.0, &mut events);
        }
        assert!(
            capture(&arena, &world)
                .iter()
                .all(|e| e.kind != EntityKind::Projectile)
        );
        arena.start_match(&mut world, &mut events);
        for _ in 0..70 {
            arena.step(&mut world, &[], 1.0 / 60.0, &mut events);
        }
        let ended = events
            .events()
            .iter()
            .filter(|e| matches!(e, RoomEvent::MatchEnded(_)))
            .count();
        assert_eq!(ended, 1);
        assert!(matches!(arena.phase, Phase::WarmUp));
    }
}
