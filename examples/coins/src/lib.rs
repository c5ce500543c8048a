//! Coins: players run about a 500 × 500 field picking up coins; the first to ten wins. A small
//! game written against the public game API only, in its own crate, as the README walks
//! through: what it replicates (its schema), what a player sends (its input), what it says
//! (a message each way), its rules (one `step` over a hecs world) and its AI (a bot).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use tickwire_game::glam::Vec2;
use tickwire_game::hecs::{Entity, World};
use tickwire_game::protocol::schema::{Field, FieldType, Kind};
use tickwire_game::protocol::{
    Capture, Head, MatchResult, NetId, PlayerId, PlayerScore, RoomEvent, Schema, Snapshot,
};
use tickwire_game::{Bot, Game, GameMode, Joiner, Messages, Outbox, Record, TickInput};

pub const FIELD: f32 = 500.0;
const SPEED: f32 = 150.0;
const REACH: f32 = 12.0;
const COINS: usize = 5;
pub const TO_WIN: u32 = 10;

// 1. What a player sends every tick: a direction, each axis in [-1, 1] in steps of 1/128.
#[derive(Copy, Clone, Debug, Default, PartialEq, Record)]
pub struct Run {
    #[tw(fixed_closed(-1.0, 1.0, 1, 128))]
    pub dir: Vec2,
}

// 2. What a player may say to the room, and what the room says back: a wave, and who waved.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Messages)]
pub enum Say {
    Wave,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Messages)]
pub enum Heard {
    Waved {
        #[tw(int(0, 4294967295))]
        player: u32,
    },
}

// 3. What everyone sees: players (where, and their score) and coins (where).
pub const PLAYER: u16 = 0;
pub const COIN: u16 = 1;

pub fn schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let pos = Field::new("pos", FieldType::fixed(0.0, 512.0, 1, 8), 2);
            let score = Field::new(
                "score",
                FieldType::Int {
                    min: 0,
                    max: TO_WIN as i64,
                },
                1,
            );
            let kinds = vec![
                Kind::new("player", vec![pos.clone(), score]),
                Kind::new("coin", vec![pos]),
            ];
            Arc::new(tickwire_game::declare::<Coins>(kinds).expect("a well-formed schema"))
        })
        .clone()
}

struct Runner {
    player: PlayerId,
    name: String,
    /// The backend's id for the player, where the server asks for tickets.
    account: Option<String>,
    pos: Vec2,
    score: u32,
}

struct Coin(Vec2);

// 4. The rules.
pub struct Coins {
    rng: u64,
    next_id: u32,
    players: BTreeMap<PlayerId, Entity>,
    playing: bool,
    match_no: u32,
}

impl GameMode for Coins {
    type Config = ();
    fn new_room(_: &(), seed: u64) -> Coins {
        Coins {
            rng: seed | 1,
            next_id: 1,
            players: BTreeMap::new(),
            playing: false,
            match_no: 0,
        }
    }
}

impl Coins {
    fn spot(&mut self) -> Vec2 {
        // A xorshift is plenty for coin places, and a room replays the same from its seed.
        let mut next = || {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            (self.rng >> 40) as f32 / (1u64 << 24) as f32 * FIELD
        };
        Vec2::new(next(), next())
    }

    fn spawn_coin(&mut self, world: &mut World) {
        let id = NetId(self.next_id);
        self.next_id += 1;
        let at = self.spot();
        world.spawn((id, Coin(at)));
    }
}

impl Game for Coins {
    type Input = Run;
    type ToRoom = Say;
    type ToPlayer = Heard;

    fn min_players(&self) -> usize {
        1
    }

    fn add_player(
        &mut self,
        world: &mut World,
        player: PlayerId,
        who: &Joiner<'_>,
    ) -> Result<NetId, String> {
        // A game may refuse a seat, with a reason the player is told. Where tickets name
        // players, one seat per account (a second device is turned away); else one per name.
        let name = who.name;
        let account = who.identity.map(|i| i.subject.clone());
        let taken = |r: &Runner| match &account {
            Some(account) => r.account.as_ref() == Some(account),
            None => r.name == name,
        };
        if world.query::<&Runner>().iter().any(taken) {
            return Err(format!("{name:?} is already playing here"));
        }
        if world.query::<&Coin>().iter().count() == 0 {
            (0..COINS).for_each(|_| self.spawn_coin(world));
        }
        let id = NetId(self.next_id);
        self.next_id += 1;
        let pos = self.spot();
        let runner = Runner {
            player,
            name: name.to_owned(),
            account,
            pos,
            score: 0,
        };
        self.players.insert(player, world.spawn((id, runner)));
        Ok(id)
    }

    fn remove_player(&mut self, world: &mut World, player: PlayerId) {
        if let Some(e) = self.players.remove(&player) {
            let _ = world.despawn(e);
        }
    }

    fn start_match(&mut self, world: &mut World, out: &mut Outbox<Heard>) {
        self.match_no += 1;
        self.playing = true;
        for r in world.query_mut::<&mut Runner>() {
            r.score = 0;
        }
        out.event(RoomEvent::MatchStarted {
            match_no: self.match_no,
        });
    }

    fn abort_match(&mut self, _: &mut World) {
        self.playing = false;
    }

    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, TickInput<Run>)],
        dt: f32,
        out: &mut Outbox<Heard>,
    ) {
        for (player, held) in inputs {
            let Some(&e) = self.players.get(player) else {
                continue;
            };
            if let Ok(mut r) = world.get::<&mut Runner>(e) {
                let step = held.input.dir.clamp_length_max(1.0) * SPEED * dt;
                r.pos = (r.pos + step).clamp(Vec2::ZERO, Vec2::splat(FIELD));
            }
        }
        // Whoever reaches a coin takes it; a new one appears elsewhere.
        let coins: Vec<(Entity, Vec2)> = world
            .query::<(Entity, &Coin)>()
            .iter()
            .map(|(e, c)| (e, c.0))
            .collect();
        let mut taken = 0;
        for (coin, at) in coins {
            let taker = world
                .query_mut::<&mut Runner>()
                .into_iter()
                .find(|r| r.pos.distance(at) <= REACH);
            if let Some(r) = taker {
                if self.playing {
                    r.score += 1;
                }
                let _ = world.despawn(coin);
                taken += 1;
            }
        }
        (0..taken).for_each(|_| self.spawn_coin(world));
        let winner = world
            .query::<&Runner>()
            .iter()
            .find(|r| r.score >= TO_WIN)
            .map(|r| r.player);
        if let (true, Some(winner)) = (self.playing, winner) {
            self.playing = false;
            let players = world
                .query::<&Runner>()
                .iter()
                .map(|r| PlayerScore::new(r.player, r.name.clone(), r.score as i32))
                .collect();
            out.event(RoomEvent::MatchEnded(MatchResult {
                match_no: self.match_no,
                winner: Some(winner),
                players,
            }));
        }
    }

    fn message(
        &mut self,
        _: &mut World,
        player: PlayerId,
        message: Say,
        out: &mut Outbox<Heard>,
    ) -> Result<(), String> {
        match message {
            Say::Wave => out.tell_all(Heard::Waved { player: player.0 }),
        }
        Ok(())
    }

    fn schema(&self) -> Arc<Schema> {
        schema()
    }

    fn capture(&self, world: &World, out: &mut Capture) {
        let schema = schema();
        let pos = &schema.kinds()[0].fields[0].ty;
        for (id, r) in world.query::<(&NetId, &Runner)>().iter() {
            let head = Head {
                id: *id,
                kind: PLAYER,
                owner: Some(r.player),
            };
            out.push(
                head,
                &[pos.quantise(r.pos.x), pos.quantise(r.pos.y), r.score],
            );
        }
        for (id, c) in world.query::<(&NetId, &Coin)>().iter() {
            let head = Head {
                id: *id,
                kind: COIN,
                owner: None,
            };
            out.push(head, &[pos.quantise(c.0.x), pos.quantise(c.0.y)]);
        }
    }

    fn new_bot(&self, _seed: u64) -> Option<Box<dyn Bot<Run>>> {
        Some(Box::new(Greedy))
    }
}

// 5. Its AI: run to the nearest coin. It sees what a player sees, a snapshot.
pub struct Greedy;

impl Bot<Run> for Greedy {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Run {
        let schema = schema();
        let pos = &schema.kinds()[0].fields[0].ty;
        let at = |v: &[u32]| Vec2::new(pos.dequantise(v[0]), pos.dequantise(v[1]));
        let Some(mine) = view
            .iter()
            .find(|e| e.kind == PLAYER && e.owner == Some(me))
        else {
            return Run::default();
        };
        let here = at(mine.values);
        let nearest = view
            .iter()
            .filter(|e| e.kind == COIN)
            .map(|e| at(e.values))
            .min_by(|a, b| a.distance(here).total_cmp(&b.distance(here)));
        Run {
            dir: nearest.map_or(Vec2::ZERO, |c| (c - here).normalize_or_zero()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_game::protocol::Tick;

    #[test]
    fn a_greedy_bot_collects_ten_coins_and_wins() {
        let mut game = Coins::new_room(&(), 3);
        let mut world = World::new();
        let me = PlayerId(1);
        game.add_player(&mut world, me, &Joiner::named("solo"))
            .unwrap();
        let mut out = Outbox::default();
        game.start_match(&mut world, &mut out);
        let mut bot = Greedy;
        for tick in 0..60 * 120 {
            let mut capture = Capture::new(schema().stride());
            game.capture(&world, &mut capture);
            let view = Snapshot::capture(capture, Tick(tick));
            let input = bot.act(me, &view);
            assert!(input.to_slots().is_ok(), "within the declared input");
            let held = TickInput { input, fresh: true };
            game.step(&mut world, &[(me, held)], 1.0 / 60.0, &mut out);
            if out.match_ended() {
                return;
            }
        }
        panic!("no win in two minutes");
    }
}
