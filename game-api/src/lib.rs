//! tickwire-game: the public game API, the only way a game reaches a tickwire server.
//!
//! A game is plain synchronous code over a hecs world, written in its own crate: it never reads
//! a clock or a socket, and never sees bincode; the room hands it the inputs and the fixed time
//! step, and takes what it replicates as a [`Capture`] in the shape of the [`Schema`] it
//! declares. The server re-exports this crate as `tickwire_server::game`; a server binary
//! registers games by mode name (`Server::builder(..).game::<MyGame>("mine", config)`).
//!
//! A game's input, its messages and its replicated kinds are declared on its own types with
//! `#[derive(Record)]` and `#[derive(Messages)]` (or by hand, implementing the traits).
//!
//! The crates a game needs are re-exported so its versions match the server's: [`hecs`],
//! [`glam`] and [`protocol`] (ids, the schema descriptor, snapshots, room events).

pub use glam;
pub use hecs;
pub use tickwire_protocol as protocol;

use hecs::World;
use std::sync::Arc;
/// `#[derive(Record)]` and `#[derive(Messages)]`: the declarations written on the game's own
/// types (see the `tickwire-derive` crate for the attributes).
pub use tickwire_derive::{Messages, Record};
use tickwire_protocol::{Capture, NetId, PlayerId, RoomEvent, Schema, Snapshot};
pub use tickwire_protocol::{Messages, NoMessages, Record, Values};

/// A player's input for one step: the newest one its queue gives this step (see
/// `room::inputs` in the server).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TickInput<I> {
    pub input: I,
    /// A new input this step; false when the player sent nothing newer and the last one is
    /// held (for a game that applies each input once, not each step).
    pub fresh: bool,
}

/// Who a player is, as the game's own backend vouched for them: the claims of the ticket the
/// player connected with, on a server that asks for tickets (`--auth-key-file`). A server
/// that lets anyone in has no identity to give.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The backend's id for the player (the ticket's `sub`).
    pub subject: String,
    /// The name the backend gave the player (the ticket's `name`), which the player is shown
    /// under.
    pub name: Option<String>,
    /// Every claim of the ticket, `sub` and `exp` included, for a game that put its own there
    /// (a team, a rank, what the player owns).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A player asking for a seat, as [`Game::add_player`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Joiner<'a> {
    /// The name the player is shown under (the ticket's, when it gave one), already
    /// normalised and checked by the server.
    pub name: &'a str,
    /// Who the player is, when the server asks for tickets.
    pub identity: Option<&'a Identity>,
}

impl<'a> Joiner<'a> {
    /// A player known only by name (a server that lets anyone in, a bot, a test).
    pub fn named(name: &'a str) -> Joiner<'a> {
        Joiner {
            name,
            identity: None,
        }
    }
}

/// What a game call hands back to the room: events for everyone, and game messages to one
/// player or to all.
pub struct Outbox<M> {
    events: Vec<RoomEvent>,
    told: Vec<(Option<PlayerId>, M)>,
}

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox {
            events: Vec::new(),
            told: Vec::new(),
        }
    }
}

impl<M> Outbox<M> {
    /// A room event everyone in the room gets (`MatchEnded` ends the match).
    pub fn event(&mut self, event: RoomEvent) {
        self.events.push(event);
    }

    /// A game message to one player.
    pub fn tell(&mut self, player: PlayerId, message: M) {
        self.told.push((Some(player), message));
    }

    /// A game message to everyone in the room, spectators included.
    pub fn tell_all(&mut self, message: M) {
        self.told.push((None, message));
    }

    /// The events pushed so far.
    pub fn events(&self) -> &[RoomEvent] {
        &self.events
    }

    /// Whether `MatchEnded` was pushed since the last [`Outbox::take`].
    pub fn match_ended(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, RoomEvent::MatchEnded(_)))
    }

    /// Everything pushed so far, leaving the outbox empty (the room's side).
    pub fn take(
        &mut self,
    ) -> (
        std::vec::Drain<'_, RoomEvent>,
        std::vec::Drain<'_, (Option<PlayerId>, M)>,
    ) {
        (self.events.drain(..), self.told.drain(..))
    }
}

/// A game mode. The room owns the lifecycle (waiting, countdown, playing, finished); the mode
/// plays: between matches it runs a warm-up (players move, nothing counts), and from
/// `start_match` until it reports [`RoomEvent::MatchEnded`] it runs the match.
///
/// The input and the messages are the game's own types; the room checks what a client sends
/// against their declarations (the schema's `input` and `messages`) before the game sees it.
pub trait Game: Send + 'static {
    /// What a player sends every tick (declared in the schema's `input`).
    type Input: Record + Clone + Send;
    /// Messages a player sends the room (the schema's `messages.toRoom`); [`NoMessages`] for
    /// none.
    type ToRoom: Messages + Send;
    /// Messages the room sends players (the schema's `messages.toPlayer`).
    type ToPlayer: Messages + Send;

    /// Players needed before a match may start.
    fn min_players(&self) -> usize;
    /// Most seats a room of this game has (a board game's two); a room created with more is
    /// capped to it. `None` (the default): as many as the room is created with.
    fn max_players(&self) -> Option<u8> {
        None
    }
    /// Seats the player: gives it an entity and returns its net id (0 for none, when the state
    /// is the room's). `Err` refuses the join with a reason the player is told (`refused`);
    /// its seat is given back. A game that admits only some players (members of a clan, the
    /// two a match was made for) decides here from `who.identity`.
    fn add_player(
        &mut self,
        world: &mut World,
        player: PlayerId,
        who: &Joiner<'_>,
    ) -> Result<NetId, String>;
    fn remove_player(&mut self, world: &mut World, player: PlayerId);
    /// The player's connection dropped; its seat and entity wait for it to come back within
    /// the reconnect grace (then [`Game::remove_player`]). Its inputs stop meanwhile. The
    /// default does nothing (the entity stands still).
    fn player_disconnected(&mut self, _world: &mut World, _player: PlayerId) {}
    /// The player is back in its seat on a new connection.
    fn player_reconnected(&mut self, _world: &mut World, _player: PlayerId) {}
    /// Resets scores and positions and starts a match; pushes `MatchStarted`.
    fn start_match(&mut self, world: &mut World, out: &mut Outbox<Self::ToPlayer>);
    /// Stops a running match without a result (everybody left).
    fn abort_match(&mut self, world: &mut World);
    /// Advances one fixed step; pushes what happened to `out`, `MatchEnded` included when the
    /// match is over (the mode is then back to warm-up).
    fn step(
        &mut self,
        world: &mut World,
        inputs: &[(PlayerId, TickInput<Self::Input>)],
        dt: f32,
        out: &mut Outbox<Self::ToPlayer>,
    );
    /// A message from a seated player, already checked against its declaration. `Err` turns it
    /// down with a reason the player is told (`refused`); the default takes none.
    fn message(
        &mut self,
        _world: &mut World,
        _player: PlayerId,
        _message: Self::ToRoom,
        _out: &mut Outbox<Self::ToPlayer>,
    ) -> Result<(), String> {
        Err("this game takes no messages".into())
    }
    /// The declared schema: what every [`Game::capture`] follows, the input and the messages
    /// (the same for every room of a mode). Declare [`Game::Input`]'s fields as its `input`
    /// and the message kinds of [`Game::ToRoom`] and [`Game::ToPlayer`] (see [`declare`]).
    fn schema(&self) -> Arc<Schema>;
    /// Adds the replicated state of every entity (any order) to `out`, in the shape of
    /// [`Game::schema`].
    fn capture(&self, world: &World, out: &mut Capture);
    /// A bot that plays this game, for seats the room fills with server bots; `None` (the
    /// default) when the game has no AI, and rooms of it then refuse bots.
    fn new_bot(&self, _seed: u64) -> Option<Box<dyn Bot<Self::Input>>> {
        None
    }
}

/// The schema of a game `G` whose replicated kinds are `kinds`: the kinds, with `G`'s input
/// and messages declared from its types, so they cannot drift apart.
pub fn declare<G: Game>(
    kinds: Vec<tickwire_protocol::schema::Kind>,
) -> Result<Schema, tickwire_protocol::schema::SchemaError> {
    Schema::new(kinds)?
        .with_input(G::Input::fields().to_vec())?
        .with_messages(tickwire_protocol::schema::MessageKinds {
            to_room: G::ToRoom::kinds().to_vec(),
            to_player: G::ToPlayer::kinds().to_vec(),
        })
}

/// A game's AI. It sees what a player sees (the newest snapshot the player received) and plays
/// through the players' own input path, so a bot can do nothing a player could not. Server bots
/// and the `tickwire-bots` swarm both use it.
pub trait Bot<I>: Send {
    /// What the player `me` does next, given the world it last saw.
    fn act(&mut self, me: PlayerId, view: &Snapshot) -> I;
}

/// A game the server can host under a mode name: how to make one for a new room.
pub trait GameMode: Game + Sized {
    /// What the mode is registered with (for the arena: drones, score limit, match length).
    type Config: Clone + Send + Sync + 'static;
    /// A fresh game for one room. `seed` differs from room to room, for the game's random
    /// numbers, so a room replays the same from the same inputs.
    fn new_room(config: &Self::Config, seed: u64) -> Self;
}
