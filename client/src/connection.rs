//! A connection to a tickwire server over QUIC.
//!
//! Three tasks run per connection: the control task (writes requests, matches replies to
//! callers, forwards room events), the control reader (reads frames off the stream; reads are
//! not cancel-safe, so they live in a task of their own), and the snapshot task (datagrams and
//! oversized snapshots on uni streams → the client-side world → the latest snapshot in a
//! `watch`).
//!
//! A server of several nodes may answer a join with [`Reply::Moved`]: the room is on another
//! node, where a seat waits for a token. The control task follows it by itself — it connects
//! to that node (pinning the hash the trusted node gave), says hello with the token, and
//! answers the join with the seat's `Joined` — and the client goes on over the new connection.

use crate::common::{
    ClientError, ClientState, ClientStats, Decoding, GameClient, InputLog, REQUEST_TIMEOUT,
    Received, SnapshotSink,
};
use crate::trust::Trust;
use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::packet::{self, MAX_SNAPSHOT_PACKET_BYTES};
use tickwire_protocol::{
    ALPN, ClientFrame, ErrorBody, ErrorCode, InputBatch, Moved, NodeAddress, PROTOCOL_VERSION,
    Reply, Request, RoomEvent, ServerFrame, Welcome,
};
use tokio::sync::{mpsc, oneshot, watch};

const EVENT_QUEUE: usize = 256;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub server: SocketAddr,
    pub trust: Trust,
    pub name: String,
    /// A reconnect token from an earlier `Joined`: resume that seat if it is still held.
    pub token: Option<String>,
    /// A ticket from the game's backend naming the player, for a server that asks for one.
    pub ticket: Option<String>,
    /// How much of each snapshot to decode (a player: all of it).
    pub decoding: Decoding,
}

type Call = (Request, oneshot::Sender<Result<Reply, ErrorBody>>);

/// Moves one join may take: a node sends a player on only when the directory says the room is
/// elsewhere, so more than this is a loop between nodes that disagree.
const MAX_MOVES: usize = 3;

pub struct Client {
    endpoint: quinn::Endpoint,
    /// The connection in use: replaced when a join moves the client to another node.
    conn: watch::Receiver<quinn::Connection>,
    calls: mpsc::Sender<Call>,
    state: ClientState,
}

impl Client {
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = endpoint(config.server, &config.trust)?;
        Self::connect_on(endpoint, config).await
    }

    /// Connects through an existing endpoint (made by [`endpoint`] with the same trust): many
    /// clients in one process (a bot swarm) can share one UDP socket and its driver.
    pub async fn connect_on(
        endpoint: quinn::Endpoint,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let conn = endpoint.connect(config.server, "localhost")?.await?;
        let link = Link::open(&conn).await?;
        let (calls, calls_rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let stats = Arc::new(ClientStats::default());
        let (snap_tx, snapshots) = watch::channel(None);
        tokio::spawn(snapshot_task(
            conn.clone(),
            snap_tx.clone(),
            stats.clone(),
            config.decoding.clone(),
        ));
        let (conn_tx, conn_rx) = watch::channel(conn);
        let player = Arc::new(AtomicU32::new(0));
        let mover = Mover {
            endpoint: endpoint.clone(),
            trust: config.trust.clone(),
            name: config.name.clone(),
            ticket: config.ticket.clone(),
            decoding: config.decoding.clone(),
            conn: conn_tx,
            snapshots: snap_tx,
            stats: stats.clone(),
            player: player.clone(),
        };
        let hello = mover.hello(config.token);
        tokio::spawn(control_task(link, calls_rx, events_tx, mover));

        // A hello whose token holds a seat on another node was moved there by the control
        // task, like a join: its reply is then the seat's `Joined`.
        let welcome = match call(&calls, hello).await? {
            Reply::Welcome(w) => w,
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        };
        let state = ClientState::new(welcome, stats, snapshots, events, config.decoding)?;
        Ok(Client {
            endpoint,
            conn: conn_rx,
            calls,
            state: state.with_player(player),
        })
    }

    pub fn welcome(&self) -> &Welcome {
        self.state.welcome()
    }

    /// The connection in use (another after a join moved the client to another node).
    pub fn connection(&self) -> quinn::Connection {
        self.conn.borrow().clone()
    }

    /// Makes lobby calls on this connection from other tasks, concurrently with the owner.
    pub fn caller(&self) -> Caller {
        Caller(self.calls.clone())
    }

    /// An input sender for another thread (a game loop), with its own numbering: use either it
    /// or [`GameClient::send_input`] on one connection, not both.
    pub fn input_sender(&self) -> InputSender {
        InputSender {
            conn: self.conn.clone(),
            log: InputLog::default(),
            stats: self.state.stats_shared(),
        }
    }

    /// Sends a batch as it is (no validation): for tests of the server's checks.
    pub fn send_batch(&self, batch: &InputBatch) -> Result<(), ClientError> {
        send_batch(&self.conn.borrow(), batch)
    }
}

/// Sends inputs as datagrams on a connection owned elsewhere: a game loop numbers its inputs
/// here and learns each seq at once, which prediction needs.
pub struct InputSender {
    conn: watch::Receiver<quinn::Connection>,
    log: InputLog,
    stats: Arc<ClientStats>,
}

impl InputSender {
    /// Sends one input (with the previous few, for loss) acknowledging `ack_tick`; returns its
    /// seq.
    pub fn send<R: tickwire_protocol::Record>(
        &mut self,
        input: &R,
        ack_tick: Option<tickwire_protocol::Tick>,
    ) -> Result<u32, ClientError> {
        let (seq, batch) = self.log.next_batch(input.to_slots()?, ack_tick);
        send_batch(&self.conn.borrow(), &batch)?;
        self.stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// Acknowledges `ack_tick` with a batch of no inputs (a game without a per-tick input, or
    /// one this sender does not play).
    pub fn ack(&mut self, ack_tick: Option<tickwire_protocol::Tick>) -> Result<(), ClientError> {
        send_batch(
            &self.conn.borrow(),
            &InputBatch {
                ack_tick,
                inputs: Vec::new(),
            },
        )
    }

    /// Forgets the inputs it would repeat (after leaving a room).
    pub fn forget(&mut self) {
        self.log.forget();
    }
}

/// Puts one input batch on the wire as a datagram.
fn send_batch(conn: &quinn::Connection, batch: &InputBatch) -> Result<(), ClientError> {
    let bytes = packet::encode_input(batch)?;
    conn.send_datagram(Bytes::from(bytes))?;
    Ok(())
}

/// A handle for lobby calls on a connection owned elsewhere (the Bevy bridge runs each call as
/// its own task, so a slow reply never holds up snapshots and events).
#[derive(Clone)]
pub struct Caller(mpsc::Sender<Call>);

impl Caller {
    /// Sends any request and waits for its reply (at most [`REQUEST_TIMEOUT`]).
    pub async fn call(&self, request: Request) -> Result<Reply, ClientError> {
        call(&self.0, request).await
    }
}

/// Sends a request to the control task and waits for the reply.
async fn call(calls: &mpsc::Sender<Call>, request: Request) -> Result<Reply, ClientError> {
    let (tx, rx) = oneshot::channel();
    calls
        .send((request, tx))
        .await
        .map_err(|_| ClientError::Closed)?;
    match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
        Err(_) => Err(ClientError::Timeout(REQUEST_TIMEOUT)),
        Ok(Err(_)) => Err(ClientError::Closed),
        Ok(Ok(Err(e))) => Err(ClientError::Server(e)),
        Ok(Ok(Ok(reply))) => Ok(reply),
    }
}

impl GameClient for Client {
    async fn call(&self, request: Request) -> Result<Reply, ClientError> {
        call(&self.calls, request).await
    }

    fn transmit(&mut self, batch: &InputBatch) -> Result<(), ClientError> {
        self.send_batch(batch)
    }

    fn state(&self) -> &ClientState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut ClientState {
        &mut self.state
    }

    async fn close(self) {
        let conn = self.connection();
        conn.close(0u32.into(), b"bye");
        // A shared endpoint has other connections to drive: wait for this one only.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        drop(self.endpoint);
    }
}

/// The QUIC client configuration every tickwire client uses: TLS 1.3 with the server's
/// certificate checked by `trust`, tickwire's ALPN, keep-alive and idle timeout. Also for
/// drivers of their own (the bots' `--light` fleet runs quinn's state machines directly).
pub fn client_config(trust: &Trust) -> Result<quinn::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(trust.verifier(provider))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| ClientError::Setup(e.to_string()))?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(Duration::from_secs(3)))
        .max_idle_timeout(Some(
            Duration::from_secs(15)
                .try_into()
                .map_err(|_| ClientError::Setup("idle timeout".into()))?,
        ))
        .max_concurrent_uni_streams(8u32.into())
        .datagram_receive_buffer_size(Some(1024 * 1024))
        .ack_frequency_config(Some(ack_frequency()));
    let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
    client_config.transport_config(Arc::new(transport));
    Ok(client_config)
}

/// What the client asks of the server's ACKs (QUIC's ACK frequency extension, which quinn
/// servers support): by default a receiver acknowledges every second packet at once, so a
/// client sending an input per tick (60 Hz) against 30 Hz snapshots made the server send an
/// ACK-only packet for every other input — about 30 extra packets a second per player. Asking
/// for an ACK after 4 packets, or within the usual 25 ms, lets most of them ride on snapshots.
/// Inputs are datagrams and never retransmitted, so a later ACK costs them nothing.
fn ack_frequency() -> quinn::AckFrequencyConfig {
    let mut config = quinn::AckFrequencyConfig::default();
    config
        .ack_eliciting_threshold(4u32.into())
        .max_ack_delay(Some(Duration::from_millis(25)));
    config
}

/// A client QUIC endpoint that speaks tickwire's ALPN and trusts the server as `trust` says.
/// [`Client::connect`] uses it; tests use it to speak raw frames.
pub fn endpoint(server: SocketAddr, trust: &Trust) -> Result<quinn::Endpoint, ClientError> {
    let client_config = client_config(trust)?;
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let mut endpoint = quinn::Endpoint::client(bind)
        .map_err(|e| ClientError::Setup(format!("cannot bind a UDP socket: {e}")))?;
    endpoint.set_default_client_config(client_config);
    Ok(endpoint)
}

async fn read_frames(mut recv: quinn::RecvStream, frames: mpsc::Sender<ServerFrame>) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if recv.read_exact(&mut len).await.is_err() {
            return;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_CONTROL_BYTES {
            tracing::warn!("server sent a {len}-byte frame; closing");
            return;
        }
        buf.resize(len, 0);
        if recv.read_exact(&mut buf).await.is_err() {
            return;
        }
        match codec::decode::<ServerFrame>(&buf, MAX_CONTROL_BYTES) {
            Ok(frame) => {
                if frames.send(frame).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!("unreadable frame from the server: {e}"),
        }
    }
}

/// One connection's control stream: where requests go and frames come from.
struct Link {
    send: quinn::SendStream,
    frames: mpsc::Receiver<ServerFrame>,
}

impl Link {
    /// Opens the control stream of `conn`, with the task that reads its frames.
    async fn open(conn: &quinn::Connection) -> Result<Link, quinn::ConnectionError> {
        let (send, recv) = conn.open_bi().await?;
        let (frames_tx, frames) = mpsc::channel(16);
        tokio::spawn(read_frames(recv, frames_tx));
        Ok(Link { send, frames })
    }
}

/// What the control task needs to follow a [`Reply::Moved`] to another node.
struct Mover {
    endpoint: quinn::Endpoint,
    trust: Trust,
    name: String,
    ticket: Option<String>,
    decoding: Decoding,
    /// The client's current connection, for inputs and for the user.
    conn: watch::Sender<quinn::Connection>,
    snapshots: watch::Sender<Option<Arc<Received>>>,
    stats: Arc<ClientStats>,
    player: Arc<AtomicU32>,
}

/// Writes one request on a control stream.
async fn write_request(
    send: &mut quinn::SendStream,
    id: u32,
    request: Request,
) -> Result<(), ErrorBody> {
    let frame = codec::encode_frame(&ClientFrame { id, request })
        .map_err(|e| ErrorBody::new(ErrorCode::BadRequest, e.to_string()))?;
    send.write_all(&frame)
        .await
        .map_err(|_| ErrorBody::new(ErrorCode::Internal, "the connection closed"))
}

async fn control_task(
    mut link: Link,
    mut calls: mpsc::Receiver<Call>,
    events: mpsc::Sender<RoomEvent>,
    mover: Mover,
) {
    let mut pending: HashMap<u32, (Request, oneshot::Sender<Result<Reply, ErrorBody>>)> =
        HashMap::new();
    let mut next_id = 1u32;
    loop {
        tokio::select! {
            call = calls.recv() => {
                let Some((request, reply)) = call else { break };
                let id = next_id;
                next_id = next_id.wrapping_add(1);
                match write_request(&mut link.send, id, request.clone()).await {
                    Ok(()) => {
                        pending.insert(id, (request, reply));
                    }
                    Err(e) if e.code == ErrorCode::BadRequest => {
                        let _ = reply.send(Err(e));
                    }
                    Err(_) => break,
                }
            }
            frame = link.frames.recv() => match frame {
                None => break,
                Some(ServerFrame::Reply { id, result }) => {
                    let Some((request, reply)) = pending.remove(&id) else { continue };
                    let Ok(Reply::Moved(moved)) = result else {
                        let _ = reply.send(result);
                        continue;
                    };
                    match mover.follow(moved, request, &events).await {
                        Ok((new_link, answer)) => {
                            // Calls still waiting on the old node get no answer now.
                            for (_, (_, waiting)) in pending.drain() {
                                let _ = waiting.send(Err(moved_away()));
                            }
                            link = new_link;
                            let _ = reply.send(Ok(answer));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Some(ServerFrame::Event(event)) => {
                    if events.try_send(event).is_err() {
                        mover.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(ServerFrame::Error(e)) => tracing::warn!("server reported: {e}"),
            },
        }
    }
    // Dropping `pending` fails every waiting call with Closed.
}

fn moved_away() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::Internal,
        "the client moved to another node before this call was answered; call again",
    )
}

impl Mover {
    /// This client's hello, with `token` to take a seat.
    fn hello(&self, token: Option<String>) -> Request {
        Request::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.name.clone(),
            token,
            schemas: self.decoding.known_schemas(),
            ticket: self.ticket.clone(),
        }
    }

    /// Goes where `moved` says, takes the seat reserved there, and makes that connection the
    /// client's; returns its control stream and the answer to `request` (the seat's `Joined`,
    /// or for a spectator, who holds no seat, the reply to `request` asked there again).
    async fn follow(
        &self,
        mut moved: Moved,
        request: Request,
        events: &mpsc::Sender<RoomEvent>,
    ) -> Result<(Link, Reply), ErrorBody> {
        for _ in 0..MAX_MOVES {
            let (conn, mut link) = self.connect(&moved.node).await?;
            let seated = !moved.token.is_empty();
            let hello = self.hello(seated.then(|| moved.token.clone()));
            let answer = match ask(&mut link, hello, events).await? {
                Reply::Moved(next) => {
                    moved = next;
                    conn.close(0u32.into(), b"moved on");
                    continue;
                }
                // A reconnect: the welcome itself (resumed, or with why not).
                Reply::Welcome(w) if matches!(request, Request::Hello { .. }) => {
                    self.player.store(w.player.0, Ordering::Relaxed);
                    Reply::Welcome(w)
                }
                Reply::Welcome(w) if seated => match w.resumed {
                    Some(joined) => {
                        self.player.store(w.player.0, Ordering::Relaxed);
                        Reply::Joined(joined)
                    }
                    None => {
                        conn.close(0u32.into(), b"seat lost");
                        return Err(w.lost.unwrap_or_else(|| {
                            ErrorBody::new(ErrorCode::RoomLost, "the reserved seat is gone")
                        }));
                    }
                },
                Reply::Welcome(w) => {
                    self.player.store(w.player.0, Ordering::Relaxed);
                    ask(&mut link, request.clone(), events).await?
                }
                other => {
                    return Err(ErrorBody::new(
                        ErrorCode::Internal,
                        format!("unexpected hello reply {other:?}"),
                    ));
                }
            };
            if let Reply::Moved(next) = answer {
                moved = next;
                conn.close(0u32.into(), b"moved on");
                continue;
            }
            tokio::spawn(snapshot_task(
                conn.clone(),
                self.snapshots.clone(),
                self.stats.clone(),
                self.decoding.clone(),
            ));
            let old = self.conn.send_replace(conn);
            old.close(0u32.into(), b"moved");
            return Ok((link, answer));
        }
        Err(ErrorBody::new(
            ErrorCode::Internal,
            format!("moved from node to node more than {MAX_MOVES} times"),
        ))
    }

    /// Connects to a node a server sent the client to: its host (or the current one's), its
    /// port, and the certificate hash the trusted node gave for it.
    async fn connect(&self, node: &NodeAddress) -> Result<(quinn::Connection, Link), ErrorBody> {
        let unreachable = |e: String| {
            ErrorBody::new(
                ErrorCode::RoomLost,
                format!("cannot reach the room's node: {e}"),
            )
        };
        let addr = match &node.host {
            None => SocketAddr::new(self.conn.borrow().remote_address().ip(), node.quic_port),
            Some(host) => tokio::net::lookup_host((host.as_str(), node.quic_port))
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .next()
                .ok_or_else(|| unreachable(format!("{host} has no address")))?,
        };
        let trust = self
            .trust
            .for_node(&node.cert_sha256)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("the node's hash: {e}")))?;
        let config = client_config(&trust).map_err(|e| unreachable(e.to_string()))?;
        let conn = self
            .endpoint
            .connect_with(config, addr, "localhost")
            .map_err(|e| unreachable(e.to_string()))?
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let link = Link::open(&conn)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok((conn, link))
    }
}

/// One request on a link not yet handed to the control loop, waiting for its reply; events
/// that come first (the new room's) go to the client's feed.
async fn ask(
    link: &mut Link,
    request: Request,
    events: &mpsc::Sender<RoomEvent>,
) -> Result<Reply, ErrorBody> {
    const ID: u32 = 0;
    write_request(&mut link.send, ID, request).await?;
    let reply = async {
        while let Some(frame) = link.frames.recv().await {
            match frame {
                ServerFrame::Reply { id: ID, result } => return result,
                ServerFrame::Event(event) => {
                    let _ = events.try_send(event);
                }
                _ => {}
            }
        }
        Err(ErrorBody::new(
            ErrorCode::RoomLost,
            "the room's node closed the connection",
        ))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, reply)
        .await
        .unwrap_or_else(|_| {
            Err(ErrorBody::new(
                ErrorCode::RoomLost,
                "the room's node did not answer",
            ))
        })
}

async fn snapshot_task(
    conn: quinn::Connection,
    latest: watch::Sender<Option<Arc<Received>>>,
    stats: Arc<ClientStats>,
    decoding: Decoding,
) {
    let mut sink = SnapshotSink::new(latest, stats, decoding);
    let (streamed_tx, mut streamed) = mpsc::channel::<Vec<u8>>(4);
    loop {
        tokio::select! {
            datagram = conn.read_datagram() => match datagram {
                Ok(d) => sink.receive(&d),
                Err(_) => return,
            },
            stream = conn.accept_uni() => {
                let Ok(mut stream) = stream else { return };
                let tx = streamed_tx.clone();
                tokio::spawn(async move {
                    if let Ok(bytes) = stream.read_to_end(MAX_SNAPSHOT_PACKET_BYTES).await {
                        let _ = tx.send(bytes).await;
                    }
                });
            }
            Some(bytes) = streamed.recv() => sink.receive(&bytes),
        }
    }
}
