//! Socket.IO transport (socketioxide on the HTTP port, namespace `/`, path `/socket.io`,
//! polling and websocket as the official client expects).
//!
//! socketioxide runs each event handler as its own task; a tickwire player needs one ordered
//! owner for its [`Session`]. So each socket gets an actor task that owns the session; event
//! handlers only parse the payload and hand a command to the actor through a bounded queue.
//! Malformed payloads are answered (`bad_request` in the ack) right in the handler.
//!
//! Snapshots: binary by default (the same packet as a QUIC snapshot datagram, as one binary
//! attachment), acknowledged by the client through `input.ackTick`. With `auth.encoding = "json"`
//! the actor decodes the deltas itself (it is the receiver the server deltas against, acking
//! every snapshot it decoded) and emits the player's full view as JSON.
//!
//! Floods: each socket has a token bucket for calls (burst 20, 10/s; beyond: `rate_limited`)
//! and one for inputs (burst 60, 120/s; beyond: dropped); a socket refused more than 200 times
//! is disconnected. A websocket message over [`MAX_INCOMING_MESSAGE`] or a polling body over
//! [`MAX_PAYLOAD`] closes the connection (engine.io's limits).
//!
//! Slow consumers: when a socket's send buffer is full the snapshot is dropped (and counted); the
//! next one is a delta against the player's ack and still valid. A socket that stays full for
//! [`STALL_LIMIT`] is disconnected. Nothing here ever waits on a socket.

use crate::auth::Gate;
use crate::cluster::Cluster;
use crate::metrics::{ConnectedPlayer, DISCONNECTED_SLOW, SOCKETIO, SendCounters};
use crate::peers::{PeerHandle, Peers, Refusal};
use crate::rate::{Bucket, Rate};
use crate::room::SnapshotPacket;
use crate::session::{
    CALL_RATE, FromRoom, Rates, Reach, Refusals, RoomFeed, Session, SnapshotRoute,
};
use axum::extract::ConnectInfo;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::DisconnectReason;
use socketioxide::{ParserConfig, SendError, SocketError, SocketIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tickwire_protocol::json;
use tickwire_protocol::world::{Applied, ClientWorld};
use tickwire_protocol::{
    ErrorBody, ErrorCode, InputBatch, PROTOCOL_VERSION, Reply, Request, RoomEvent, RoomId, packet,
    validate_name, validate_schema_hashes,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Largest websocket message (and frame) a client may send; more closes the connection.
pub const MAX_INCOMING_MESSAGE: usize = 64 * 1024;
/// Largest HTTP long-polling body, either way (engine.io packs several packets in one body,
/// and a full JSON view of a big room goes out this way too).
pub const MAX_PAYLOAD: u64 = 1024 * 1024;
/// Binary attachments one packet may carry (an input carries one), their bytes in all, and
/// how late the rest of them may come (checked as each arrives); past any of these the
/// connection is closed. What a socket can make the server hold is so bounded by a few KiB,
/// not the 10 MB socketioxide would allow.
pub const MAX_ATTACHMENTS: usize = 4;
pub const MAX_ATTACHMENT_BYTES: usize = 8 * tickwire_protocol::codec::MAX_INPUT_BYTES;
pub const ATTACHMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// An Engine.IO session must connect to the namespace within this time (as a QUIC client must
/// say hello), or it is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Packets buffered per socket before `emit` reports it full.
pub const SEND_BUFFER: usize = 256;
/// Calls and inputs a socket may have queued for its actor; beyond that a call is refused with
/// `rate_limited` and an input dropped.
pub const COMMAND_QUEUE: usize = 32;
/// How long a socket the server disconnected is kept to deliver its disconnect packet.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);
/// A socket whose buffer stays full this long is disconnected.
pub const STALL_LIMIT: Duration = Duration::from_secs(5);
/// Inputs: a burst of 60, then 120 per second (twice the default tick rate).
const INPUT_RATE: Rate = Rate {
    burst: 60.0,
    per_sec: 120.0,
};

/// One socket's flood accounting, shared by its event handlers (which socketioxide runs as
/// separate tasks). The lock is per socket and held for a few instructions.
struct FloodGuard {
    calls: Bucket,
    inputs: Bucket,
    refused: Refusals,
    /// Set once the socket is cut off: the events still arriving before the close takes hold
    /// are ignored, and the socket is counted once.
    cut: bool,
}

enum Verdict {
    Allow,
    Refuse,
    /// Over the limit: cut the socket off (returned once per socket).
    CutOff,
    /// Already cut off: ignore the event.
    Ignore,
}

/// What a socket's event is, for its flood accounting.
#[derive(Clone, Copy)]
enum Spend {
    Call,
    Input,
    /// An event no handler knows: never useful, always counted as refused.
    Unknown,
}

impl FloodGuard {
    fn new() -> FloodGuard {
        FloodGuard {
            calls: Bucket::new(CALL_RATE),
            inputs: Bucket::new(INPUT_RATE),
            refused: Refusals::default(),
            cut: false,
        }
    }

    fn check(guard: &std::sync::Mutex<FloodGuard>, spend: Spend) -> Verdict {
        let Ok(mut g) = guard.lock() else {
            return Verdict::Ignore;
        };
        if g.cut {
            return Verdict::Ignore;
        }
        let ok = match spend {
            Spend::Call => g.calls.take(),
            Spend::Input => g.inputs.take(),
            Spend::Unknown => false,
        };
        if ok {
            return Verdict::Allow;
        }
        if g.refused.refuse() {
            g.cut = true;
            Verdict::CutOff
        } else {
            Verdict::Refuse
        }
    }
}

fn cut_off(s: &SocketRef) {
    tracing::info!(sid = %s.id, "cutting off a flooding socket");
    crate::metrics::flood_disconnect(SOCKETIO);
    close(s.clone());
}

/// Disconnects a socket from the server's side with a disconnect packet, so the client sees
/// `io server disconnect` (and does not reconnect). The packet waits its turn in the socket's
/// send buffer; while that is full the disconnect is retried for up to [`STALL_LIMIT`], after
/// which Engine.IO's heartbeat ends a client that reads nothing.
fn close(s: SocketRef) {
    // True when the disconnect could not be queued yet and is worth trying again.
    let full = |s: &SocketRef| {
        matches!(
            s.clone().disconnect(),
            Err(SocketError::InternalChannelFull)
        )
    };
    if !full(&s) {
        return;
    }
    tokio::spawn(async move {
        let deadline = Instant::now() + STALL_LIMIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !full(&s) {
                return;
            }
        }
    });
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub name: String,
    pub token: Option<String>,
    /// "json" for JSON snapshots; "binary" (the default) for the packed format.
    pub encoding: Option<String>,
    /// The protocol version the client speaks; the server's when absent.
    pub protocol: Option<u16>,
    /// Hashes of the schemas the client holds (see `Request::Hello`).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// A ticket naming the player, for a server that asks for one (see `auth`).
    pub ticket: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("bad_request: {0}")]
    Bad(String),
    #[error("version_mismatch: server speaks protocol {PROTOCOL_VERSION}, client {0}")]
    Version(u16),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("rate_limited: {0}")]
    Address(#[from] Refusal),
}

/// Builds the Socket.IO layer for the HTTP router, and returns it with the handle
/// [`farewell`] needs at shutdown.
pub fn layer(
    cluster: Arc<Cluster>,
    peers: Arc<Peers>,
    rates: Rates,
    gate: Gate,
) -> (SocketIoLayer, SocketIo) {
    // Attachments are buffered until their packet is whole: keep that to what an input needs.
    let parser = ParserConfig::common()
        .max_incoming_binaries(MAX_ATTACHMENTS)
        .max_incoming_binary_buf_size(MAX_ATTACHMENT_BYTES)
        .packet_completion_timeout(ATTACHMENT_TIMEOUT);
    let (layer, io) = SocketIo::builder()
        .with_parser(parser)
        .connect_timeout(CONNECT_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .ws_max_message_size(MAX_INCOMING_MESSAGE)
        .ws_max_frame_size(MAX_INCOMING_MESSAGE)
        .max_buffer_size(SEND_BUFFER)
        .build_layer();
    let connect_gate = gate.clone();
    let on_connect = move |s: SocketRef, Data(auth): Data<Auth>| {
        let (cluster, gate) = (cluster.clone(), connect_gate.clone());
        async move { connected(s, auth, cluster, rates, gate).await }
    };
    let admit = move |s: SocketRef, auth: TryData<Auth>| {
        let (peers, gate) = (peers.clone(), gate.clone());
        async move { admit(s, auth, &peers, &gate) }
    };
    io.ns("/", on_connect.with(admit));
    (layer, io)
}

/// How long HTTP keeps serving after the farewell, so a long-polling client, which fetches
/// each packet with a request of its own, also gets the disconnect after the event.
const FAREWELL_GRACE: Duration = Duration::from_millis(250);

/// Tells every Socket.IO player that the server is going: a `server_shutdown` event, then the
/// server's own disconnect (the official client does not reconnect after it), and a moment
/// for the packets to leave. Call while HTTP still serves.
pub async fn farewell(io: &SocketIo) {
    if io.sockets().is_empty() {
        return;
    }
    let bye = serde_json::json!({ "reason": super::SHUTDOWN_REASON });
    if let Err(e) = io.emit("server_shutdown", &bye).await {
        tracing::debug!("server_shutdown not sent to every socket: {e}");
    }
    if let Err(e) = io.disconnect().await {
        tracing::debug!("not every socket could be disconnected: {e}");
    }
    tokio::time::sleep(FAREWELL_GRACE).await;
}

/// Refuses the connection (a `connect_error` the client sees) when `auth` is unusable, its
/// ticket is not good enough for `gate`, or its address is over its allowance; otherwise
/// leaves the connection's [`PeerHandle`] on the socket for [`connected`]. (The session checks
/// the ticket again at its hello, as it does for QUIC; a signature check costs microseconds.)
fn admit(
    s: SocketRef,
    TryData(auth): TryData<Auth>,
    peers: &Arc<Peers>,
    gate: &Gate,
) -> Result<(), AuthError> {
    let auth = check_auth(auth)?;
    let Some(ConnectInfo(addr)) = s.req_parts().extensions.get::<ConnectInfo<SocketAddr>>() else {
        return Err(AuthError::Bad("no peer address".into()));
    };
    let peer = peers.admit(addr.ip()).inspect_err(|refusal| {
        tracing::debug!(peer = %addr, "refused: {refusal}");
        crate::metrics::address_refused(SOCKETIO, refusal.as_str());
    })?;
    // After the address's allowance, so that tickets cannot be tried faster than it lets.
    gate.check(auth.ticket.as_deref())
        .map_err(|e| AuthError::Unauthorized(e.message))?;
    s.extensions.insert(peer);
    Ok(())
}

fn check_auth(auth: Result<Auth, impl std::fmt::Display>) -> Result<Auth, AuthError> {
    let auth = auth.map_err(|e| {
        AuthError::Bad(format!(
            "auth must be {{name, token?, encoding?, protocol?, schemas?, ticket?}}: {e}"
        ))
    })?;
    if let Some(p) = auth.protocol
        && p != PROTOCOL_VERSION
    {
        return Err(AuthError::Version(p));
    }
    validate_name(&auth.name).map_err(|e| AuthError::Bad(e.message))?;
    validate_schema_hashes(&auth.schemas).map_err(|e| AuthError::Bad(e.message))?;
    match auth.encoding.as_deref() {
        None | Some("binary") | Some("json") => Ok(auth),
        Some(other) => Err(AuthError::Bad(format!("unknown encoding {other:?}"))),
    }
}

enum Command {
    Call { call: Call, ack: AckSender },
    Input { data: InputData, ack: AckSender },
}

/// A call event as the handler passes it on.
enum Call {
    Request(Request),
    /// A `room:message`: read by the room's schema, which only the actor's session knows.
    Message(Value),
}

/// An input event's payload: a binary one is read as it arrives, a JSON one by the actor
/// (its field names are the room's schema's).
enum InputData {
    Batch(InputBatch),
    Json(Value),
}

/// A number that goes up by one per socket.
fn next_home() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

async fn connected(s: SocketRef, auth: Auth, cluster: Arc<Cluster>, rates: Rates, gate: Gate) {
    let Some(peer) = s.extensions.remove::<PeerHandle>() else {
        tracing::error!("a socket connected without passing admission");
        close(s);
        return;
    };
    // Every node of the process is reachable from the shared HTTP port; the socket's home,
    // where new rooms go among equally loaded nodes, takes turns.
    let home = next_home() % cluster.nodes().len();
    let home = (cluster, home, Reach::Process);
    let mut session = Session::new(SOCKETIO, home, rates, SnapshotRoute::Forwarded, peer, gate);
    let hello = Request::Hello {
        protocol: auth.protocol.unwrap_or(PROTOCOL_VERSION),
        name: auth.name,
        token: auth.token,
        schemas: auth.schemas,
        ticket: auth.ticket,
    };
    let (welcome, resumed_feed) = match session.request(hello).await {
        Ok((Reply::Welcome(w), feed)) => (w, feed),
        // The token's seat is on another machine: the client connects there instead.
        Ok((moved @ Reply::Moved(_), _)) => {
            let _ = s.emit("moved", &json::reply(&moved)["moved"]);
            close(s);
            return;
        }
        other => {
            let error = match other {
                Err(e) => e,
                Ok(_) => ErrorBody::new(ErrorCode::Internal, "unexpected hello reply"),
            };
            let _ = s.emit("error", &json::error(&error));
            close(s);
            return;
        }
    };

    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let guard = std::sync::Arc::new(std::sync::Mutex::new(FloodGuard::new()));
    for &event in json::CALL_EVENTS {
        let (commands, guard) = (commands.clone(), guard.clone());
        s.on(
            event,
            move |s: SocketRef, TryData(data): TryData<Value>, ack: AckSender| {
                let (commands, guard) = (commands.clone(), guard.clone());
                async move {
                    match FloodGuard::check(&guard, Spend::Call) {
                        Verdict::Allow => {}
                        Verdict::Refuse => {
                            let e =
                                ErrorBody::new(ErrorCode::RateLimited, "too many calls; slow down");
                            let _ = ack.send(&json::error(&e));
                            return;
                        }
                        Verdict::CutOff => return cut_off(&s),
                        Verdict::Ignore => return,
                    }
                    let data = data.unwrap_or(Value::Null);
                    let call = if event == json::MESSAGE_EVENT {
                        Call::Message(data)
                    } else {
                        match json::request(event, data) {
                            Ok(r) => Call::Request(r),
                            Err(e) => {
                                let _ = ack.send(&json::error(&e));
                                return;
                            }
                        }
                    };
                    if let Err(mpsc::error::TrySendError::Full(Command::Call { ack, .. })) =
                        commands.try_send(Command::Call { call, ack })
                    {
                        let e = ErrorBody::new(ErrorCode::RateLimited, "too many calls in flight");
                        let _ = ack.send(&json::error(&e));
                    }
                }
            },
        );
    }
    let inputs = commands.clone();
    let fallback_guard = guard.clone();
    s.on(
        "input",
        move |s: SocketRef, TryData(data): TryData<InputPayload>, ack: AckSender| {
            let (inputs, guard) = (inputs.clone(), guard.clone());
            async move {
                match FloodGuard::check(&guard, Spend::Input) {
                    Verdict::Allow => {}
                    // Over the input rate: dropped, as a lost datagram would be.
                    Verdict::Refuse | Verdict::Ignore => return,
                    Verdict::CutOff => return cut_off(&s),
                }
                match parse_input(data) {
                    // A full queue drops the input: the next one supersedes it anyway.
                    Ok(data) => {
                        let _ = inputs.try_send(Command::Input { data, ack });
                    }
                    Err(e) => {
                        crate::metrics::input_refused(SOCKETIO, "malformed");
                        tracing::debug!("bad input event: {e}");
                        let _ = ack.send(&json::error(&e));
                    }
                }
            }
        },
    );
    // An event no handler knows is answered (when it asks for an ack) and counted against the
    // socket's flood limit: a client sending them is broken or probing, never playing.
    s.on_fallback(move |s: SocketRef, ack: AckSender| {
        let guard = fallback_guard.clone();
        async move {
            match FloodGuard::check(&guard, Spend::Unknown) {
                Verdict::CutOff => cut_off(&s),
                Verdict::Ignore => {}
                Verdict::Allow | Verdict::Refuse => {
                    crate::metrics::unknown_event(SOCKETIO);
                    let e = ErrorBody::new(ErrorCode::BadRequest, "unknown event");
                    let _ = ack.send(&json::error(&e));
                }
            }
        }
    });
    drop(commands);
    // The handlers above live as long as the socket, and the actor holds the socket: a
    // disconnect callback is what tells the actor to let go.
    let (gone_tx, gone) = watch::channel(false);
    let gone_tx = std::sync::Arc::new(gone_tx);
    s.on_disconnect(move |reason: DisconnectReason| {
        let gone_tx = gone_tx.clone();
        async move {
            gone_tx.send_replace(true);
            // socketioxide forgets the socket when this returns, and an event the client sent
            // after that closes the transport at once, dropping the disconnect packet still in
            // the send buffer. A client we disconnected gets a moment to read it first. The
            // events it sends meanwhile reach no session, so they go unanswered (a malformed
            // one still gets `bad_request`; after a flood cut-off nothing is answered).
            if reason == DisconnectReason::ServerNSDisconnect {
                tokio::time::sleep(DISCONNECT_GRACE).await;
            }
        }
    });
    // Only now that every handler is in place: socketioxide drops events that arrive before
    // their handler exists, so clients wait for `welcome` before they call.
    let _ = s.emit("welcome", &json::welcome(&welcome));
    if let Some(room) = session.room() {
        s.join(room_key(room));
    }
    let json_mode = auth.encoding.as_deref() == Some("json");
    let world = world_for(&session);
    tokio::spawn(
        Actor {
            socket: s,
            session,
            json_mode,
            world,
            counters: SendCounters::new(SOCKETIO),
            stalled_since: None,
        }
        .run(rx, gone, resumed_feed),
    );
}

/// A world to decode the session's room's snapshots in (for a JSON client).
fn world_for(session: &Session) -> ClientWorld {
    match session.schema() {
        Some(schema) => ClientWorld::new(schema.clone()),
        None => ClientWorld::ticks_only(),
    }
}

/// An `input` payload: the binary input packet of docs/PROTOCOL.md as an attachment, or a JSON
/// object. (Untagged: socketioxide hands an attachment over as bytes, which `Bytes` accepts and
/// a JSON value does not.)
#[derive(Deserialize)]
#[serde(untagged)]
enum InputPayload {
    Binary(Bytes),
    Json(Value),
}

fn parse_input(data: Result<InputPayload, impl std::fmt::Display>) -> Result<InputData, ErrorBody> {
    let bad = |m: String| ErrorBody::new(ErrorCode::BadRequest, m);
    match data.map_err(|e| bad(format!("input: {e}")))? {
        InputPayload::Binary(bytes) => packet::decode_input(&bytes)
            .map(InputData::Batch)
            .map_err(|e| bad(format!("input: {e}"))),
        InputPayload::Json(value) => Ok(InputData::Json(value)),
    }
}

struct Actor {
    socket: SocketRef,
    session: Session,
    json_mode: bool,
    /// JSON mode only: the snapshots this actor decoded, as the baselines it acknowledges.
    world: ClientWorld,
    counters: SendCounters,
    stalled_since: Option<Instant>,
}

fn room_key(room: RoomId) -> String {
    format!("room:{}", room.0)
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut gone: watch::Receiver<bool>,
        mut feed: Option<RoomFeed>,
    ) {
        let _counted = ConnectedPlayer::new(SOCKETIO);
        loop {
            tokio::select! {
                // Only ever changes to true (or closes): either way the socket is gone.
                _ = gone.changed() => break,
                command = commands.recv() => match command {
                    None => break,
                    Some(Command::Call { call, ack }) => {
                        let request = match call {
                            Call::Request(request) => Ok(request),
                            Call::Message(data) => self.message_request(&data).inspect_err(|e| {
                                crate::metrics::message_refused(SOCKETIO, e.code);
                            }),
                        };
                        let outcome = match request {
                            Ok(request) => self.session.request(request).await,
                            Err(e) => Err(e),
                        };
                        let answer = match outcome {
                            Ok((reply, new_feed)) => {
                                if let Some(f) = new_feed {
                                    feed = Some(f);
                                    self.world = self.fresh_world();
                                    if let Some(room) = self.session.room() {
                                        self.socket.join(room_key(room));
                                    }
                                }
                                if reply == Reply::Left {
                                    feed = None;
                                    self.socket.leave_all();
                                }
                                json::reply(&reply)
                            }
                            Err(e) => json::error(&e),
                        };
                        let _ = ack.send(&answer);
                    }
                    Some(Command::Input { data, ack }) => {
                        if let Err(e) = self.input(data) {
                            tracing::debug!("input refused: {e}");
                            let _ = ack.send(&json::error(&e));
                        }
                    }
                },
                item = RoomFeed::next(&mut feed) => match item {
                    FromRoom::Snapshot(p) => {
                        if !self.send_snapshot(&p) {
                            break;
                        }
                    }
                    FromRoom::Event(e) => {
                        if let Some(schema) = self.session.schema() {
                            let _ = self.socket.emit("room:event", &json::room_event(&e, schema));
                        }
                        // The seat went to another connection: this socket is closed, after
                        // the event that says why.
                        if e == RoomEvent::SeatTaken {
                            break;
                        }
                    }
                    FromRoom::Closed => {
                        feed = None;
                        self.session.room_closed();
                        self.socket.leave_all();
                    }
                },
            }
        }
        drop(self.session);
        if self.socket.connected() {
            close(self.socket);
        }
    }

    /// A `room:message` payload as a request, read by the room's schema.
    fn message_request(&self, data: &Value) -> Result<Request, ErrorBody> {
        let schema = self
            .session
            .schema()
            .ok_or_else(|| ErrorBody::new(ErrorCode::NotInRoom, "not in a room"))?;
        let (kind, slots) = json::message_from_json(&schema.messages().to_room, data)?;
        Ok(Request::Message { kind, slots })
    }

    /// An input for the session: a JSON one read by the room's declared input.
    fn input(&mut self, data: InputData) -> Result<(), ErrorBody> {
        let mut batch = match data {
            InputData::Batch(batch) => batch,
            InputData::Json(value) => json::input(value, self.session.schema().map(|s| &**s))
                .inspect_err(|_| {
                    crate::metrics::input_refused(SOCKETIO, "malformed");
                })?,
        };
        if self.json_mode {
            // This actor, not the JSON client, holds the baselines.
            batch.ack_tick = self.world.current().map(|s| s.tick);
        }
        self.session
            .input(batch)
            .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e.to_string()))
    }

    fn fresh_world(&self) -> ClientWorld {
        world_for(&self.session)
    }

    /// Emits one snapshot; returns false when the socket is gone or stalled for too long.
    fn send_snapshot(&mut self, p: &SnapshotPacket) -> bool {
        let sent = if self.json_mode {
            match self.world.apply(&p.body) {
                Ok(Applied::Newer { tick, .. }) => {
                    let Some(view) = self.world.current() else {
                        return true;
                    };
                    let Some(schema) = self.world.schema() else {
                        return true;
                    };
                    let value = json::snapshot(schema, view, p.input_ack);
                    let len = serde_json::to_vec(&value).map_or(0, |v| v.len());
                    let sent = self.socket.emit("snapshot", &value).map(|_| len);
                    // Acknowledge what was decoded so the next delta builds on it.
                    let _ = self.session.input(InputBatch {
                        ack_tick: Some(tick),
                        inputs: Vec::new(),
                    });
                    sent
                }
                Ok(Applied::Stale(_)) => return true,
                Err(e) => {
                    tracing::warn!("server-side decode for a JSON client failed: {e}");
                    self.world = self.fresh_world();
                    return true;
                }
            }
        } else {
            let bytes = Bytes::from(packet::encode_snapshot(p.input_ack, &p.body));
            let len = bytes.len();
            self.socket.emit("snapshot", &bytes).map(|_| len)
        };
        match sent {
            Ok(len) => {
                self.counters.snapshots.increment(1);
                self.counters.bytes.increment(len as u64);
                self.stalled_since = None;
                true
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                self.counters.dropped.increment(1);
                let since = *self.stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > STALL_LIMIT {
                    tracing::info!(sid = %self.socket.id, "disconnecting a stalled socket");
                    metrics::counter!(DISCONNECTED_SLOW, "transport" => SOCKETIO).increment(1);
                    return false;
                }
                true
            }
            Err(SendError::Socket(SocketError::Closed)) => false,
            Err(e) => {
                tracing::warn!("cannot emit a snapshot: {e}");
                true
            }
        }
    }
}
