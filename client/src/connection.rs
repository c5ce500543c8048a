//! A connection to a tickwire server over QUIC.
//!
//! Three tasks run per connection: the control task (writes requests, matches replies to
//! callers, forwards room events), the control reader (reads frames off the stream; reads are
//! not cancel-safe, so they live in a task of their own), and the snapshot task (datagrams and
//! oversized snapshots on uni streams → [`ClientWorld`] → the latest snapshot in a `watch`).

use crate::trust::Trust;
use bytes::Bytes;
use glam::Vec2;
use quinn::crypto::rustls::QuicClientConfig;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::input::INPUT_REDUNDANCY;
use tickwire_protocol::packet::{self, MAX_SNAPSHOT_PACKET_BYTES};
use tickwire_protocol::world::{Applied, ClientWorld};
use tickwire_protocol::{
    ALPN, ClientFrame, CreateRoom, ErrorBody, Input, InputBatch, Joined, PROTOCOL_VERSION,
    PlayerId, Reply, Request, RoomEvent, RoomId, RoomInfo, ServerFrame, Snapshot, Welcome,
};
use tokio::sync::{mpsc, oneshot, watch};

/// How long a lobby call may take before it fails with [`ClientError::Timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const EVENT_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up QUIC: {0}")]
    Setup(String),
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("server refused: {0}")]
    Server(ErrorBody),
    #[error("the server sent an unexpected reply: {0}")]
    Unexpected(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("the connection is closed")]
    Closed,
    #[error("cannot encode: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("cannot send a datagram: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub server: SocketAddr,
    pub trust: Trust,
    pub name: String,
}

/// Counters kept by the connection's tasks.
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
    pub snapshot: Snapshot,
    /// The newest input seq the server had applied when it made this snapshot.
    pub input_ack: u32,
    pub at: Instant,
}

type Call = (Request, oneshot::Sender<Result<Reply, ErrorBody>>);

pub struct Client {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    calls: mpsc::Sender<Call>,
    events: mpsc::Receiver<RoomEvent>,
    snapshots: watch::Receiver<Option<Arc<Received>>>,
    welcome: Welcome,
    stats: Arc<ClientStats>,
    next_seq: u32,
    recent: VecDeque<Input>,
}

impl Client {
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = endpoint(config.server, &config.trust)?;
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
        tokio::spawn(snapshot_task(conn.clone(), snap_tx, stats.clone()));

        let mut client = Client {
            endpoint,
            conn,
            calls,
            events,
            snapshots,
            welcome: Welcome {
                player: PlayerId(0),
                protocol: 0,
                tick_rate: 0,
                snapshot_rate: 0,
            },
            stats,
            next_seq: 1,
            recent: VecDeque::with_capacity(INPUT_REDUNDANCY),
        };
        let reply = client
            .call(Request::Hello {
                protocol: PROTOCOL_VERSION,
                name: config.name,
                token: None,
            })
            .await?;
        match reply {
            Reply::Welcome(w) => client.welcome = w,
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        Ok(client)
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn player(&self) -> PlayerId {
        self.welcome.player
    }

    pub fn stats(&self) -> &Arc<ClientStats> {
        &self.stats
    }

    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Sends any request and waits for its reply.
    pub async fn call(&self, request: Request) -> Result<Reply, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.calls
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

    pub async fn list_rooms(&self, mode: Option<&str>) -> Result<Vec<RoomInfo>, ClientError> {
        match self
            .call(Request::ListRooms {
                mode: mode.map(str::to_owned),
            })
            .await?
        {
            Reply::Rooms(rooms) => Ok(rooms),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Creates a room and joins it.
    pub async fn create_room(&self, create: CreateRoom) -> Result<Joined, ClientError> {
        joined(self.call(Request::CreateRoom(create)).await?)
    }

    pub async fn join_room(&self, room: RoomId) -> Result<Joined, ClientError> {
        joined(self.call(Request::JoinRoom { room }).await?)
    }

    pub async fn quick_join(&self, mode: &str) -> Result<Joined, ClientError> {
        joined(
            self.call(Request::QuickJoin {
                mode: mode.to_owned(),
            })
            .await?,
        )
    }

    pub async fn leave_room(&mut self) -> Result<(), ClientError> {
        match self.call(Request::LeaveRoom).await? {
            Reply::Left => {
                self.recent.clear();
                Ok(())
            }
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Round trip of a ping over the control stream.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let started = Instant::now();
        self.call(Request::Ping { client_time_us: 0 }).await?;
        Ok(started.elapsed())
    }

    /// Sends one input (with the previous few, for loss) and the newest decoded tick as ack.
    /// Returns the input's seq.
    pub fn send_input(
        &mut self,
        move_dir: Vec2,
        aim: f32,
        buttons: u8,
    ) -> Result<u32, ClientError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.recent.len() == INPUT_REDUNDANCY {
            self.recent.pop_front();
        }
        self.recent.push_back(Input {
            seq,
            move_dir,
            aim,
            buttons,
        });
        let ack_tick = self.snapshots.borrow().as_ref().map(|r| r.snapshot.tick);
        let batch = InputBatch {
            ack_tick,
            inputs: self.recent.iter().copied().collect(),
        };
        self.send_batch(&batch)?;
        Ok(seq)
    }

    /// Sends a batch as it is (no validation): for tests of the server's checks.
    pub fn send_batch(&self, batch: &InputBatch) -> Result<(), ClientError> {
        let bytes = packet::encode_input(batch)?;
        self.conn.send_datagram(Bytes::from(bytes))?;
        self.stats.inputs_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The newest snapshot decoded so far.
    pub fn latest(&self) -> Option<Arc<Received>> {
        self.snapshots.borrow().clone()
    }

    /// Waits for a snapshot newer than the last one seen through this method.
    pub async fn next_snapshot(&mut self) -> Result<Arc<Received>, ClientError> {
        loop {
            self.snapshots
                .changed()
                .await
                .map_err(|_| ClientError::Closed)?;
            if let Some(r) = self.snapshots.borrow_and_update().clone() {
                return Ok(r);
            }
        }
    }

    /// Waits for the next room event.
    pub async fn next_event(&mut self) -> Result<RoomEvent, ClientError> {
        self.events.recv().await.ok_or(ClientError::Closed)
    }

    /// Takes a room event if one is waiting.
    pub fn try_event(&mut self) -> Option<RoomEvent> {
        self.events.try_recv().ok()
    }

    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        self.endpoint.wait_idle().await;
    }
}

/// A client QUIC endpoint that speaks tickwire's ALPN and trusts the server as `trust` says.
/// [`Client::connect`] uses it; tests use it to speak raw frames.
pub fn endpoint(server: SocketAddr, trust: &Trust) -> Result<quinn::Endpoint, ClientError> {
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
        .datagram_receive_buffer_size(Some(1024 * 1024));
    let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
    client_config.transport_config(Arc::new(transport));
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

fn joined(reply: Reply) -> Result<Joined, ClientError> {
    match reply {
        Reply::Joined(j) => Ok(j),
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
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
                let body = match codec::encode(&ClientFrame { id, request }) {
                    Ok(body) => body,
                    Err(e) => {
                        let _ = reply.send(Err(ErrorBody::new(
                            tickwire_protocol::ErrorCode::BadRequest,
                            e.to_string(),
                        )));
                        continue;
                    }
                };
                let len = (body.len() as u32).to_le_bytes();
                if send.write_all(&len).await.is_err() || send.write_all(&body).await.is_err() {
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
) {
    let mut world = ClientWorld::default();
    let (streamed_tx, mut streamed) = mpsc::channel::<Vec<u8>>(4);
    loop {
        let packet: Bytes = tokio::select! {
            datagram = conn.read_datagram() => match datagram {
                Ok(d) => d,
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
                continue;
            }
            Some(bytes) = streamed.recv() => Bytes::from(bytes),
        };
        let (input_ack, body) = match packet::decode_snapshot(&packet) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::debug!("bad snapshot packet: {e}");
                stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        match world.apply(body) {
            Ok(Applied::Newer { delta, .. }) => {
                stats.snapshots.fetch_add(1, Ordering::Relaxed);
                if delta {
                    stats.delta_snapshots.fetch_add(1, Ordering::Relaxed);
                }
                stats
                    .snapshot_bytes
                    .fetch_add(packet.len() as u64, Ordering::Relaxed);
                if let Some(current) = world.current() {
                    latest.send_replace(Some(Arc::new(Received {
                        snapshot: current.clone(),
                        input_ack,
                        at: Instant::now(),
                    })));
                }
            }
            Ok(Applied::Stale(_)) => {
                stats.stale_snapshots.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!("cannot decode snapshot: {e}");
                stats.decode_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
