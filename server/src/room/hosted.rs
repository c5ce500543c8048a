//! A game as the room drives it: [`Hosted`] is [`Game`] with its own input and message types
//! turned into slots, so the room (seats, input queues, lifecycle, transports) is written once
//! for every game. The adapter converts at the edge: slots the session already checked against
//! the declared schema become the game's typed values, and what the game tells players becomes
//! [`RoomEvent::Message`]s.

use crate::game::{Bot, Game, Joiner, Messages, Outbox, Record, TickInput, Values};
use hecs::World;
use std::sync::Arc;
use tickwire_protocol::record;
use tickwire_protocol::{
    Capture, ErrorBody, ErrorCode, NetId, PlayerId, RoomEvent, Schema, Snapshot,
};

/// One seat's input for a step, as slots.
#[derive(Debug, Clone, Default)]
pub struct SlotInput {
    pub slots: Vec<u32>,
    pub fresh: bool,
}

/// What game calls hand back: events for everyone, and messages to one player.
#[derive(Debug, Default)]
pub struct RoomOut {
    pub events: Vec<RoomEvent>,
    pub told: Vec<(PlayerId, RoomEvent)>,
}

/// A server bot producing input slots.
pub trait SlotBot: Send {
    /// None when the bot's input falls outside the declaration (a bug in the game's AI: the
    /// input is dropped as a client's would be).
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Option<Vec<u32>>;
}

/// [`Game`] without its types: what the room calls.
pub trait Hosted: Send {
    fn min_players(&self) -> usize;
    fn max_players(&self) -> Option<u8>;
    fn add_player(
        &mut self,
        world: &mut World,
        player: PlayerId,
        who: &Joiner<'_>,
    ) -> Result<NetId, String>;
    fn remove_player(&mut self, world: &mut World, player: PlayerId);
    fn player_disconnected(&mut self, world: &mut World, player: PlayerId);
    fn player_reconnected(&mut self, world: &mut World, player: PlayerId);
    fn start_match(&mut self, world: &mut World, out: &mut RoomOut);
    fn abort_match(&mut self, world: &mut World);
    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, SlotInput)],
        dt: f32,
        out: &mut RoomOut,
    );
    /// A checked message's slots for the game; its refusal is `refused` with its reason.
    fn message(
        &mut self,
        world: &mut World,
        player: PlayerId,
        kind: u16,
        slots: &[u32],
        out: &mut RoomOut,
    ) -> Result<(), ErrorBody>;
    fn schema(&self) -> &Arc<Schema>;
    fn capture(&self, world: &World, out: &mut Capture);
    fn hosts_bots(&self) -> bool;
    fn new_bot(&self, seed: u64) -> Option<Box<dyn SlotBot>>;
}

/// A typed game behind [`Hosted`].
pub struct Adapter<G: Game> {
    game: G,
    schema: Arc<Schema>,
    hosts_bots: bool,
    outbox: Outbox<G::ToPlayer>,
    // Kept between steps so a step allocates nothing in the steady state.
    inputs: Vec<(PlayerId, TickInput<G::Input>)>,
    values: Vec<f64>,
}

impl<G: Game> Adapter<G> {
    /// A game on its own (a room stepped in a test): its schema asked for, its AI probed.
    pub fn new(game: G) -> Adapter<G> {
        let schema = game.schema();
        let hosts_bots = game.new_bot(0).is_some();
        Adapter::known(game, schema, hosts_bots)
    }

    /// A game whose mode's schema and AI are already known ([`crate::modes::Modes`] asks once
    /// per mode, not once per room).
    pub fn known(game: G, schema: Arc<Schema>, hosts_bots: bool) -> Adapter<G> {
        Adapter {
            game,
            schema,
            hosts_bots,
            outbox: Outbox::default(),
            inputs: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Moves what the game pushed into `out`, its messages as slots.
    fn flush(&mut self, out: &mut RoomOut) {
        let (events, told) = self.outbox.take();
        out.events.extend(events);
        let kinds = &self.schema.messages().to_player;
        for (to, message) in told {
            self.values.clear();
            let kind = message.write(&mut self.values);
            let slots = record::message_kind(kinds, kind)
                .and_then(|k| record::quantise(&k.fields, &self.values));
            let slots = match slots {
                Ok(slots) => slots,
                Err(e) => {
                    tracing::warn!("the game sent a message outside its declaration: {e}");
                    continue;
                }
            };
            let event = RoomEvent::Message { kind, slots };
            match to {
                Some(player) => out.told.push((player, event)),
                None => out.events.push(event),
            }
        }
    }
}

impl<G: Game> Hosted for Adapter<G> {
    fn min_players(&self) -> usize {
        self.game.min_players()
    }

    fn max_players(&self) -> Option<u8> {
        self.game.max_players()
    }

    fn add_player(
        &mut self,
        world: &mut World,
        player: PlayerId,
        who: &Joiner<'_>,
    ) -> Result<NetId, String> {
        self.game.add_player(world, player, who)
    }

    fn remove_player(&mut self, world: &mut World, player: PlayerId) {
        self.game.remove_player(world, player);
    }

    fn player_disconnected(&mut self, world: &mut World, player: PlayerId) {
        self.game.player_disconnected(world, player);
    }

    fn player_reconnected(&mut self, world: &mut World, player: PlayerId) {
        self.game.player_reconnected(world, player);
    }

    fn start_match(&mut self, world: &mut World, out: &mut RoomOut) {
        self.game.start_match(world, &mut self.outbox);
        self.flush(out);
    }

    fn abort_match(&mut self, world: &mut World) {
        self.game.abort_match(world);
    }

    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, SlotInput)],
        dt: f32,
        out: &mut RoomOut,
    ) {
        self.inputs.clear();
        let fields = self.schema.input();
        for (player, input) in inputs {
            self.values.clear();
            // Checked on arrival; a failure here would be a bug, and costs the input only.
            if record::dequantise(fields, &input.slots, &mut self.values).is_ok() {
                self.inputs.push((
                    *player,
                    TickInput {
                        input: G::Input::read(&mut Values::new(&self.values)),
                        fresh: input.fresh,
                    },
                ));
            }
        }
        self.game.step(world, &self.inputs, dt, &mut self.outbox);
        self.flush(out);
    }

    fn message(
        &mut self,
        world: &mut World,
        player: PlayerId,
        kind: u16,
        slots: &[u32],
        out: &mut RoomOut,
    ) -> Result<(), ErrorBody> {
        let bad = |e: record::RecordError| ErrorBody::new(ErrorCode::BadRequest, e.to_string());
        let declared = record::message_kind(&self.schema.messages().to_room, kind).map_err(bad)?;
        self.values.clear();
        record::dequantise(&declared.fields, slots, &mut self.values).map_err(bad)?;
        let message = G::ToRoom::read(kind, &mut Values::new(&self.values))
            .ok_or_else(|| bad(record::RecordError::UnknownKind(kind)))?;
        let taken = self
            .game
            .message(world, player, message, &mut self.outbox)
            .map_err(|why| ErrorBody::new(ErrorCode::Refused, why));
        // What the game told players before refusing still goes out.
        self.flush(out);
        taken
    }

    fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    fn capture(&self, world: &World, out: &mut Capture) {
        self.game.capture(world, out);
    }

    fn hosts_bots(&self) -> bool {
        self.hosts_bots
    }

    fn new_bot(&self, seed: u64) -> Option<Box<dyn SlotBot>> {
        let bot = self.game.new_bot(seed)?;
        Some(Box::new(TypedBot {
            bot,
            schema: self.schema.clone(),
            values: Vec::new(),
        }))
    }
}

struct TypedBot<I> {
    bot: Box<dyn Bot<I>>,
    schema: Arc<Schema>,
    values: Vec<f64>,
}

impl<I: Record + Send> SlotBot for TypedBot<I> {
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> Option<Vec<u32>> {
        let input = self.bot.act(me, view);
        self.values.clear();
        input.write(&mut self.values);
        match record::quantise(self.schema.input(), &self.values) {
            Ok(slots) => Some(slots),
            Err(e) => {
                tracing::debug!("a bot's input is outside the declaration: {e}");
                None
            }
        }
    }
}
