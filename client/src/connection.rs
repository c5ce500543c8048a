//! A connection to a tickwire server over QUIC.
//!
//! Three tasks run per connection: the control task (writes requests, matches replies to
//! callers, forwards room events), the control reader (reads frames off the stream; reads are
//! not cancel-safe, so they live in a task of their own), and the snapshot task (datagrams and
//! oversized snapshots on uni streams → the client-side world → the latest snapshot in a
//! `watch`).

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
use std::sync::atomic::Ordering;
use std::time::Duration;
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::packet::{self, MAX_SNAPSHOT_PACKET_BYTES};
use tickwire_protocol::{
    ALPN, ClientFrame, ErrorBody, InputBatch, PROTOCOL_VERSION, Reply, Request, RoomEvent,
    ServerFrame, Welcome,
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

pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
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

        let (send, recv) = conn.open_bi().await?;
        let (frames_tx, frames) = mpsc::channel(16);
        tokio::spawn(read_frames(recv, frames_tx));
        let (calls, calls_rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let stats = Arc::new(ClientStats::default());
        tokio::spawn(control_task(
            send,
            calls_rx,
            frames,
            events_tx,
            stats.clone(),
        ));
        let (snap_tx, snapshots) = watch::channel(None);
        tokio::spawn(snapshot_task(
            conn.clone(),
            snap_tx,
            stats.clone(),
            config.decoding.clone(),
        ));

        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            name: config.name,
            token: config.token,
            schemas: config.decoding.known_schemas(),
            ticket: config.ticket,
        };
        let welcome = match call(&calls, hello).await? {
            Reply::Welcome(w) => w,
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        };
        Ok(Client {
            endpoint,
            conn,
            calls,
            state: ClientState::new(welcome, stats, snapshots, events, config.decoding)?,
        })
    }

    pub fn welcome(&self) -> &Welcome {
        self.state.welcome()
    }

    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
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
        send_batch(&self.conn, batch)
    }
}

/// Sends inputs as datagrams on a connection owned elsewhere: a game loop numbers its inputs
/// here and learns each seq at once, which prediction needs.
pub struct InputSender {
    conn: quinn::Connection,
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
        send_batch(&self.conn, &batch)?;
        self.stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
        Ok(seq)
    }

    /// Acknowledges `ack_tick` with a batch of no inputs (a game without a per-tick input, or
    /// one this sender does not play).
    pub fn ack(&mut self, ack_tick: Option<tickwire_protocol::Tick>) -> Result<(), ClientError> {
        send_batch(
            &self.conn,
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
        self.conn.close(0u32.into(), b"bye");
        // A shared endpoint has other connections to drive: wait for this one only.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.closed()).await;
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

async fn control_task(
    mut send: quinn::SendStream,
    mut calls: mpsc::Receiver<Call>,
    mut frames: mpsc::Receiver<ServerFrame>,
    events: mpsc::Sender<RoomEvent>,
    stats: Arc<ClientStats>,
) {
    let mut pending: HashMap<u32, oneshot::Sender<Result<Reply, ErrorBody>>> = HashMap::new();
    let mut next_id = 1u32;
    loop {
        tokio::select! {
            call = calls.recv() => {
                let Some((request, reply)) = call else { break };
                let id = next_id;
                next_id = next_id.wrapping_add(1);
                let frame = match codec::encode_frame(&ClientFrame { id, request }) {
                    Ok(frame) => frame,
                    Err(e) => {
                        let _ = reply.send(Err(ErrorBody::new(
                            tickwire_protocol::ErrorCode::BadRequest,
                            e.to_string(),
                        )));
                        continue;
                    }
                };
                if send.write_all(&frame).await.is_err() {
                    break;
                }
                pending.insert(id, reply);
            }
            frame = frames.recv() => match frame {
                None => break,
                Some(ServerFrame::Reply { id, result }) => {
                    if let Some(reply) = pending.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Some(ServerFrame::Event(event)) => {
                    if events.try_send(event).is_err() {
                        stats.events_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(ServerFrame::Error(e)) => tracing::warn!("server reported: {e}"),
            },
        }
    }
    // Dropping `pending` fails every waiting call with Closed.
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
