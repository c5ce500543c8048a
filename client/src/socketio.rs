//! A websocket-only Socket.IO client (Engine.IO 4, Socket.IO 5 protocol) over tokio-tungstenite,
//! enough for bots and tests to play through a tickwire server's Socket.IO transport without
//! Node: the open packet, CONNECT with `auth`, ping/pong, events with acks both ways, and binary
//! attachments (snapshots in, input packets out).
//!
//! One task owns the websocket. Calls get an ack id and wait on a oneshot; binary snapshots go
//! through the same [`SnapshotSink`] as QUIC's. A join answered `moved` (the room is on
//! another machine) is followed by that task: it opens a websocket to the machine named, with
//! the reserved seat's token, and the client goes on there.

use crate::common::{
    ClientError, ClientState, ClientStats, GameClient, REQUEST_TIMEOUT, SnapshotSink,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tickwire_protocol::{
    ErrorBody, ErrorCode, InputBatch, Moved, Reply, Request, RoomEvent, Welcome, json as wire,
    packet,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

const EVENT_QUEUE: usize = 256;
const OUT_QUEUE: usize = 64;

enum Outbound {
    Call {
        event: &'static str,
        payload: Value,
        reply: oneshot::Sender<Value>,
    },
    /// An input packet, sent as a binary attachment of an `input` event.
    Input(Vec<u8>),
    /// Go where a `moved` reply says; answered with the new machine's welcome.
    Move {
        moved: Moved,
        reply: oneshot::Sender<Result<Welcome, ClientError>>,
    },
    Close,
}

/// Moves one call may take before the client gives up (nodes that disagree about a room).
const MAX_MOVES: usize = 3;

pub struct SioClient {
    out: mpsc::Sender<Outbound>,
    state: ClientState,
    task: tokio::task::JoinHandle<()>,
}

/// `http://host:port` (the server's HTTP address) → its Socket.IO websocket URL.
fn websocket_url(url: &str) -> Result<String, ClientError> {
    let host = host_port(url)?;
    Ok(format!("ws://{host}/socket.io/?EIO=4&transport=websocket"))
}

/// `host:port` of `http://host:port/`.
fn host_port(url: &str) -> Result<&str, ClientError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| ClientError::Setup(format!("expected http://HOST:PORT, got {url}")))?;
    Ok(rest.trim_end_matches('/'))
}

/// The URL of the machine a `moved` names: its host (or the current one's) and HTTP port.
fn moved_url(current: &str, moved: &Moved) -> Result<String, ClientError> {
    let here = host_port(current)?;
    let host = match &moved.node.host {
        Some(host) => host.as_str(),
        None => here.rsplit_once(':').map_or(here, |(h, _)| h),
    };
    Ok(format!("http://{host}:{}", moved.node.http_port))
}

/// Opens the websocket and says CONNECT with `auth`; returns once the server accepted it.
async fn handshake(url: &str, auth: &Value) -> Result<Ws, ClientError> {
    // Nagle off: inputs are small and must not wait for the previous one's ack.
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(websocket_url(url)?, None, true).await?;
    // Engine.IO open packet, then the Socket.IO CONNECT with our auth.
    match next_text(&mut ws).await? {
        t if t.starts_with('0') => {}
        other => return Err(ClientError::Protocol(format!("expected open, got {other}"))),
    }
    ws.send(Message::text(format!("40{auth}"))).await?;
    loop {
        let t = next_text(&mut ws).await?;
        if t == "2" {
            ws.send(Message::text("3")).await?;
        } else if t.starts_with("40") {
            return Ok(ws);
        } else if let Some(err) = t.strip_prefix("44") {
            return Err(ClientError::Protocol(format!("connection refused: {err}")));
        }
    }
}

impl SioClient {
    /// Connects to `url` (`http://IP:PORT`) as `name`, with binary snapshots decoded as
    /// `decoding` says (the game's schema for a player, `TicksOnly` for a load generator).
    pub async fn connect(
        url: &str,
        name: &str,
        decoding: crate::Decoding,
    ) -> Result<SioClient, ClientError> {
        Self::connect_with_token(url, name, None, decoding).await
    }

    /// Connects, presenting a reconnect token from an earlier `Joined` to resume that seat.
    pub async fn connect_with_token(
        url: &str,
        name: &str,
        token: Option<&str>,
        decoding: crate::Decoding,
    ) -> Result<SioClient, ClientError> {
        let auth = json!({"name": name, "schemas": decoding.known_schemas()});
        let mut first = auth.clone();
        if let Some(t) = token {
            first["token"] = json!(t);
        }
        let ws = handshake(url, &first).await?;

        let stats = Arc::new(ClientStats::default());
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (snap_tx, snapshots) = watch::channel(None);
        let (welcome_tx, welcome_rx) = oneshot::channel();
        let conn = Connection {
            pending: HashMap::new(),
            next_ack: 0,
            binary: None,
            events: events_tx,
            schema: decoding.schema().cloned(),
            sink: SnapshotSink::new(snap_tx, stats.clone(), decoding.clone()),
            stats: stats.clone(),
            welcome: Some(welcome_tx),
            url: url.to_owned(),
            auth,
            moving: None,
        };
        let task = tokio::spawn(conn.run(ws, out_rx));
        let welcome = answer(welcome_rx).await?;
        Ok(SioClient {
            out,
            state: ClientState::new(welcome, stats, snapshots, events, decoding)?,
            task,
        })
    }

    pub fn welcome(&self) -> &Welcome {
        self.state.welcome()
    }

    /// Moves to the machine `moved` names and answers `request` there: the reserved seat's
    /// `Joined`, or, for a spectator (no seat, an empty token), the request asked again.
    async fn follow(&self, mut moved: Moved, request: Request) -> Result<Reply, ClientError> {
        for _ in 0..MAX_MOVES {
            let (reply, rx) = oneshot::channel();
            let seated = !moved.token.is_empty();
            self.out
                .send(Outbound::Move { moved, reply })
                .await
                .map_err(|_| ClientError::Closed)?;
            let welcome = answer(rx).await??;
            self.state.set_player(welcome.player);
            if seated {
                return match welcome.resumed {
                    Some(joined) => Ok(Reply::Joined(joined)),
                    None => Err(ClientError::Server(welcome.lost.unwrap_or_else(|| {
                        ErrorBody::new(ErrorCode::RoomLost, "the reserved seat is gone")
                    }))),
                };
            }
            let (event, payload) = wire::request_event(&request)
                .ok_or_else(|| ClientError::Setup("only lobby calls move".into()))?;
            let ack = self.emit(event, payload).await?;
            match wire::parse_reply(&request, ack).map_err(ClientError::Server)? {
                Reply::Moved(next) => moved = next,
                reply => return Ok(reply),
            }
        }
        Err(ClientError::Protocol(format!(
            "moved from machine to machine more than {MAX_MOVES} times"
        )))
    }

    /// Emits `event` and waits for its ack.
    async fn emit(&self, event: &'static str, payload: Value) -> Result<Value, ClientError> {
        let (reply, rx) = oneshot::channel();
        let call = Outbound::Call {
            event,
            payload,
            reply,
        };
        self.out.send(call).await.map_err(|_| ClientError::Closed)?;
        answer(rx).await
    }
}

/// What the connection's task sends back on `rx`, within [`REQUEST_TIMEOUT`].
async fn answer<T>(rx: oneshot::Receiver<T>) -> Result<T, ClientError> {
    tokio::time::timeout(REQUEST_TIMEOUT, rx)
        .await
        .map_err(|_| ClientError::Timeout(REQUEST_TIMEOUT))?
        .map_err(|_| ClientError::Closed)
}

impl GameClient for SioClient {
    async fn call(&self, request: Request) -> Result<Reply, ClientError> {
        let (event, payload) = match &request {
            Request::Message { kind, slots } => {
                let schema = self.state.schema().ok_or(ClientError::NoSchema)?;
                let payload = wire::message_payload(schema, *kind, slots);
                (wire::MESSAGE_EVENT, payload)
            }
            _ => wire::request_event(&request).ok_or_else(|| {
                ClientError::Setup("hello is the handshake over Socket.IO".into())
            })?,
        };
        let ack = self.emit(event, payload).await?;
        match wire::parse_reply(&request, ack).map_err(ClientError::Server)? {
            Reply::Moved(moved) => self.follow(moved, request).await,
            reply => Ok(reply),
        }
    }

    fn transmit(&mut self, batch: &InputBatch) -> Result<(), ClientError> {
        let bytes = packet::encode_input(batch)?;
        match self.out.try_send(Outbound::Input(bytes)) {
            // A full queue drops the input, as a lost datagram would: the next one repeats it.
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ClientError::Closed),
        }
    }

    fn state(&self) -> &ClientState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut ClientState {
        &mut self.state
    }

    async fn close(self) {
        let _ = self.out.send(Outbound::Close).await;
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, self.task).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> Result<String, ClientError> {
    loop {
        match tokio::time::timeout(REQUEST_TIMEOUT, ws.next()).await {
            Err(_) => return Err(ClientError::Timeout(REQUEST_TIMEOUT)),
            Ok(None) => return Err(ClientError::Closed),
            Ok(Some(msg)) => match msg? {
                Message::Text(t) => return Ok(t.as_str().to_owned()),
                Message::Close(_) => return Err(ClientError::Closed),
                _ => continue,
            },
        }
    }
}

/// A binary event whose attachments are still arriving.
struct PendingBinary {
    event: String,
    remaining: usize,
    attachments: Vec<bytes::Bytes>,
}

struct Connection {
    pending: HashMap<u64, oneshot::Sender<Value>>,
    next_ack: u64,
    binary: Option<PendingBinary>,
    events: mpsc::Sender<RoomEvent>,
    /// What game messages are read by.
    schema: Option<Arc<tickwire_protocol::Schema>>,
    sink: SnapshotSink,
    stats: Arc<ClientStats>,
    welcome: Option<oneshot::Sender<Welcome>>,
    /// The machine connected to, and the handshake's auth without a token.
    url: String,
    auth: Value,
    /// A move waiting for the new machine's welcome.
    moving: Option<oneshot::Sender<Result<Welcome, ClientError>>>,
}

impl Connection {
    async fn run(mut self, ws: Ws, mut out: mpsc::Receiver<Outbound>) {
        let (mut write, mut read) = ws.split();
        loop {
            tokio::select! {
                msg = read.next() => {
                    let reply = match msg {
                        // The server disconnected the namespace, the only one this client
                        // uses: the connection is over.
                        Some(Ok(Message::Text(t))) if t.as_str() == "41" => {
                            let _ = write.close().await;
                            break;
                        }
                        Some(Ok(Message::Text(t))) => self.text(t.as_str()),
                        Some(Ok(Message::Binary(b))) => {
                            self.attachment(b);
                            None
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => None,
                    };
                    if let Some(reply) = reply
                        && write.send(Message::text(reply)).await.is_err()
                    {
                        break;
                    }
                }
                cmd = out.recv() => {
                    let sent = match cmd {
                        None | Some(Outbound::Close) => {
                            let _ = write.send(Message::text("41")).await;
                            let _ = write.close().await;
                            break;
                        }
                        Some(Outbound::Call { event, payload, reply }) => {
                            let id = self.next_ack;
                            self.next_ack += 1;
                            self.pending.insert(id, reply);
                            let args = if payload.is_null() { json!([event]) } else { json!([event, payload]) };
                            write.send(Message::text(format!("42{id}{args}"))).await
                        }
                        Some(Outbound::Move { moved, reply }) => {
                            match self.reconnect(&moved).await {
                                Ok(ws) => {
                                    let _ = write.send(Message::text("41")).await;
                                    let _ = write.close().await;
                                    (write, read) = ws.split();
                                    // Calls still waiting on the old machine get no answer.
                                    self.pending.clear();
                                    self.moving = Some(reply);
                                }
                                Err(e) => {
                                    let _ = reply.send(Err(e));
                                }
                            }
                            Ok(())
                        }
                        Some(Outbound::Input(bytes)) => {
                            let header = r#"451-["input",{"_placeholder":true,"num":0}]"#;
                            match write.send(Message::text(header)).await {
                                Ok(()) => write.send(Message::binary(bytes)).await,
                                Err(e) => Err(e),
                            }
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `pending` fails every waiting call with Closed.
    }

    /// Opens a websocket to the machine `moved` names, presenting its token.
    async fn reconnect(&mut self, moved: &Moved) -> Result<Ws, ClientError> {
        let url = moved_url(&self.url, moved)?;
        let mut auth = self.auth.clone();
        if !moved.token.is_empty() {
            auth["token"] = json!(moved.token);
        }
        let ws = handshake(&url, &auth).await?;
        self.url = url;
        Ok(ws)
    }

    /// Handles one text frame; returns a frame to send back (a pong).
    fn text(&mut self, t: &str) -> Option<String> {
        let (kind, rest) = t.split_at_checked(1)?;
        match kind {
            "2" => return Some("3".to_owned()),
            "4" => {}
            _ => return None,
        }
        let (kind, rest) = rest.split_at_checked(1)?;
        match kind {
            // EVENT: [ack id] JSON array.
            "2" => {
                let (_, json) = split_id(rest);
                if let Ok(Value::Array(args)) = serde_json::from_str::<Value>(json) {
                    self.event(args, Vec::new());
                }
            }
            // ACK: id, JSON array.
            "3" => {
                let (id, json) = split_id(rest);
                let arg = serde_json::from_str::<Value>(json)
                    .ok()
                    .and_then(|v| v.as_array().and_then(|a| a.first().cloned()));
                if let (Some(id), Some(arg)) = (id, arg)
                    && let Some(reply) = self.pending.remove(&id)
                {
                    let _ = reply.send(arg);
                }
            }
            // BINARY_EVENT: "<n>-" [ack id] JSON array with placeholders; n frames follow.
            "5" => {
                let (count, rest) = rest.split_once('-')?;
                let remaining: usize = count.parse().ok()?;
                let (_, json) = split_id(rest);
                let Ok(Value::Array(args)) = serde_json::from_str::<Value>(json) else {
                    return None;
                };
                let event = args.first()?.as_str()?.to_owned();
                self.binary = Some(PendingBinary {
                    event,
                    remaining,
                    attachments: Vec::with_capacity(remaining.min(4)),
                });
            }
            "1" => tracing::debug!("server disconnected the socket"),
            _ => {}
        }
        None
    }

    fn attachment(&mut self, bytes: bytes::Bytes) {
        let Some(pending) = self.binary.as_mut() else {
            return;
        };
        pending.attachments.push(bytes);
        pending.remaining = pending.remaining.saturating_sub(1);
        if pending.remaining == 0
            && let Some(done) = self.binary.take()
        {
            self.event(vec![Value::String(done.event)], done.attachments);
        }
    }

    fn event(&mut self, args: Vec<Value>, attachments: Vec<bytes::Bytes>) {
        let mut args = args.into_iter();
        let Some(Value::String(name)) = args.next() else {
            return;
        };
        let data = args.next().unwrap_or(Value::Null);
        match name.as_str() {
            "snapshot" => match attachments.first() {
                Some(packet) => self.sink.receive(packet),
                None => tracing::debug!("a JSON snapshot; this client asks for binary"),
            },
            "room:event" => match wire::parse_room_event(data, self.schema.as_deref()) {
                Ok(e) => {
                    if self.events.try_send(e).is_err() {
                        self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => tracing::warn!("unreadable room event: {e}"),
            },
            "welcome" => match wire::parse_welcome(data) {
                Ok(w) => {
                    if let Some(tx) = self.welcome.take() {
                        let _ = tx.send(w);
                    } else if let Some(tx) = self.moving.take() {
                        let _ = tx.send(Ok(w));
                    }
                }
                Err(e) => tracing::warn!("unreadable welcome: {e}"),
            },
            "error" => tracing::warn!("server error: {data}"),
            other => tracing::debug!("unhandled event {other}"),
        }
    }
}

/// Splits a leading decimal ack id off a packet body.
fn split_id(s: &str) -> (Option<u64>, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    (s[..digits].parse().ok(), &s[digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_ids_parse() {
        assert_eq!(
            websocket_url("http://127.0.0.1:80/").unwrap(),
            "ws://127.0.0.1:80/socket.io/?EIO=4&transport=websocket"
        );
        assert!(websocket_url("ftp://x").is_err());
        assert_eq!(split_id("12[1]"), (Some(12), "[1]"));
        assert_eq!(split_id("[1]"), (None, "[1]"));
        let moved = |host: Option<&str>| Moved {
            node: tickwire_protocol::NodeAddress {
                host: host.map(str::to_owned),
                quic_port: 4434,
                http_port: 8081,
                cert_sha256: String::new(),
            },
            token: String::new(),
            expires_ms: 0,
        };
        let here = "http://10.0.0.1:8080/";
        assert_eq!(
            moved_url(here, &moved(None)).unwrap(),
            "http://10.0.0.1:8081"
        );
        assert_eq!(
            moved_url(here, &moved(Some("game-2.example"))).unwrap(),
            "http://game-2.example:8081"
        );
    }
}
