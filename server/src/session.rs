//! A player's session: the transport-independent half of a connection. Transports decode
//! frames and hand requests and input batches to the session; the session talks to the lobby and
//! the room. No transport knows the game, and the session knows no socket.

use crate::auth::Gate;
use crate::cluster::{Cluster, NodeId, Place, RESERVATION};
use crate::game::Identity;
use crate::lobby::{LobbyCommand, LobbyHandle, Member, SeatCall};
use crate::peers::PeerHandle;
use crate::peers::PeerKey;
use crate::rate::{Bucket, Rate};
use crate::room::{Admitted, RoomCommand, RoomLink, SnapshotPacket, SnapshotSink};
use std::sync::Arc;
use tickwire_protocol::{
    ErrorBody, ErrorCode, InputBatch, InputError, Joined, Moved, NodeAddress, PROTOCOL_VERSION,
    PlayerId, Reply, Request, RoomEvent, RoomId, Schema, Welcome, normalise_chat, normalise_name,
    record, validate_schema_hashes,
};
use tokio::sync::{mpsc, oneshot, watch};

/// Input batches a session may have in flight to its room; more are dropped (a flood costs the
/// flooding player its own inputs and nothing else).
pub const INPUT_QUEUE: usize = 8;
/// Room events buffered for a player before the room starts dropping them.
pub const EVENT_QUEUE: usize = 256;

/// What the transport forwards to its client while the player is in a room.
pub struct RoomFeed {
    /// With [`SnapshotRoute::Forwarded`] only.
    pub snapshots: Option<watch::Receiver<Option<SnapshotPacket>>>,
    pub events: mpsc::Receiver<RoomEvent>,
}

/// How a transport takes its player's snapshots from the room.
#[derive(Clone)]
pub enum SnapshotRoute {
    /// The room's tick calls the transport's sink itself (QUIC: straight into the connection's
    /// datagram queue), so a snapshot costs no wake-up of the connection's task.
    Direct(Arc<dyn SnapshotSink>),
    /// Through a `watch` (latest wins) that the transport's own task reads from the
    /// [`RoomFeed`] (Socket.IO, whose actor re-encodes snapshots for JSON clients).
    Forwarded,
}

/// The session's ends of a new link to a room.
struct SessionEnds {
    inputs: mpsc::Sender<InputBatch>,
    feed: RoomFeed,
}

/// Fresh bounded channels between a session and a room: the room's ends and the session's.
fn new_link(route: &SnapshotRoute) -> (RoomLink, SessionEnds) {
    let (inputs_tx, inputs) = mpsc::channel(INPUT_QUEUE);
    let (snapshots, snapshots_rx): (Arc<dyn SnapshotSink>, _) = match route {
        SnapshotRoute::Direct(sink) => (sink.clone(), None),
        SnapshotRoute::Forwarded => {
            let (tx, rx) = watch::channel(None);
            (Arc::new(tx), Some(rx))
        }
    };
    let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
    let link = RoomLink {
        inputs,
        snapshots,
        events,
    };
    let ends = SessionEnds {
        inputs: inputs_tx,
        feed: RoomFeed {
            snapshots: snapshots_rx,
            events: events_rx,
        },
    };
    (link, ends)
}

/// What the room sent a player, as [`RoomFeed::next`] yields it.
pub enum FromRoom {
    Snapshot(SnapshotPacket),
    Event(RoomEvent),
    /// The room dropped the player (it closed).
    Closed,
}

impl RoomFeed {
    /// The next thing the room sent; never completes while not in a room, so a transport can
    /// `select!` on it unconditionally. Cancel-safe. The room closing shows as the end of its
    /// events.
    pub async fn next(feed: &mut Option<RoomFeed>) -> FromRoom {
        let Some(f) = feed else {
            return std::future::pending().await;
        };
        let RoomFeed { snapshots, events } = f;
        loop {
            let snapshot = async {
                match snapshots.as_mut() {
                    Some(rx) => rx.changed().await.map(|()| rx.borrow_and_update().clone()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = snapshot => match changed {
                    Ok(Some(snapshot)) => return FromRoom::Snapshot(snapshot),
                    // Only the channel's initial value is empty.
                    Ok(None) => continue,
                    // The room let go of the link: what it said before that (why it closed,
                    // that the seat was taken) still comes first.
                    Err(_) => return events.recv().await.map_or(FromRoom::Closed, FromRoom::Event),
                },
                event = events.recv() => return event.map_or(FromRoom::Closed, FromRoom::Event),
            }
        }
    }
}

/// Values the server announces in `welcome`.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub tick_rate: u16,
    pub snapshot_rate: u16,
}

struct Membership {
    room: RoomId,
    /// The lobby of the room's node.
    lobby: LobbyHandle,
    schema: Arc<Schema>,
    inputs: mpsc::Sender<InputBatch>,
    commands: mpsc::WeakSender<RoomCommand>,
}

/// Lobby and room calls per player, whatever the transport: a burst of 20, then 10 per second.
pub const CALL_RATE: Rate = Rate {
    burst: 20.0,
    per_sec: 10.0,
};

/// A connection refused this many calls (or events) for flooding is cut off, whatever the
/// transport: by then it is not a player that lost count but a client that ignores the limit.
pub const FLOOD_LIMIT: u32 = 200;

/// A connection's refusals toward [`FLOOD_LIMIT`], whatever the transport counts as one.
#[derive(Debug, Default)]
pub struct Refusals(u32);

impl Refusals {
    /// Counts one refusal; true when that takes the connection past the limit.
    pub fn refuse(&mut self) -> bool {
        self.0 += 1;
        self.0 > FLOOD_LIMIT
    }
}

/// Which nodes' rooms a session can take its player into itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Only its own node's (QUIC: the connection belongs to that node's endpoint); a room on
    /// another node is reached by a seat reserved there ([`Reply::Moved`]).
    Home,
    /// Any node of this process (Socket.IO, on the HTTP port they share).
    Process,
}

pub struct Session {
    /// The transport's metrics label.
    transport: &'static str,
    snapshots: SnapshotRoute,
    cluster: Arc<Cluster>,
    /// The node this session came in through: where it lists from, and new rooms go when the
    /// nodes are equally loaded.
    home: usize,
    reach: Reach,
    /// This connection, as the lobby knows it (for reconnects).
    link: u64,
    calls: Bucket,
    /// This connection's share of its address's allowances.
    peer: PeerHandle,
    rates: Rates,
    /// Who may connect; checked at `Hello`.
    gate: Gate,
    player: Option<(PlayerId, String)>,
    /// Who the player is, when the gate asks for tickets.
    identity: Option<Arc<Identity>>,
    room: Option<Membership>,
    /// The schemas the client said it holds: joins into their rooms carry only the hash.
    known_schemas: Vec<String>,
    /// The last call to another machine's node that went unanswered: asked again, it goes
    /// under the same id, which that node answers once (a retried create makes one room).
    unanswered: Option<(NodeId, SeatCall, u64)>,
}

/// The result of one request: the reply, and a feed to pump when it put the player in a room.
pub type Outcome = Result<(Reply, Option<RoomFeed>), ErrorBody>;

/// A player asking for a seat, before it has channels to a room.
pub struct Seeker {
    pub player: PlayerId,
    pub name: String,
    pub identity: Option<Arc<Identity>>,
    /// The address it connects from: rooms it makes count against it.
    pub origin: PeerKey,
    /// The connection asking.
    pub link_id: u64,
}

impl Seeker {
    /// The lobby's member for this seeker over `link`, and where the room's answer comes.
    fn member(self, link: RoomLink) -> (Member, oneshot::Receiver<Result<Admitted, ErrorBody>>) {
        let (reply, answer) = oneshot::channel();
        let member = Member {
            player: self.player,
            name: self.name,
            identity: self.identity,
            origin: self.origin,
            link_id: self.link_id,
            link,
            reply,
        };
        (member, answer)
    }
}

/// Seats `seeker` in `lobby`'s node with no connection: the seat waits [`RESERVATION`] for
/// its token, as a dropped player's seat waits for its reconnect. Returns the token, which
/// takes the seat in a hello to that node; it is empty for a spectator, who holds no seat and
/// asks the node again itself.
pub async fn reserve_seat(
    lobby: &LobbyHandle,
    seeker: Seeker,
    call: SeatCall,
) -> Result<String, ErrorBody> {
    let (player, link_id) = (seeker.player, seeker.link_id);
    // Nothing reads this link: what the room sends before the seat waits goes nowhere.
    let (link, _ends) = new_link(&SnapshotRoute::Forwarded);
    let (member, answer) = seeker.member(link);
    let spectating = call.spectates();
    lobby.send(call.command(member)).await?;
    let Admitted { joined, .. } = answer
        .await
        .map_err(|_| ErrorBody::new(ErrorCode::Internal, "room went away"))??;
    if spectating {
        lobby.try_leave(joined.room.id, player, link_id);
        return Ok(String::new());
    }
    lobby.try_reserved(joined.room.id, player, link_id);
    Ok(joined.reconnect_token)
}

/// Where a player is sent to take a seat (or, with an empty token, to ask again).
pub fn moved(node: NodeAddress, token: String) -> Moved {
    Moved {
        node,
        token,
        expires_ms: RESERVATION.as_millis() as u32,
    }
}

/// What became of a reconnect token.
enum Resumed {
    Seated(Joined, RoomFeed),
    /// The seat is on a node this session cannot reach.
    Elsewhere(Moved),
    Lost,
}

impl Session {
    /// A session that came in through node `home` of `cluster`.
    pub fn new(
        transport: &'static str,
        (cluster, home, reach): (Arc<Cluster>, usize, Reach),
        rates: Rates,
        snapshots: SnapshotRoute,
        peer: PeerHandle,
        gate: Gate,
    ) -> Session {
        Session {
            transport,
            snapshots,
            link: cluster.node(home).lobby.new_link_id(),
            cluster,
            home,
            reach,
            calls: Bucket::new(CALL_RATE),
            peer,
            rates,
            gate,
            player: None,
            identity: None,
            room: None,
            known_schemas: Vec::new(),
            unanswered: None,
        }
    }

    pub fn player(&self) -> Option<PlayerId> {
        self.player.as_ref().map(|(p, _)| *p)
    }

    pub fn room(&self) -> Option<RoomId> {
        self.room.as_ref().map(|m| m.room)
    }

    /// The schema of the room the player is in.
    pub fn schema(&self) -> Option<&Arc<Schema>> {
        self.room.as_ref().map(|m| &m.schema)
    }

    pub async fn request(&mut self, request: Request) -> Outcome {
        if let Request::Hello {
            protocol,
            name,
            token,
            schemas,
            ticket,
        } = request
        {
            return self.hello(protocol, name, token, schemas, ticket).await;
        }
        // The connection's own limit first: a flooding connection spends its own allowance,
        // not its neighbours' behind the same address.
        if !self.calls.take() {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many calls; slow down",
            ));
        }
        if !self.peer.call() {
            crate::metrics::address_refused(self.transport, "calls");
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many calls from this address; slow down",
            ));
        }
        let by_code = matches!(
            &request,
            Request::JoinByCode { .. } | Request::Spectate { code: Some(_), .. }
        );
        if !by_code {
            return self.call(request).await;
        }
        if !self.peer.guess() {
            crate::metrics::address_refused(self.transport, "codes");
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many wrong room codes from this address; try again later",
            ));
        }
        let outcome = self.call(request).await;
        if !matches!(&outcome, Err(e) if e.code == ErrorCode::BadCode) {
            self.peer.right_code();
        }
        outcome
    }

    /// A call other than `Hello`, once the rate limits have let it through.
    async fn call(&mut self, request: Request) -> Outcome {
        let Some((player, name)) = self.player.clone() else {
            return Err(ErrorBody::new(
                ErrorCode::NotWelcomed,
                "say hello before anything else",
            ));
        };
        match request {
            Request::Hello { .. } => {
                Err(ErrorBody::new(ErrorCode::BadRequest, "already said hello"))
            }
            Request::Ping { client_time_us } => Ok((Reply::Pong { client_time_us }, None)),
            Request::ListRooms { mode, open_only } => Ok((
                Reply::Rooms(self.cluster.list(mode.as_deref(), open_only)),
                None,
            )),
            Request::LeaveRoom => {
                self.leave_room()
                    .ok_or_else(|| ErrorBody::new(ErrorCode::NotInRoom, "not in a room"))?;
                Ok((Reply::Left, None))
            }
            Request::CreateRoom(create) => {
                let call = SeatCall::Create(create);
                // A create that went unanswered is asked again of the node it went to, which
                // makes the room once, wherever the load has moved meanwhile.
                let place = match &self.unanswered {
                    Some((node, asked, _)) if *asked == call => Place::Remote(node.clone()),
                    _ => self.cluster.place(self.home),
                };
                self.enter(place, (player, name), call).await
            }
            Request::JoinRoom { room } => {
                let place = self.cluster.room_node(room, self.home);
                self.enter(place, (player, name), SeatCall::Join(room))
                    .await
            }
            Request::SetReady { ready } => {
                self.to_room(RoomCommand::Ready { player, ready })?;
                Ok((Reply::Done, None))
            }
            Request::Chat { text } => {
                let text = normalise_chat(&text)?;
                self.to_room(RoomCommand::Chat { player, text })?;
                Ok((Reply::Done, None))
            }
            Request::Spectate { room, code } => {
                let place = match (room, &code) {
                    (Some(room), _) => self.cluster.room_node(room, self.home),
                    (None, Some(code)) => self.cluster.code_node(code, self.home).await,
                    (None, None) => Place::Local(self.home),
                };
                let call = SeatCall::Spectate { room, code };
                self.enter(place, (player, name), call).await
            }
            Request::JoinByCode { code } => {
                let place = self.cluster.code_node(&code, self.home).await;
                self.enter(place, (player, name), SeatCall::Code(code))
                    .await
            }
            Request::StartMatch => {
                let (reply, answer) = oneshot::channel();
                self.to_room(RoomCommand::Start { player, reply })?;
                answer
                    .await
                    .map_err(|_| ErrorBody::new(ErrorCode::NotFound, "the room has closed"))??;
                Ok((Reply::Done, None))
            }
            Request::QuickJoin { mode } => {
                let place = self.cluster.quick(&mode, self.home).await;
                self.enter(place, (player, name), SeatCall::Quick(mode))
                    .await
            }
            Request::Message { kind, slots } => {
                let taken = self.message(player, kind, slots).await;
                if let Err(e) = &taken {
                    crate::metrics::message_refused(self.transport, e.code);
                }
                taken.map(|()| (Reply::Done, None))
            }
        }
    }

    /// Checks a game message against the room's schema and hands it to the game.
    async fn message(&self, player: PlayerId, kind: u16, slots: Vec<u32>) -> Result<(), ErrorBody> {
        let schema = self
            .schema()
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotInRoom, "not in a room"))?;
        let declared = record::message_kind(&schema.messages().to_room, kind)
            .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e.to_string()))?;
        record::check(&declared.fields, &slots).map_err(|e| {
            ErrorBody::new(
                ErrorCode::BadRequest,
                format!("message {}: {e}", declared.name),
            )
        })?;
        let (reply, answer) = oneshot::channel();
        self.to_room(RoomCommand::Message {
            player,
            kind,
            slots,
            reply,
        })?;
        answer
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::NotFound, "the room has closed"))?
    }

    async fn hello(
        &mut self,
        protocol: u16,
        name: String,
        token: Option<String>,
        schemas: Vec<String>,
        ticket: Option<String>,
    ) -> Outcome {
        if self.player.is_some() {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "already said hello"));
        }
        validate_schema_hashes(&schemas)?;
        // Before the name, the ticket and the token: a hello of another version reaches here
        // with only its id and version read (`quic::read_frames`), its other fields empty.
        if protocol != PROTOCOL_VERSION {
            return Err(ErrorBody::new(
                ErrorCode::VersionMismatch,
                format!("server speaks protocol {PROTOCOL_VERSION}, client {protocol}"),
            ));
        }
        let identity = self.gate.check(ticket.as_deref())?.map(Arc::new);
        // A ticket that names the player overrides the name the client asked for.
        let name = match identity.as_ref().and_then(|i| i.name.as_deref()) {
            Some(named) => normalise_name(named)?,
            None => normalise_name(&name)?,
        };
        self.identity = identity;
        self.known_schemas = schemas;
        let mut lost = None;
        if let Some(token) = token {
            match self.resume(token).await? {
                Resumed::Seated(joined, feed) => {
                    let welcome = self.welcome(joined.player, Some(joined), None);
                    return Ok((Reply::Welcome(welcome), Some(feed)));
                }
                // Not welcomed here: the client says hello to the seat's node instead.
                Resumed::Elsewhere(moved) => return Ok((Reply::Moved(moved), None)),
                Resumed::Lost => {
                    lost = Some(ErrorBody::new(
                        ErrorCode::RoomLost,
                        "the seat of this token is gone: its room closed, its node stopped, \
                         or it was given up",
                    ))
                }
            }
        }
        // No token, or its seat is gone: a new player.
        let player = self.cluster.node(self.home).lobby.new_player_id();
        self.player = Some((player, name));
        Ok((Reply::Welcome(self.welcome(player, None, lost)), None))
    }

    /// The welcome this server says to `player`.
    fn welcome(
        &self,
        player: PlayerId,
        resumed: Option<Joined>,
        lost: Option<ErrorBody>,
    ) -> Welcome {
        Welcome {
            player,
            protocol: PROTOCOL_VERSION,
            tick_rate: self.rates.tick_rate,
            snapshot_rate: self.rates.snapshot_rate,
            resumed,
            lost,
        }
    }

    /// Takes back a seat held for a reconnect token, on this session's node or another.
    async fn resume(&mut self, token: String) -> Result<Resumed, ErrorBody> {
        let node = match self.cluster.token_node(&token) {
            None => return Ok(Resumed::Lost),
            Some(Place::Local(node)) if self.reaches(node) => node,
            Some(place) => {
                return Ok(match self.cluster.address(&place) {
                    Some(node) => Resumed::Elsewhere(moved(node, token)),
                    None => Resumed::Lost,
                });
            }
        };
        let lobby = self.cluster.node(node).lobby.clone();
        let (link, ends) = new_link(&self.snapshots);
        let (found_tx, found) = oneshot::channel();
        let (reply, answer) = oneshot::channel();
        lobby
            .send(LobbyCommand::Resume {
                token,
                link_id: self.link,
                link,
                subject: self.identity.as_ref().map(|i| i.subject.clone()),
                found: found_tx,
                reply,
            })
            .await?;
        let found = found.await.unwrap_or(Ok(None))?;
        let Some((player, name)) = found else {
            return Ok(Resumed::Lost);
        };
        self.player = Some((player, name));
        let (joined, feed) = self.admitted(lobby, answer, ends).await?;
        Ok(Resumed::Seated(joined, feed))
    }

    /// Whether this session can take its player into a room of `node` itself.
    fn reaches(&self, node: usize) -> bool {
        node == self.home || self.reach == Reach::Process
    }

    /// Waits for the room's answer and, when admitted, becomes a member.
    async fn admitted(
        &mut self,
        lobby: LobbyHandle,
        answer: oneshot::Receiver<Result<Admitted, ErrorBody>>,
        ends: SessionEnds,
    ) -> Result<(Joined, RoomFeed), ErrorBody> {
        let Admitted {
            mut joined,
            commands,
        } = answer
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::Internal, "room went away"))??;
        let schema = joined
            .schema
            .clone()
            .ok_or_else(|| ErrorBody::new(ErrorCode::Internal, "the room sent no schema"))?;
        if self.known_schemas.contains(&joined.schema_hash) {
            joined.schema = None;
        }
        self.room = Some(Membership {
            room: joined.room.id,
            lobby,
            schema,
            inputs: ends.inputs,
            commands,
        });
        Ok((joined, ends.feed))
    }

    /// Puts the player in a room of `place` (the lobby's answer to `call`): here, or, when
    /// this session cannot reach that node, in a seat reserved there for it to connect to.
    async fn enter(
        &mut self,
        place: Place,
        (player, name): (PlayerId, String),
        call: SeatCall,
    ) -> Outcome {
        if self.room.is_some() {
            return Err(ErrorBody::new(
                ErrorCode::AlreadyInRoom,
                "leave your room first",
            ));
        }
        let seeker = Seeker {
            player,
            name,
            identity: self.identity.clone(),
            origin: self.peer.key(),
            link_id: self.link,
        };
        let node = match place {
            Place::Local(node) if self.reaches(node) => node,
            Place::Local(node) => {
                let lobby = &self.cluster.node(node).lobby;
                let token = reserve_seat(lobby, seeker, call).await?;
                let address = self.cluster.node(node).address.clone();
                return Ok((Reply::Moved(moved(address, token)), None));
            }
            Place::Remote(node) => {
                let id = match self.unanswered.take() {
                    Some((n, c, id)) if n == node && c == call => id,
                    _ => self.cluster.new_call_id(),
                };
                let asked = (node.clone(), call.clone(), id);
                let answer = self.cluster.reserve_remote(&node, id, seeker, call).await;
                if matches!(&answer, Err(e) if e.code == ErrorCode::Timeout) {
                    self.unanswered = Some(asked);
                }
                return Ok((Reply::Moved(answer?), None));
            }
        };
        let lobby = self.cluster.node(node).lobby.clone();
        let (link, ends) = new_link(&self.snapshots);
        let (member, answer) = seeker.member(link);
        lobby.send(call.command(member)).await?;
        let (joined, feed) = self.admitted(lobby, answer, ends).await?;
        Ok((Reply::Joined(joined), Some(feed)))
    }

    fn to_room(&self, command: RoomCommand) -> Result<(), ErrorBody> {
        let membership = self
            .room
            .as_ref()
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotInRoom, "not in a room"))?;
        let room = membership
            .commands
            .upgrade()
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "the room has closed"))?;
        room.try_send(command)
            .map_err(|_| ErrorBody::new(ErrorCode::Internal, "the room is busy; try again"))
    }

    /// Leaves the current room, if any; returns which.
    pub fn leave_room(&mut self) -> Option<RoomId> {
        let membership = self.room.take()?;
        if let Some(player) = self.player() {
            membership
                .lobby
                .try_leave(membership.room, player, self.link);
        }
        Some(membership.room)
    }

    /// The room closed underneath the player (its feed ended).
    pub fn room_closed(&mut self) {
        self.room = None;
    }

    /// Validates a batch against the room's declared input and queues it for the room; a
    /// refused batch is counted. Outside a room only an empty batch (an ack) is meaningful,
    /// and there is nothing to queue it for. A full queue drops the batch: the next batch
    /// repeats its inputs anyway.
    pub fn input(&self, batch: InputBatch) -> Result<(), InputError> {
        let Some(m) = &self.room else {
            return Ok(());
        };
        if let Err(e) = batch.validate(m.schema.input()) {
            crate::metrics::input_refused(self.transport, e.reason());
            return Err(e);
        }
        let _ = m.inputs.try_send(batch);
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Whatever ended the connection, the seat waits for the player for the reconnect grace
        // (the lobby gives it up after that, or at once for a spectator).
        if let (Some(membership), Some(player)) = (self.room.take(), self.player()) {
            membership
                .lobby
                .try_dropped(membership.room, player, self.link);
        }
    }
}
