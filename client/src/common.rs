//! What both client transports share: errors, counters, the snapshot receiver, the input
//! sequence, and the [`GameClient`] trait with the lobby calls built on `call`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tickwire_protocol::input::INPUT_REDUNDANCY;
use tickwire_protocol::packet;
use tickwire_protocol::world::{Applied, ClientWorld};
use tickwire_protocol::{
    CreateRoom, ErrorBody, Input, InputBatch, Joined, Messages, PlayerId, Record, RecordError,
    Reply, Request, RoomEvent, RoomId, RoomInfo, Schema, Snapshot, Tick, Welcome,
};
use tokio::sync::{mpsc, watch};

/// How long a lobby call may take before it fails with [`ClientError::Timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up the connection: {0}")]
    Setup(String),
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("server refused: {0}")]
    Server(ErrorBody),
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
    #[error("the server sent an unexpected reply: {0}")]
    Unexpected(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the connection is closed")]
    Closed,
    #[error("cannot encode: {0}")]
    Codec(#[from] tickwire_protocol::codec::CodecError),
    #[error("cannot send a datagram: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
    /// The room replicates another schema than this client decodes; it has left the room.
    #[error("this client is built for another game than the room's: {0}")]
    SchemaMismatch(String),
    /// An input or a message outside what the game declares; nothing was sent.
    #[error("not what the game declares: {0}")]
    Undeclared(#[from] RecordError),
    /// A message on a client that decodes no schema (`Decoding::TicksOnly`).
    #[error("this client has no schema to name messages by")]
    NoSchema,
}

/// Counters kept by a connection's tasks.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub snapshots: AtomicU64,
    /// Snapshot packet bytes, headers included.
    pub snapshot_bytes: AtomicU64,
    /// Snapshots that were deltas against an earlier snapshot (the rest were full).
    pub delta_snapshots: AtomicU64,
    pub stale_snapshots: AtomicU64,
    pub decode_errors: AtomicU64,
    pub inputs_sent: AtomicU64,
    pub events_dropped: AtomicU64,
}

/// The newest snapshot decoded, with the input ack that came with it.
#[derive(Debug)]
pub struct Received {
    /// Shared with the client-side world that decoded it.
    pub snapshot: Arc<Snapshot>,
    /// The newest input seq the server had applied when it made this snapshot.
    pub input_ack: u32,
    pub at: Instant,
}

/// How much of each snapshot a client decodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// The whole world, in the schema of the game the client is built for (what a player
    /// needs): a join whose room declares another schema is refused with
    /// [`ClientError::SchemaMismatch`].
    Full(Arc<Schema>),
    /// Only the header, to acknowledge the tick: snapshots arrive with no entities. For load
    /// generators (see [`ClientWorld::ticks_only`]).
    TicksOnly,
}

impl Decoding {
    /// The schema decoded (none for `TicksOnly`).
    pub fn schema(&self) -> Option<&Arc<Schema>> {
        match self {
            Decoding::Full(schema) => Some(schema),
            Decoding::TicksOnly => None,
        }
    }

    /// What the hello names as held: the schema's hash, so joins into its rooms carry only
    /// the hash.
    pub fn known_schemas(&self) -> Vec<String> {
        self.schema().map(|s| s.hash()).into_iter().collect()
    }
}

/// Turns snapshot packets into the client-side world and publishes the newest.
pub(crate) struct SnapshotSink {
    world: ClientWorld,
    latest: watch::Sender<Option<Arc<Received>>>,
    stats: Arc<ClientStats>,
}

impl SnapshotSink {
    pub(crate) fn new(
        latest: watch::Sender<Option<Arc<Received>>>,
        stats: Arc<ClientStats>,
        decoding: Decoding,
    ) -> Self {
        SnapshotSink {
            world: match decoding {
                Decoding::Full(schema) => ClientWorld::new(schema),
                Decoding::TicksOnly => ClientWorld::ticks_only(),
            },
            latest,
            stats,
        }
    }

    /// Takes one snapshot packet (`0x02`, input ack, delta body).
    pub(crate) fn receive(&mut self, packet: &[u8]) {
        let (input_ack, body) = match packet::decode_snapshot(packet) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::debug!("bad snapshot packet: {e}");
                self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        match self.world.apply(body) {
            Ok(Applied::Newer { delta, .. }) => {
                self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
                if delta {
                    self.stats.delta_snapshots.fetch_add(1, Ordering::Relaxed);
                }
                self.stats
                    .snapshot_bytes
                    .fetch_add(packet.len() as u64, Ordering::Relaxed);
                if let Some(current) = self.world.current_shared() {
                    self.latest.send_replace(Some(Arc::new(Received {
                        snapshot: current,
                        input_ack,
                        at: Instant::now(),
                    })));
                }
            }
            Ok(Applied::Stale(_)) => {
                self.stats.stale_snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!("cannot decode snapshot: {e}");
                self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Numbers inputs and keeps the last few, so each batch repeats them (for datagram loss).
#[derive(Debug, Default)]
pub struct InputLog {
    next_seq: u32,
    recent: VecDeque<Input>,
}

impl InputLog {
    /// Numbers one input and returns its seq with the batch to send (it and the few before).
    pub fn next_batch(&mut self, slots: Vec<u32>, ack_tick: Option<Tick>) -> (u32, InputBatch) {
        self.next_seq += 1;
        let seq = self.next_seq;
        if self.recent.len() == INPUT_REDUNDANCY {
            self.recent.pop_front();
        }
        self.recent.push_back(Input { seq, slots });
        let batch = InputBatch {
            ack_tick,
            inputs: self.recent.iter().cloned().collect(),
        };
        (seq, batch)
    }

    /// Drops the remembered inputs (after leaving a room, so they are not repeated into the
    /// next one).
    pub fn forget(&mut self) {
        self.recent.clear();
    }
}

/// What a connected player holds whatever the transport: the welcome, the counters, the
/// snapshot and event feeds from the connection's tasks, and the input log.
pub struct ClientState {
    welcome: Welcome,
    /// The player's id now: the welcome's, until a join moves the client to another node.
    player: Arc<AtomicU32>,
    stats: Arc<ClientStats>,
    snapshots: watch::Receiver<Option<Arc<Received>>>,
    events: mpsc::Receiver<RoomEvent>,
    inputs: InputLog,
    decoding: Decoding,
}

impl ClientState {
    pub(crate) fn new(
        welcome: Welcome,
        stats: Arc<ClientStats>,
        snapshots: watch::Receiver<Option<Arc<Received>>>,
        events: mpsc::Receiver<RoomEvent>,
        decoding: Decoding,
    ) -> Result<ClientState, ClientError> {
        // A reconnect token put the player back in a room: that room's schema must be the one
        // this client decodes, as for any join.
        if let Some(resumed) = &welcome.resumed {
            check_schema(resumed, &decoding)?;
        }
        Ok(ClientState {
            player: Arc::new(AtomicU32::new(welcome.player.0)),
            welcome,
            stats,
            snapshots,
            events,
            inputs: InputLog::default(),
            decoding,
        })
    }

    /// The schema this client decodes (none for `Decoding::TicksOnly`).
    pub fn schema(&self) -> Option<&Arc<Schema>> {
        self.decoding.schema()
    }

    /// Shares the player id with the task that updates it when the client moves.
    pub(crate) fn with_player(mut self, player: Arc<AtomicU32>) -> ClientState {
        player.store(self.welcome.player.0, Ordering::Relaxed);
        self.player = player;
        self
    }

    /// The client moved to another node, where the player has this id.
    pub(crate) fn set_player(&self, player: PlayerId) {
        self.player.store(player.0, Ordering::Relaxed);
    }

    /// The player's id on the node it is connected to.
    pub fn player(&self) -> PlayerId {
        PlayerId(self.player.load(Ordering::Relaxed))
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub(crate) fn stats_shared(&self) -> Arc<ClientStats> {
        self.stats.clone()
    }

    /// Another receiver of the newest decoded snapshot, for a task that forwards snapshots
    /// while the client itself is busy elsewhere (the Bevy bridge).
    pub fn snapshot_feed(&self) -> watch::Receiver<Option<Arc<Received>>> {
        self.snapshots.clone()
    }
}

fn unexpected(reply: Reply) -> ClientError {
    ClientError::Unexpected(format!("{reply:?}"))
}

/// A join reply, refused when the room's schema is not the one this client decodes: it would
/// decode the room's snapshots into nonsense.
fn joined(reply: Reply, decoding: &Decoding) -> Result<Joined, ClientError> {
    let j = match reply {
        Reply::Joined(j) => j,
        other => return Err(unexpected(other)),
    };
    check_schema(&j, decoding)?;
    Ok(j)
}

/// Whether the joined room's schema is the one this client decodes.
fn check_schema(j: &Joined, decoding: &Decoding) -> Result<(), ClientError> {
    let differs = match (decoding, &j.schema) {
        // Decodes no entities: any schema will do.
        (Decoding::TicksOnly, _) => None,
        (Decoding::Full(schema), Some(room)) => schema.first_difference(room),
        // The hello named this client's schema; a room of it sends only the hash.
        (Decoding::Full(schema), None) if schema.hash() == j.schema_hash => None,
        (Decoding::Full(_), None) => {
            return Err(ClientError::Protocol(
                "a join reply without the room's schema, whose hash this client did not name"
                    .into(),
            ));
        }
    };
    match differs {
        Some(diff) => Err(ClientError::SchemaMismatch(diff)),
        None => Ok(()),
    }
}

/// A connected player, over either transport. Bots and tests are written against this.
/// A transport supplies `call`, `transmit`, `close` and its [`ClientState`]; the rest is shared.
pub trait GameClient: Send + Sync {
    /// Sends any request and waits for its reply.
    fn call(&self, request: Request) -> impl Future<Output = Result<Reply, ClientError>> + Send;
    /// Puts one input batch on the wire (a datagram, an event).
    fn transmit(&mut self, batch: &InputBatch) -> Result<(), ClientError>;
    fn state(&self) -> &ClientState;
    fn state_mut(&mut self) -> &mut ClientState;
    fn close(self) -> impl Future<Output = ()> + Send;

    fn player(&self) -> PlayerId {
        self.state().player()
    }

    fn stats(&self) -> &Arc<ClientStats> {
        &self.state().stats
    }

    /// The newest snapshot decoded so far.
    fn latest(&self) -> Option<Arc<Received>> {
        self.state().snapshots.borrow().clone()
    }

    /// Waits for a snapshot newer than the last one seen through this method.
    fn next_snapshot(&mut self) -> impl Future<Output = Result<Arc<Received>, ClientError>> + Send {
        let rx = &mut self.state_mut().snapshots;
        async move {
            loop {
                rx.changed().await.map_err(|_| ClientError::Closed)?;
                // Copied out first, so the channel's read lock is not held past this line.
                let newest = rx.borrow_and_update().clone();
                if let Some(r) = newest {
                    return Ok(r);
                }
            }
        }
    }

    /// Waits for the next room event.
    fn next_event(&mut self) -> impl Future<Output = Result<RoomEvent, ClientError>> + Send {
        let rx = &mut self.state_mut().events;
        async move { rx.recv().await.ok_or(ClientError::Closed) }
    }

    /// Takes a room event if one is waiting.
    fn try_event(&mut self) -> Option<RoomEvent> {
        self.state_mut().events.try_recv().ok()
    }

    /// Sends one input of the game's declared input type (with the previous few, for loss)
    /// acknowledging the newest decoded tick; returns its seq. A value outside the declaration
    /// is refused here and nothing is sent.
    fn send_input<R: Record>(&mut self, input: &R) -> Result<u32, ClientError> {
        self.send_slots(input.to_slots()?)
    }

    /// Sends one input already in slots (a game-agnostic driver such as a load generator);
    /// the server refuses slots outside the room's declared input.
    fn send_slots(&mut self, slots: Vec<u32>) -> Result<u32, ClientError> {
        let ack = self.latest().map(|r| r.snapshot.tick);
        let (seq, batch) = self.state_mut().inputs.next_batch(slots, ack);
        self.transmit(&batch)?;
        self.stats().inputs_sent.fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// Sends a game message to the room and waits until the game took it (or refused it:
    /// `ClientError::Server` with code `refused` and the game's reason).
    fn send_message<M: Messages + Sync>(
        &self,
        message: &M,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        let request = message
            .to_message()
            .map(|(kind, slots)| Request::Message { kind, slots });
        async move {
            self.call(request?).await?;
            Ok(())
        }
    }

    fn list_rooms(
        &self,
        mode: Option<&str>,
    ) -> impl Future<Output = Result<Vec<RoomInfo>, ClientError>> + Send {
        let request = Request::ListRooms {
            mode: mode.map(str::to_owned),
            open_only: false,
        };
        async move {
            match self.call(request).await? {
                Reply::Rooms(rooms) => Ok(rooms),
                other => Err(unexpected(other)),
            }
        }
    }

    /// A call that seats or places the player, checked by [`joined`]: on a schema mismatch the
    /// player leaves the room again before the error is returned.
    fn enter(&self, request: Request) -> impl Future<Output = Result<Joined, ClientError>> + Send {
        async move {
            let outcome = joined(self.call(request).await?, &self.state().decoding);
            if let Err(ClientError::SchemaMismatch(_)) = &outcome {
                let _ = self.call(Request::LeaveRoom).await;
            }
            outcome
        }
    }

    /// Creates a room and joins it.
    fn create_room(
        &self,
        create: CreateRoom,
    ) -> impl Future<Output = Result<Joined, ClientError>> + Send {
        self.enter(Request::CreateRoom(create))
    }

    fn join_room(&self, room: RoomId) -> impl Future<Output = Result<Joined, ClientError>> + Send {
        self.enter(Request::JoinRoom { room })
    }

    /// Watches a public room: snapshots and events, no entity, no seat.
    fn spectate(&self, room: RoomId) -> impl Future<Output = Result<Joined, ClientError>> + Send {
        self.enter(Request::Spectate {
            room: Some(room),
            code: None,
        })
    }

    /// Joins a private room by its code.
    fn join_by_code(&self, code: &str) -> impl Future<Output = Result<Joined, ClientError>> + Send {
        self.enter(Request::JoinByCode {
            code: code.to_owned(),
        })
    }

    /// As the room's owner, starts the countdown without waiting for everyone to be ready.
    fn start_match(&self) -> impl Future<Output = Result<(), ClientError>> + Send {
        async move {
            self.call(Request::StartMatch).await?;
            Ok(())
        }
    }

    fn quick_join(&self, mode: &str) -> impl Future<Output = Result<Joined, ClientError>> + Send {
        self.enter(Request::QuickJoin {
            mode: mode.to_owned(),
        })
    }

    fn leave_room(&mut self) -> impl Future<Output = Result<(), ClientError>> + Send {
        async move {
            match self.call(Request::LeaveRoom).await? {
                Reply::Left => {
                    // Old inputs must not be repeated into the next room.
                    self.state_mut().inputs.forget();
                    Ok(())
                }
                other => Err(unexpected(other)),
            }
        }
    }

    fn set_ready(&self, ready: bool) -> impl Future<Output = Result<(), ClientError>> + Send {
        async move {
            self.call(Request::SetReady { ready }).await?;
            Ok(())
        }
    }

    fn chat(&self, text: &str) -> impl Future<Output = Result<(), ClientError>> + Send {
        let text = text.to_owned();
        async move {
            self.call(Request::Chat { text }).await?;
            Ok(())
        }
    }

    /// Round trip of a ping through the server's request path.
    fn ping(&self) -> impl Future<Output = Result<Duration, ClientError>> + Send {
        async move {
            let started = Instant::now();
            self.call(Request::Ping { client_time_us: 0 }).await?;
            Ok(started.elapsed())
        }
    }
}
