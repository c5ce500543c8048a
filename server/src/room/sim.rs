//! The room without I/O: seats, inputs, fixed steps, snapshots. It never reads a clock or a
//! socket; a unit test or a benchmark can drive it directly.

use super::hosted::{Adapter, Hosted, RoomOut, SlotBot, SlotInput};
use super::inputs::InputQueue;
use crate::game::{Game, Joiner};
use crate::replication::{EncodeCache, History};
use bytes::Bytes;
use hecs::World;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tickwire_protocol::record;
use tickwire_protocol::schema::FieldType;
use tickwire_protocol::{
    Capture, ErrorBody, ErrorCode, Input, InputBatch, NetId, PlayerId, RoomEvent, RoomState,
    Schema, Snapshot, Tick, delta,
};

struct Seat {
    name: String,
    entity: NetId,
    ready: bool,
    /// Some for a server bot, the game's AI: it plays through the same input path as a human.
    brain: Option<Box<dyn SlotBot>>,
    /// A bot that filled an empty seat for one match; it leaves when the match is over.
    filler: bool,
    /// Inputs waiting for their step; its last applied seq is the input ack sent back.
    inputs: InputQueue,
    /// The newest snapshot tick the player confirmed.
    acked: Option<Tick>,
}

/// Where the room is between and during matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    Waiting,
    /// `forced`: the owner started it, so it does not stop when someone is not ready.
    Countdown {
        ticks_left: u32,
        forced: bool,
    },
    Playing,
    Finished {
        ticks_left: u32,
    },
}

/// How long the countdown and the results pause last.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub countdown_secs: u32,
    pub results_secs: u32,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            countdown_secs: 3,
            results_secs: 5,
        }
    }
}

/// One player's encoded snapshot for this tick.
pub struct Outgoing {
    pub player: PlayerId,
    pub input_ack: u32,
    pub body: Bytes,
}

pub struct RoomSim {
    world: World,
    game: Box<dyn Hosted>,
    lifecycle: Lifecycle,
    timing: Timing,
    /// Set while the last result is being written down: the results screen does not end.
    results_held: bool,
    /// May start the match early: the creator, then the longest-seated player.
    owner: Option<PlayerId>,
    /// With bot filling on: the seats to fill at each match start, and where bot ids come from.
    fill: Option<(usize, Arc<AtomicU32>)>,
    tick: Tick,
    tick_rate: u8,
    dt: f32,
    ticks_per_snapshot: u32,
    seats: BTreeMap<PlayerId, Seat>,
    /// Watchers: their acknowledged snapshot tick; no seat, no entity.
    spectators: BTreeMap<PlayerId, Option<Tick>>,
    history: History,
    cache: EncodeCache,
    /// Events for everyone, and game messages to one player, waiting to be sent.
    out: RoomOut,
    // Kept between ticks so a step allocates little in the steady state.
    inputs: Vec<(PlayerId, SlotInput)>,
    schema: Arc<Schema>,
    schema_hash: String,
    /// The slots of the input's bool fields: presses a dropped input must not lose.
    presses: Vec<usize>,
}

impl RoomSim {
    /// A room of `game` stepping `tick_rate` times a simulated second (dt = 1 / tick_rate).
    pub fn new<G: Game>(game: G, tick_rate: u8, ticks_per_snapshot: u32) -> RoomSim {
        RoomSim::hosting(Box::new(Adapter::new(game)), tick_rate, ticks_per_snapshot)
    }

    pub(crate) fn hosting(
        game: Box<dyn Hosted>,
        tick_rate: u8,
        ticks_per_snapshot: u32,
    ) -> RoomSim {
        let tick_rate = tick_rate.max(1);
        let schema = game.schema().clone();
        let presses = record::slot_fields(schema.input())
            .enumerate()
            .filter(|(_, f)| f.ty == FieldType::Bool)
            .map(|(slot, _)| slot)
            .collect();
        RoomSim {
            world: World::new(),
            game,
            lifecycle: Lifecycle::Waiting,
            timing: Timing::default(),
            results_held: false,
            owner: None,
            fill: None,
            tick: Tick(0),
            tick_rate,
            dt: 1.0 / tick_rate as f32,
            ticks_per_snapshot: ticks_per_snapshot.max(1),
            seats: BTreeMap::new(),
            spectators: BTreeMap::new(),
            history: History::default(),
            cache: EncodeCache::default(),
            out: RoomOut::default(),
            inputs: Vec::new(),
            schema_hash: schema.hash(),
            schema,
            presses,
        }
    }

    pub fn tick(&self) -> Tick {
        self.tick
    }

    /// The game's replicated schema, which every snapshot of this room follows.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// [`Schema::hash`] of the schema, worked out once.
    pub fn schema_hash(&self) -> &str {
        &self.schema_hash
    }

    /// At each match start, seats left empty up to `seats` get bots (ids from `ids`), who leave
    /// when the match is over.
    pub fn with_bot_fill(mut self, seats: usize, ids: Arc<AtomicU32>) -> RoomSim {
        self.fill = Some((seats, ids));
        self
    }

    /// Bots seated now (they count against the room's seats).
    pub fn bot_count(&self) -> usize {
        self.seats.values().filter(|s| s.brain.is_some()).count()
    }

    fn fill_seats(&mut self) {
        let Some((seats, ids)) = self.fill.clone() else {
            return;
        };
        for n in 1..=seats.saturating_sub(self.seats.len()) {
            let bot = PlayerId(ids.fetch_add(1, Ordering::Relaxed));
            if self.join_bot(bot, &format!("filler {n}")).is_none() {
                return;
            }
            if let Some(seat) = self.seats.get_mut(&bot) {
                seat.filler = true;
            }
        }
    }

    fn release_fillers(&mut self) {
        let fillers: Vec<PlayerId> = self
            .seats
            .iter()
            .filter(|(_, s)| s.filler)
            .map(|(p, _)| *p)
            .collect();
        for p in fillers {
            self.leave(p);
        }
    }

    pub fn with_timing(mut self, timing: Timing) -> RoomSim {
        self.timing = timing;
        self
    }

    pub fn state(&self) -> RoomState {
        match self.lifecycle {
            Lifecycle::Waiting => RoomState::Waiting,
            Lifecycle::Countdown { .. } => RoomState::Countdown,
            Lifecycle::Playing => RoomState::Playing,
            Lifecycle::Finished { .. } => RoomState::Finished,
        }
    }

    pub fn owner(&self) -> Option<PlayerId> {
        self.owner
    }

    fn secs_to_ticks(&self, secs: u32) -> u32 {
        secs * self.tick_rate as u32
    }

    fn set_lifecycle(&mut self, lifecycle: Lifecycle) {
        self.lifecycle = lifecycle;
        let seconds = match lifecycle {
            Lifecycle::Countdown { ticks_left, .. } | Lifecycle::Finished { ticks_left } => {
                ticks_left.div_ceil(self.tick_rate as u32)
            }
            _ => 0,
        };
        self.out.events.push(RoomEvent::StateChanged {
            state: self.state(),
            seconds,
        });
    }

    /// Everyone present is ready and there are enough of them.
    fn all_ready(&self) -> bool {
        self.seats.len() >= self.game.min_players().max(1) && self.seats.values().all(|s| s.ready)
    }

    /// Keeps the room on its results (after their time is up) until released: the shell holds
    /// it while the result is written to the match log.
    pub fn hold_results(&mut self, held: bool) {
        self.results_held = held;
    }

    /// The owner starts the countdown without waiting for everyone to be ready.
    pub fn start(&mut self, player: PlayerId) -> Result<(), ErrorBody> {
        if self.lifecycle != Lifecycle::Waiting {
            return Err(ErrorBody::new(
                ErrorCode::MatchInProgress,
                "the match is already starting or running",
            ));
        }
        if self.owner != Some(player) {
            return Err(ErrorBody::new(
                ErrorCode::NotOwner,
                "only the room's owner can start the match",
            ));
        }
        let min = self.game.min_players();
        if self.seats.len() < min {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("a match needs {min} players"),
            ));
        }
        let ticks_left = self.secs_to_ticks(self.timing.countdown_secs);
        self.set_lifecycle(Lifecycle::Countdown {
            ticks_left,
            forced: true,
        });
        Ok(())
    }

    /// Moves the lifecycle on after a step; `ended` says the game reported a result.
    fn advance_lifecycle(&mut self, ended: bool) {
        match self.lifecycle {
            Lifecycle::Waiting => {
                if self.all_ready() {
                    let ticks_left = self.secs_to_ticks(self.timing.countdown_secs);
                    self.set_lifecycle(Lifecycle::Countdown {
                        ticks_left,
                        forced: false,
                    });
                }
            }
            Lifecycle::Countdown { ticks_left, forced } => {
                let enough = self.seats.len() >= self.game.min_players().max(1);
                if !enough || (!forced && !self.all_ready()) {
                    self.set_lifecycle(Lifecycle::Waiting);
                } else if ticks_left == 0 {
                    self.fill_seats();
                    self.game.start_match(&mut self.world, &mut self.out);
                    self.set_lifecycle(Lifecycle::Playing);
                } else {
                    self.lifecycle = Lifecycle::Countdown {
                        ticks_left: ticks_left - 1,
                        forced,
                    };
                }
            }
            Lifecycle::Playing => {
                if ended {
                    // Humans ready up again for a rematch; bots do when a human is there to
                    // play with, so a bot-only room plays one match and then waits to close.
                    let humans = self.has_humans();
                    for seat in self.seats.values_mut() {
                        seat.ready = seat.brain.is_some() && humans;
                    }
                    let ticks_left = self.secs_to_ticks(self.timing.results_secs);
                    self.set_lifecycle(Lifecycle::Finished { ticks_left });
                }
            }
            Lifecycle::Finished { ticks_left } => {
                if ticks_left == 0 {
                    if !self.results_held {
                        self.release_fillers();
                        self.set_lifecycle(Lifecycle::Waiting);
                    }
                } else {
                    self.lifecycle = Lifecycle::Finished {
                        ticks_left: ticks_left - 1,
                    };
                }
            }
        }
    }

    pub fn player_count(&self) -> usize {
        self.seats.len()
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Deltas encoded so far (each shared by every player with the same baseline).
    pub fn encodes(&self) -> u64 {
        self.cache.encodes
    }

    /// Seats a player with no identity (a server without tickets, a bot), unless the game
    /// refuses it (`refused`, with the game's reason).
    pub fn join(&mut self, player: PlayerId, name: &str) -> Result<NetId, ErrorBody> {
        self.join_as(player, &Joiner::named(name))
    }

    /// Seats a player as `who` says it is, unless the game refuses it.
    pub fn join_as(&mut self, player: PlayerId, who: &Joiner<'_>) -> Result<NetId, ErrorBody> {
        let name = who.name;
        if let Some(seat) = self.seats.get(&player) {
            return Ok(seat.entity);
        }
        let entity = self
            .game
            .add_player(&mut self.world, player, who)
            .map_err(|why| ErrorBody::new(ErrorCode::Refused, why))?;
        if self
            .owner
            .is_none_or(|o| self.seats.get(&o).is_some_and(|s| s.brain.is_some()))
        {
            self.owner = Some(player);
        }
        self.seats.insert(
            player,
            Seat {
                name: name.to_owned(),
                entity,
                ready: false,
                brain: None,
                filler: false,
                inputs: InputQueue::default(),
                acked: None,
            },
        );
        self.out.events.push(RoomEvent::PlayerJoined {
            player,
            name: name.to_owned(),
        });
        Ok(entity)
    }

    /// Most seats the game has ([`Game::max_players`]).
    pub fn max_players(&self) -> Option<u8> {
        self.game.max_players()
    }

    /// Whether the game has an AI for server bots ([`Game::new_bot`]).
    pub fn hosts_bots(&self) -> bool {
        self.game.hosts_bots()
    }

    /// Seats a server bot: always ready, driven each step by the game's [`Bot`] from the latest
    /// snapshot, its inputs going through [`RoomSim::receive`] like a human's. `None` (and no
    /// seat) when the game has no AI or refuses the seat.
    pub fn join_bot(&mut self, player: PlayerId, name: &str) -> Option<NetId> {
        let brain = self.game.new_bot(player.0 as u64)?;
        let entity = self.join(player, name).ok()?;
        if let Some(seat) = self.seats.get_mut(&player) {
            seat.brain = Some(brain);
            seat.ready = true;
        }
        // Bots do not own rooms; the first human does.
        if self.owner == Some(player) {
            self.owner = None;
        }
        Some(entity)
    }

    pub fn has_bots(&self) -> bool {
        self.seats.values().any(|s| s.brain.is_some())
    }

    fn has_humans(&self) -> bool {
        self.seats.values().any(|s| s.brain.is_none())
    }

    /// Each bot picks its input from what it last saw.
    fn drive_bots(&mut self) {
        let Some(view) = self.history.latest() else {
            return;
        };
        let mut batches = Vec::new();
        for (player, seat) in &mut self.seats {
            if let Some(brain) = &mut seat.brain {
                let inputs = brain
                    .act(*player, view)
                    .map(|slots| Input {
                        seq: seat.inputs.newest() + 1,
                        slots,
                    })
                    .into_iter()
                    .collect();
                batches.push((
                    *player,
                    InputBatch {
                        ack_tick: Some(view.tick),
                        inputs,
                    },
                ));
            }
        }
        for (player, batch) in batches {
            self.receive(player, &batch);
        }
    }

    /// The player's connection dropped: its entity stands still and its baseline is forgotten,
    /// the seat stays.
    pub fn detach(&mut self, player: PlayerId, grace_secs: u32) {
        if let Some(seat) = self.seats.get_mut(&player) {
            seat.inputs.reset();
            seat.acked = None;
            self.out
                .events
                .push(RoomEvent::PlayerDisconnected { player, grace_secs });
            self.game.player_disconnected(&mut self.world, player);
        }
    }

    /// The player is back: the same seat and entity, snapshots from a full one.
    pub fn reattach(&mut self, player: PlayerId) -> Option<NetId> {
        let seat = self.seats.get_mut(&player)?;
        seat.acked = None;
        // The new connection numbers its inputs from 1 again.
        seat.inputs.reset();
        let entity = seat.entity;
        self.game.player_reconnected(&mut self.world, player);
        Some(entity)
    }

    /// Adds a watcher: snapshots and events, no entity, no seat.
    pub fn spectate(&mut self, player: PlayerId) {
        self.spectators.entry(player).or_insert(None);
    }

    pub fn leave(&mut self, player: PlayerId) -> bool {
        if self.spectators.remove(&player).is_some() {
            return true;
        }
        if self.seats.remove(&player).is_none() {
            return false;
        }
        self.game.remove_player(&mut self.world, player);
        self.out.events.push(RoomEvent::PlayerLeft { player });
        if self.owner == Some(player) {
            // Seats are keyed by player id, which grows with arrival: the longest-seated human.
            self.owner = self
                .seats
                .iter()
                .find(|(_, s)| s.brain.is_none())
                .map(|(p, _)| *p);
        }
        if self.seats.is_empty() {
            // Nobody holds a baseline any more; start the next player from a full snapshot.
            self.history.clear();
            for acked in self.spectators.values_mut() {
                *acked = None;
            }
            if self.lifecycle != Lifecycle::Waiting {
                self.game.abort_match(&mut self.world);
                self.set_lifecycle(Lifecycle::Waiting);
            }
        }
        true
    }

    /// Marks a player ready or not; tells the room when it changes.
    pub fn set_ready(&mut self, player: PlayerId, ready: bool) {
        if let Some(seat) = self.seats.get_mut(&player)
            && seat.ready != ready
        {
            seat.ready = ready;
            self.out
                .events
                .push(RoomEvent::PlayerReady { player, ready });
        }
    }

    /// A chat line from a player (already validated) goes to everyone in the room.
    pub fn chat(&mut self, player: PlayerId, text: String) {
        if let Some(seat) = self.seats.get(&player) {
            self.out.events.push(RoomEvent::Chat {
                player,
                name: seat.name.clone(),
                text,
            });
        }
    }

    /// A game message from a seated player, its slots checked against the schema by the
    /// session; the game may refuse it.
    pub fn message(&mut self, player: PlayerId, kind: u16, slots: &[u32]) -> Result<(), ErrorBody> {
        if !self.seats.contains_key(&player) {
            return Err(ErrorBody::new(
                ErrorCode::NotInRoom,
                "only a seated player sends the game messages",
            ));
        }
        self.game
            .message(&mut self.world, player, kind, slots, &mut self.out)
    }

    /// Takes a validated batch: new inputs wait for their step (see [`InputQueue`]), and the
    /// ack moves forward only to a tick this room has already produced.
    pub fn receive(&mut self, player: PlayerId, batch: &InputBatch) {
        if let Some(acked) = self.spectators.get_mut(&player) {
            // A spectator's inputs carry only its ack.
            if let Some(ack) = batch.ack_tick
                && ack <= self.tick
                && acked.is_none_or(|a| ack > a)
            {
                *acked = Some(ack);
            }
            return;
        }
        let Some(seat) = self.seats.get_mut(&player) else {
            return;
        };
        seat.inputs.receive(&batch.inputs, &self.presses);
        if let Some(ack) = batch.ack_tick
            && ack <= self.tick
            && seat.acked.is_none_or(|a| ack > a)
        {
            seat.acked = Some(ack);
        }
    }

    /// Advances one fixed step. Returns whether a snapshot is due after it.
    pub fn step(&mut self) -> bool {
        self.tick = self.tick.next();
        self.drive_bots();
        // The entries (and their slot buffers) are kept from step to step; `n` are this step's.
        let mut n = 0;
        for (player, seat) in &mut self.seats {
            if n == self.inputs.len() {
                self.inputs.push((*player, SlotInput::default()));
            }
            let (to, input) = &mut self.inputs[n];
            if let Some(fresh) = seat.inputs.take_for_step(&mut input.slots) {
                *to = *player;
                input.fresh = fresh;
                n += 1;
            }
        }
        let before = self.out.events.len();
        self.game
            .step(&mut self.world, &self.inputs[..n], self.dt, &mut self.out);
        let ended = self.out.events[before..]
            .iter()
            .any(|e| matches!(e, RoomEvent::MatchEnded(_)));
        self.advance_lifecycle(ended);
        self.tick.0.is_multiple_of(self.ticks_per_snapshot)
    }

    /// Events for everyone in the room.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, RoomEvent> {
        self.out.events.drain(..)
    }

    /// Game messages to one player each.
    pub fn drain_told(&mut self) -> std::vec::Drain<'_, (PlayerId, RoomEvent)> {
        self.out.told.drain(..)
    }

    /// Captures the world at the current tick into the history, with straight movers kept on
    /// the prediction from the previous capture (`delta::settle`: what makes them free in the
    /// deltas).
    pub fn capture(&mut self) -> &Snapshot {
        // Room for as many entities as last time, and a few more.
        let expected = self.history.latest().map_or(0, |s| s.len() + s.len() / 8);
        let mut capture = Capture::with_capacity(self.schema.stride(), expected);
        self.game.capture(&self.world, &mut capture);
        let mut snapshot = Snapshot::capture(capture, self.tick).with_tick_rate(self.tick_rate);
        if let Some(prev) = self.history.latest() {
            delta::settle(&self.schema, prev, &mut snapshot);
        }
        self.history.push(snapshot);
        self.history.latest().expect("just pushed")
    }

    /// Captures a snapshot and encodes it for every player against that player's baseline,
    /// once per distinct baseline.
    pub fn snapshot(&mut self, out: &mut Vec<Outgoing>) {
        self.capture();
        let seated = self
            .seats
            .iter()
            .map(|(p, s)| (*p, s.acked, s.inputs.applied()));
        let watching = self.spectators.iter().map(|(p, acked)| (*p, *acked, 0));
        for (player, acked, input_ack) in seated.chain(watching) {
            if let Some(body) = self.cache.encode(&self.schema, &self.history, acked) {
                out.push(Outgoing {
                    player,
                    input_ack,
                    body,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::Vec2;
    use tickwire_arena::view as arena;
    use tickwire_arena::{Arena, ArenaConfig, ArenaInput, EntityState};
    use tickwire_protocol::{Record, delta};

    fn input(seq: u32, move_dir: Vec2) -> Input {
        let slots = ArenaInput {
            move_dir,
            ..ArenaInput::default()
        }
        .to_slots()
        .unwrap();
        Input { seq, slots }
    }

    fn room(drones: u32) -> RoomSim {
        let arena = Arena::new(ArenaConfig {
            drones,
            ..ArenaConfig::default()
        });
        RoomSim::new(arena, 60, 1)
    }

    #[test]
    fn players_get_full_then_delta_snapshots_and_inputs_move_them() {
        let mut sim = room(10);
        let (a, b) = (PlayerId(1), PlayerId(2));
        let ea = sim.join(a, "a").unwrap();
        sim.join(b, "b").unwrap();
        assert!(sim.step());
        let mut out = Vec::new();
        sim.snapshot(&mut out);
        assert_eq!(out.len(), 2);
        // Both have no baseline: one shared full encode.
        assert_eq!(sim.encodes(), 1);
        let full = delta::decode(sim.schema(), &out[0].body, None).unwrap();
        assert_eq!(&full, sim.history().latest().unwrap());
        let position = |s: &Snapshot| {
            let e = s.get(ea).and_then(EntityState::from_entity).unwrap();
            e.position()
        };
        let start = position(&full);

        let batch = InputBatch {
            ack_tick: Some(full.tick),
            inputs: vec![input(1, Vec2::X)],
        };
        sim.receive(a, &batch);
        for _ in 0..30 {
            sim.step();
        }
        out.clear();
        sim.snapshot(&mut out);
        let for_a = out.iter().find(|o| o.player == a).unwrap();
        assert_eq!(for_a.input_ack, 1);
        let next = delta::decode(sim.schema(), &for_a.body, Some(&full)).unwrap();
        assert_eq!(&next, sim.history().latest().unwrap());
        assert!(position(&next).x > start.x + 100.0);
        // b acked nothing and gets a full snapshot: two encodes this tick.
        assert_eq!(sim.encodes(), 3);
    }

    #[test]
    fn ready_players_go_through_countdown_match_results_and_back() {
        let arena = Arena::new(ArenaConfig {
            drones: 0,
            match_secs: 1.0,
            ..ArenaConfig::default()
        });
        let mut sim = RoomSim::new(arena, 10, 1).with_timing(Timing {
            countdown_secs: 1,
            results_secs: 1,
        });
        let (a, b) = (PlayerId(1), PlayerId(2));
        sim.join(a, "a").unwrap();
        sim.join(b, "b").unwrap();
        let states = |sim: &mut RoomSim| -> Vec<RoomState> {
            sim.drain_events()
                .filter_map(|e| match e {
                    RoomEvent::StateChanged { state, .. } => Some(state),
                    _ => None,
                })
                .collect()
        };
        sim.set_ready(a, true);
        sim.step();
        assert_eq!(sim.state(), RoomState::Waiting, "b is not ready");
        assert_eq!(sim.start(b).unwrap_err().code, ErrorCode::NotOwner);
        sim.set_ready(b, true);
        sim.step();
        assert_eq!(sim.state(), RoomState::Countdown);
        // Un-readying stops an unforced countdown.
        sim.set_ready(b, false);
        sim.step();
        assert_eq!(sim.state(), RoomState::Waiting);
        // The owner can force it.
        sim.start(a).unwrap();
        assert_eq!(sim.start(a).unwrap_err().code, ErrorCode::MatchInProgress);
        for _ in 0..12 {
            sim.step();
        }
        assert_eq!(sim.state(), RoomState::Playing);
        for _ in 0..12 {
            sim.step();
        }
        assert_eq!(sim.state(), RoomState::Finished);
        for _ in 0..12 {
            sim.step();
        }
        assert_eq!(sim.state(), RoomState::Waiting);
        assert_eq!(
            states(&mut sim),
            [
                RoomState::Countdown,
                RoomState::Waiting,
                RoomState::Countdown,
                RoomState::Playing,
                RoomState::Finished,
                RoomState::Waiting
            ]
        );
        // Ownership passes on when the owner leaves.
        sim.leave(a);
        assert_eq!(sim.owner(), Some(b));
    }

    #[test]
    fn a_bot_only_room_plays_one_match_then_waits() {
        let arena = Arena::new(ArenaConfig {
            drones: 5,
            match_secs: 2.0,
            ..ArenaConfig::default()
        });
        let mut sim = RoomSim::new(arena, 20, 1).with_timing(Timing {
            countdown_secs: 0,
            results_secs: 1,
        });
        for p in 1..=3 {
            sim.join_bot(PlayerId(p), &format!("bot {p}"));
        }
        assert_eq!(sim.owner(), None);
        let mut out = Vec::new();
        let start: Vec<_> = {
            sim.step();
            sim.snapshot(&mut out);
            arena::entities(sim.history().latest().unwrap()).collect()
        };
        let mut ended = 0;
        for _ in 0..200 {
            sim.step();
            out.clear();
            sim.snapshot(&mut out);
            ended += sim
                .drain_events()
                .filter(|e| matches!(e, RoomEvent::MatchEnded(_)))
                .count();
        }
        assert_eq!(ended, 1, "one match, then the bots wait for a human");
        assert_eq!(sim.state(), RoomState::Waiting);
        // The bots moved (they play through the input path).
        let end: Vec<EntityState> = arena::entities(sim.history().latest().unwrap()).collect();
        let moved = start
            .iter()
            .filter(|e| e.kind == tickwire_arena::EntityKind::Player)
            .filter(|e| {
                end.iter()
                    .find(|x| x.id == e.id)
                    .is_some_and(|x| x.pos != e.pos)
            })
            .count();
        assert_eq!(moved, 3);
        // A human joining makes the bots ready again for the next match; the human owns the room.
        sim.join(PlayerId(10), "human").unwrap();
        assert_eq!(sim.owner(), Some(PlayerId(10)));
    }

    #[test]
    fn empty_seats_are_filled_for_a_match_and_freed_after() {
        let arena = Arena::new(ArenaConfig {
            drones: 0,
            match_secs: 1.0,
            ..ArenaConfig::default()
        });
        let ids = Arc::new(AtomicU32::new(100));
        let mut sim = RoomSim::new(arena, 10, 1)
            .with_timing(Timing {
                countdown_secs: 0,
                results_secs: 0,
            })
            .with_bot_fill(4, ids);
        sim.join(PlayerId(1), "human").unwrap();
        sim.set_ready(PlayerId(1), true);
        sim.step();
        sim.step();
        assert_eq!(sim.state(), RoomState::Playing);
        assert_eq!((sim.player_count(), sim.bot_count()), (4, 3));
        for _ in 0..15 {
            sim.step();
        }
        assert_eq!(sim.state(), RoomState::Waiting);
        assert_eq!((sim.player_count(), sim.bot_count()), (1, 0));
    }

    #[test]
    fn acks_from_the_future_and_stale_inputs_are_ignored() {
        let mut sim = room(0);
        let a = PlayerId(1);
        sim.join(a, "a").unwrap();
        sim.step();
        let lie = InputBatch {
            ack_tick: Some(Tick(1000)),
            inputs: vec![input(5, Vec2::ZERO)],
        };
        sim.receive(a, &lie);
        sim.receive(
            a,
            &InputBatch {
                ack_tick: None,
                inputs: vec![input(4, Vec2::X)],
            },
        );
        sim.step();
        let mut out = Vec::new();
        sim.snapshot(&mut out);
        assert_eq!(out[0].input_ack, 5);
        assert_eq!(
            delta::read_header(&out[0].body).unwrap().baseline_low(),
            None
        );
    }

    /// A game that writes down the hooks the room calls.
    struct Hooks(Arc<std::sync::Mutex<Vec<String>>>);

    impl crate::game::Game for Hooks {
        type Input = ();
        type ToRoom = crate::game::NoMessages;
        type ToPlayer = crate::game::NoMessages;

        fn min_players(&self) -> usize {
            1
        }
        fn add_player(
            &mut self,
            _: &mut World,
            p: PlayerId,
            _: &Joiner<'_>,
        ) -> Result<NetId, String> {
            self.0.lock().unwrap().push(format!("join {}", p.0));
            if p.0 >= 100 {
                return Err(format!("no seat for {}", p.0));
            }
            Ok(NetId(0))
        }
        fn remove_player(&mut self, _: &mut World, p: PlayerId) {
            self.0.lock().unwrap().push(format!("leave {}", p.0));
        }
        fn player_disconnected(&mut self, _: &mut World, p: PlayerId) {
            self.0.lock().unwrap().push(format!("gone {}", p.0));
        }
        fn player_reconnected(&mut self, _: &mut World, p: PlayerId) {
            self.0.lock().unwrap().push(format!("back {}", p.0));
        }
        fn start_match(
            &mut self,
            _: &mut World,
            _: &mut crate::game::Outbox<crate::game::NoMessages>,
        ) {
        }
        fn abort_match(&mut self, _: &mut World) {}
        fn step(
            &mut self,
            _: &mut World,
            _: &[(PlayerId, crate::game::TickInput<()>)],
            _: f32,
            _: &mut crate::game::Outbox<crate::game::NoMessages>,
        ) {
        }
        fn schema(&self) -> Arc<Schema> {
            use tickwire_protocol::schema::{Field, FieldType, Kind};
            let dot = Kind::new("dot", vec![Field::new("on", FieldType::Bool, 1)]);
            Arc::new(crate::game::declare::<Hooks>(vec![dot]).unwrap())
        }
        fn capture(&self, _: &World, _: &mut Capture) {}
    }

    #[test]
    fn the_game_hears_a_player_drop_come_back_and_leave_and_may_refuse_a_seat() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut sim = RoomSim::new(Hooks(log.clone()), 60, 1);
        let p = PlayerId(7);
        sim.join(p, "p").unwrap();
        sim.detach(p, 30);
        assert!(sim.reattach(p).is_some());
        sim.leave(p);
        // A player with no seat is nobody's business.
        sim.detach(PlayerId(8), 30);
        // The game may refuse a seat: no seat, no event, the reason for the player.
        sim.drain_events().for_each(drop);
        let refused = sim.join(PlayerId(100), "late").unwrap_err();
        assert_eq!(refused.code, ErrorCode::Refused);
        assert_eq!(refused.message, "no seat for 100");
        assert_eq!((sim.player_count(), sim.drain_events().count()), (0, 0));
        assert_eq!(
            *log.lock().unwrap(),
            ["join 7", "gone 7", "back 7", "leave 7", "join 100"]
        );
    }
}
