//! QUIC transport (quinn). Per connection:
//! - one bidirectional control stream, opened by the client: length-prefixed bincode frames
//!   (u32 little-endian length, at most [`MAX_CONTROL_BYTES`]). A reader task and a writer task
//!   own the two halves, so a client that stops reading never blocks its session loop.
//! - datagrams from the client: input batches ([`packet::INPUT`]).
//! - datagrams to the client: snapshots, handed over by the room's tick itself
//!   ([`QuicSnapshots`], a [`SnapshotSink`]) so a snapshot wakes no task of ours; a snapshot
//!   larger than `max_datagram_size()` goes on a unidirectional stream of its own instead.

use crate::auth::Gate;
use crate::cluster::Cluster;
use crate::metrics::{ConnectedPlayer, QUIC, SendCounters};
use crate::peers::Peers;
use crate::room::{SnapshotPacket, SnapshotSink};
use crate::session::{FromRoom, Rates, Reach, Refusals, RoomFeed, Session, SnapshotRoute};
use crate::tls::{ServerCert, TlsError};
use bytes::Bytes;
use quinn::crypto::rustls::QuicServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::{
    ClientFrame, ErrorBody, ErrorCode, PROTOCOL_VERSION, Reply, Request, RoomEvent, ServerFrame,
    packet,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, watch};

/// The client must open its control stream and say hello within this time.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client that broke the protocol may keep the connection to read the error.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Frames queued for the writer; a client that lets this fill up is not reading and is closed.
const OUT_QUEUE: usize = 512;
/// Decoded frames waiting for the session; the reader stops reading (QUIC flow control pushes
/// back on the client) while it is full.
const IN_QUEUE: usize = 16;
/// Oversized snapshots in flight on their own streams per connection; more are dropped. A
/// stream holds its slot until the client has acknowledged all of it, not merely until quinn
/// has buffered it, so a client that never reads cannot pile streams up.
const SNAPSHOT_STREAMS: usize = 2;
/// A snapshot stream not delivered and acknowledged within this time is reset: its snapshot is
/// stale by then, and resetting stops quinn retransmitting it.
const STREAM_DEADLINE: Duration = Duration::from_secs(1);
/// Reset code of a snapshot stream given up after [`STREAM_DEADLINE`].
const STREAM_STALE: u32 = 0;

/// Application close codes.
pub mod close {
    pub const NORMAL: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const NOT_READING: u32 = 2;
    pub const SHUTDOWN: u32 = 3;
    /// The player's seat was resumed from another connection.
    pub const SEAT_TAKEN: u32 = 4;
    /// More than `FLOOD_LIMIT` calls were refused for the rate limit or frames as malformed.
    pub const FLOODING: u32 = 5;
}

#[derive(Clone, Debug)]
pub struct QuicSettings {
    pub idle_timeout: Duration,
    pub keep_alive: Duration,
}

pub fn bind(
    addr: SocketAddr,
    cert: &ServerCert,
    settings: &QuicSettings,
) -> Result<quinn::Endpoint, crate::ServerError> {
    let crypto = QuicServerConfig::try_from(cert.rustls_config()?)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(settings.idle_timeout.try_into().map_err(|_| {
            crate::ServerError::Config("idle timeout too long".into())
        })?))
        .keep_alive_interval(Some(settings.keep_alive))
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .datagram_receive_buffer_size(Some(64 * 1024))
        .datagram_send_buffer_size(256 * 1024);
    config.transport_config(Arc::new(transport));
    quinn::Endpoint::server(config, addr).map_err(|source| crate::ServerError::Bind {
        what: "QUIC",
        addr,
        source,
    })
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    endpoint: quinn::Endpoint,
    (cluster, node, reach): (Arc<Cluster>, usize, Reach),
    peers: Arc<Peers>,
    rates: Rates,
    gate: Gate,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                // Before the handshake, so an address over its allowance costs no crypto.
                let peer = match peers.admit(incoming.remote_address().ip()) {
                    Ok(peer) => peer,
                    Err(refusal) => {
                        tracing::debug!(peer = %incoming.remote_address(), "refused: {refusal}");
                        crate::metrics::address_refused(QUIC, refusal.as_str());
                        incoming.refuse();
                        continue;
                    }
                };
                let (cluster, gate) = (cluster.clone(), gate.clone());
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => {
                            let sink = Arc::new(QuicSnapshots::new(conn.clone()));
                            let route = SnapshotRoute::Direct(sink);
                            let home = (cluster, node, reach);
                            let session = Session::new(QUIC, home, rates, route, peer, gate);
                            connection(conn, session).await
                        }
                        Err(e) => tracing::debug!("QUIC handshake failed: {e}"),
                    }
                });
            }
            _ = shutdown.wait_for(|down| *down) => break,
        }
    }
    endpoint.close(close::SHUTDOWN.into(), super::SHUTDOWN_REASON.as_bytes());
}

async fn connection(conn: quinn::Connection, mut session: Session) {
    let peer = conn.remote_address();
    let (send, recv) = match tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        _ => {
            conn.close(close::PROTOCOL_ERROR.into(), b"no control stream");
            return;
        }
    };
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(write_frames(send, out_rx));
    let (in_tx, mut frames) = mpsc::channel(IN_QUEUE);
    tokio::spawn(read_frames(recv, in_tx));

    let mut counted: Option<ConnectedPlayer> = None;
    let mut feed: Option<RoomFeed> = None;
    let hello_deadline = tokio::time::sleep(HELLO_TIMEOUT);
    tokio::pin!(hello_deadline);
    let mut close_code = close::NORMAL;
    // Calls refused for the rate limit and frames refused as malformed; past FLOOD_LIMIT the
    // connection is cut off.
    let mut refused = Refusals::default();

    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(error) => {
                        let fatal = error.code == ErrorCode::FrameTooLarge;
                        tracing::debug!(%peer, "bad control frame: {error}");
                        if out.try_send(ServerFrame::Error(error)).is_err() {
                            close_code = close::NOT_READING;
                            break;
                        }
                        if fatal {
                            close_code = close::PROTOCOL_ERROR;
                            break;
                        }
                        if refused.refuse() {
                            close_code = cut_off(peer);
                            break;
                        }
                        continue;
                    }
                };
                let ClientFrame { id, request } = frame;
                let is_hello = matches!(request, Request::Hello { .. });
                let result = match session.request(request).await {
                    Ok((reply, new_feed)) => {
                        if new_feed.is_some() || reply == Reply::Left {
                            feed = new_feed;
                        }
                        Ok(reply)
                    }
                    Err(e) => Err(e),
                };
                // A failed hello ends the connection once the reply is delivered.
                let fatal = is_hello && result.is_err();
                let flooding =
                    matches!(&result, Err(e) if e.code == ErrorCode::RateLimited) && refused.refuse();
                if is_hello && result.is_ok() {
                    counted = Some(ConnectedPlayer::new(QUIC));
                }
                if out.try_send(ServerFrame::Reply { id, result }).is_err() {
                    close_code = close::NOT_READING;
                    break;
                }
                if fatal {
                    close_code = close::PROTOCOL_ERROR;
                    break;
                }
                if flooding {
                    close_code = cut_off(peer);
                    break;
                }
            }
            datagram = conn.read_datagram() => {
                let Ok(datagram) = datagram else { break };
                match packet::decode_input(&datagram) {
                    Ok(batch) => {
                        if let Err(e) = session.input(batch) {
                            tracing::debug!(%peer, "input refused: {e}");
                        }
                    }
                    Err(e) => {
                        crate::metrics::input_refused(QUIC, "malformed");
                        tracing::debug!(%peer, "bad datagram: {e}");
                    }
                }
            }
            item = RoomFeed::next(&mut feed) => match item {
                // Snapshots go from the room straight to `QuicSnapshots`.
                FromRoom::Snapshot(_) => {}
                FromRoom::Event(event) => {
                    let taken = event == RoomEvent::SeatTaken;
                    if out.try_send(ServerFrame::Event(event)).is_err() {
                        close_code = close::NOT_READING;
                        break;
                    }
                    if taken {
                        close_code = close::SEAT_TAKEN;
                        break;
                    }
                }
                FromRoom::Closed => {
                    feed = None;
                    session.room_closed();
                }
            },
            _ = &mut hello_deadline, if session.player().is_none() => {
                close_code = close::PROTOCOL_ERROR;
                break;
            }
        }
    }

    drop(session);
    drop(counted);
    drop(out);
    if close_code != close::NOT_READING {
        // Let the last replies (an error, say) reach the client before closing.
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    }
    if matches!(
        close_code,
        close::PROTOCOL_ERROR | close::SEAT_TAKEN | close::FLOODING
    ) {
        // Closing drops whatever the client has received but not yet read, the error frame
        // included; give it a moment to read it and hang up itself.
        let _ = tokio::time::timeout(CLOSE_GRACE, conn.closed()).await;
    }
    let reason: &[u8] = match close_code {
        close::SEAT_TAKEN => b"seat resumed from another connection",
        close::FLOODING => b"too many calls refused",
        _ => b"bye",
    };
    conn.close(close_code.into(), reason);
    tracing::debug!(%peer, "connection ended");
}

/// A connection's snapshot sender, called from its room's tick (see [`SnapshotSink`]).
pub struct QuicSnapshots {
    conn: quinn::Connection,
    /// Oversized snapshots in flight on their own streams.
    streams: Arc<Semaphore>,
    counters: SendCounters,
}

impl QuicSnapshots {
    pub fn new(conn: quinn::Connection) -> QuicSnapshots {
        QuicSnapshots {
            conn,
            streams: Arc::new(Semaphore::new(SNAPSHOT_STREAMS)),
            counters: SendCounters::new(QUIC),
        }
    }
}

impl SnapshotSink for QuicSnapshots {
    fn send(&self, snapshot: SnapshotPacket) {
        let bytes = Bytes::from(packet::encode_snapshot(snapshot.input_ack, &snapshot.body));
        let len = bytes.len() as u64;
        if self
            .conn
            .max_datagram_size()
            .is_some_and(|max| bytes.len() <= max)
        {
            // Queued without waiting; when the send buffer is full quinn drops the oldest. An
            // error means the connection is gone, and the room hears of it from the session.
            if self.conn.send_datagram(bytes).is_ok() {
                self.counters.snapshots.increment(1);
                self.counters.bytes.increment(len);
            }
            return;
        }
        // Too large for a datagram: its own stream, a few at a time. When those are still busy
        // the snapshot is dropped; the next one is a delta against the player's ack and still
        // valid.
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            self.counters.dropped.increment(1);
            tracing::debug!(
                tick = snapshot.tick.0,
                "large snapshot dropped: streams busy"
            );
            return;
        };
        self.counters.snapshots.increment(1);
        self.counters.bytes.increment(len);
        let conn = self.conn.clone();
        tokio::spawn(async move {
            let _permit = permit;
            send_on_stream(&conn, &bytes).await;
        });
    }
}

/// Sends one snapshot packet on a stream of its own and returns once the client has
/// acknowledged all of it, or the stream has been given up at [`STREAM_DEADLINE`].
async fn send_on_stream(conn: &quinn::Connection, bytes: &[u8]) {
    let deadline = tokio::time::Instant::now() + STREAM_DEADLINE;
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(deadline, conn.open_uni()).await else {
        return;
    };
    let delivered = tokio::time::timeout_at(deadline, async {
        stream.write_all(bytes).await.ok()?;
        stream.finish().ok()?;
        // `Ok(None)`: every byte acknowledged; `Ok(Some(_))`: the client stopped the stream.
        stream.stopped().await.ok()
    })
    .await;
    if delivered.is_err() {
        tracing::debug!("snapshot stream not acknowledged in time: reset");
        let _ = stream.reset(STREAM_STALE.into());
    }
}

/// Counts a connection cut off for flooding; its close code.
fn cut_off(peer: SocketAddr) -> u32 {
    tracing::info!(%peer, "cutting off a flooding connection");
    crate::metrics::flood_disconnect(QUIC);
    close::FLOODING
}

async fn read_frames(
    mut recv: quinn::RecvStream,
    frames: mpsc::Sender<Result<ClientFrame, ErrorBody>>,
) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if recv.read_exact(&mut len).await.is_err() {
            break;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_CONTROL_BYTES {
            let error = ErrorBody::new(
                ErrorCode::FrameTooLarge,
                format!("frame of {len} bytes; the limit is {MAX_CONTROL_BYTES}"),
            );
            let _ = frames.send(Err(error)).await;
            break;
        }
        buf.resize(len, 0);
        if recv.read_exact(&mut buf).await.is_err() {
            break;
        }
        let frame = codec::decode::<ClientFrame>(&buf, MAX_CONTROL_BYTES).or_else(|e| {
            // A hello of another version is unreadable here, but its version is not: it gets
            // the session's `version_mismatch` rather than a malformed frame.
            match codec::hello_version(&buf) {
                Some((id, protocol)) if protocol != PROTOCOL_VERSION => Ok(ClientFrame {
                    id,
                    request: Request::Hello {
                        protocol,
                        name: String::new(),
                        token: None,
                        schemas: Vec::new(),
                        ticket: None,
                    },
                }),
                _ => Err(ErrorBody::new(ErrorCode::BadRequest, e.to_string())),
            }
        });
        if frames.send(frame).await.is_err() {
            break;
        }
    }
}

async fn write_frames(mut send: quinn::SendStream, mut frames: mpsc::Receiver<ServerFrame>) {
    while let Some(frame) = frames.recv().await {
        let bytes = match codec::encode_frame(&frame) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!("cannot encode a server frame: {e}");
                continue;
            }
        };
        if send.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = send.flush().await;
    let _ = send.finish();
    let _ = send.stopped().await;
}
