//! Helpers for tickwire's end-to-end tests: an in-process server on 127.0.0.1, connected
//! clients, a UDP relay that makes a bad network, and a raw control-stream connection for
//! speaking bad frames.

use anyhow::{Context, bail};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tickwire_arena::{Arena, ArenaConfig, ArenaInput};
pub use tickwire_client::GameClient;
use tickwire_client::{Client, ClientConfig, Decoding, Received, Trust};
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::{ClientFrame, CreateRoom, ServerFrame};
use tickwire_server::Server;
use tickwire_server::config::ServerConfig;
use tickwire_standard::{Standard, StandardConfig};

mod relay;
pub use relay::{Chaos, LossyRelay, RelayCounts, chaos_run};

/// Generous bound for anything a test waits on; a healthy run takes a fraction of it.
pub const WAIT: Duration = Duration::from_secs(15);

/// What a test server starts with: the server's own settings and the arena mode's.
pub struct TestSetup {
    pub server: ServerConfig,
    pub arena: ArenaConfig,
}

/// A server on 127.0.0.1 hosting the arena (and the standard mode, with its defaults), as
/// `configure` leaves the setup.
pub async fn server(configure: impl FnOnce(&mut TestSetup)) -> Server {
    let mut setup = TestSetup {
        server: ServerConfig::loopback(),
        arena: ArenaConfig::default(),
    };
    configure(&mut setup);
    Server::builder(setup.server)
        .game::<Arena>("arena", setup.arena)
        .game::<Standard>("standard", StandardConfig::default())
        .game::<tickwire_board::Board>("board", ())
        .start()
        .await
        .expect("server starts")
}

/// A request for a public arena room without bots; tests change fields with `..`.
pub fn arena_room(name: &str, max_players: u8) -> CreateRoom {
    CreateRoom {
        name: name.into(),
        mode: "arena".into(),
        max_players,
        private: false,
        bots: 0,
        fill_bots: false,
    }
}

pub fn pin(server: &Server) -> Trust {
    Trust::pinned_hex(&server.cert_sha256).expect("server prints a valid hash")
}

/// An arena input: where to move, where to aim, whether to fire (`buttons` 1).
pub fn steer(move_dir: glam::Vec2, aim: f32, buttons: u8) -> ArenaInput {
    ArenaInput {
        move_dir,
        aim,
        fire: buttons != 0,
    }
}

/// How the test clients decode: as arena players (a join into another game's room is
/// refused).
pub fn arena() -> Decoding {
    Decoding::Full(tickwire_arena::view::schema())
}

pub async fn connect_to(addr: SocketAddr, trust: Trust, name: &str) -> Client {
    connect_as(addr, trust, name, arena()).await
}

/// Connects a player of the game whose schema `decoding` holds.
pub async fn connect_as(addr: SocketAddr, trust: Trust, name: &str, decoding: Decoding) -> Client {
    Client::connect(ClientConfig {
        server: addr,
        trust,
        name: name.to_owned(),
        token: None,
        ticket: None,
        decoding,
    })
    .await
    .expect("client connects")
}

pub async fn connect(server: &Server, name: &str) -> Client {
    connect_to(server.quic_addr, pin(server), name).await
}

/// Connects presenting a reconnect token.
pub async fn reconnect(server: &Server, name: &str, token: &str) -> Client {
    Client::connect(ClientConfig {
        server: server.quic_addr,
        trust: pin(server),
        name: name.to_owned(),
        token: Some(token.to_owned()),
        ticket: None,
        decoding: arena(),
    })
    .await
    .expect("client reconnects")
}

/// Awaits `f`, failing the test after [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits for a snapshot that satisfies `pred`.
pub async fn snapshot_where(
    client: &mut impl GameClient,
    what: &str,
    mut pred: impl FnMut(&Received) -> bool,
) -> Arc<Received> {
    within(what, async {
        loop {
            let r = client.next_snapshot().await.expect("connection stays up");
            if pred(&r) {
                return r;
            }
        }
    })
    .await
}

/// A connection that speaks raw control frames, to test how the server treats bad ones.
pub struct RawControl {
    pub conn: quinn::Connection,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    _endpoint: quinn::Endpoint,
}

impl RawControl {
    pub async fn open(server: &Server) -> anyhow::Result<RawControl> {
        RawControl::open_at(server, server.quic_addr).await
    }

    /// Connects to `server` through `addr`, e.g. a [`LossyRelay`] in front of it.
    pub async fn open_at(server: &Server, addr: SocketAddr) -> anyhow::Result<RawControl> {
        let endpoint = tickwire_client::connection::endpoint(addr, &pin(server))?;
        RawControl::open_on(endpoint, addr).await
    }

    /// Connects letting the server send at most `window` bytes on the control stream that
    /// this side has not read: a client that stops reading, sooner than quinn's default.
    pub async fn open_with_window(server: &Server, window: u32) -> anyhow::Result<RawControl> {
        let addr = server.quic_addr;
        let mut config = tickwire_client::connection::client_config(&pin(server))?;
        let mut transport = quinn::TransportConfig::default();
        transport.stream_receive_window(window.into());
        config.transport_config(Arc::new(transport));
        let mut endpoint = tickwire_client::connection::endpoint(addr, &pin(server))?;
        endpoint.set_default_client_config(config);
        RawControl::open_on(endpoint, addr).await
    }

    async fn open_on(endpoint: quinn::Endpoint, addr: SocketAddr) -> anyhow::Result<RawControl> {
        let conn = endpoint.connect(addr, "localhost")?.await?;
        let (send, recv) = conn.open_bi().await?;
        Ok(RawControl {
            conn,
            send,
            recv,
            _endpoint: endpoint,
        })
    }

    /// Writes a length prefix and then `body` as they are.
    pub async fn write_raw(&mut self, len: u32, body: &[u8]) -> anyhow::Result<()> {
        self.send.write_all(&len.to_le_bytes()).await?;
        self.send.write_all(body).await?;
        Ok(())
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> anyhow::Result<()> {
        let body = codec::encode(frame)?;
        self.write_raw(body.len() as u32, &body).await
    }

    pub async fn read(&mut self) -> anyhow::Result<ServerFrame> {
        let mut len = [0u8; 4];
        within("a control frame", self.recv.read_exact(&mut len))
            .await
            .context("reading a frame length")?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_CONTROL_BYTES {
            bail!("server frame of {len} bytes");
        }
        let mut body = vec![0u8; len];
        within("a control frame body", self.recv.read_exact(&mut body))
            .await
            .context("reading a frame")?;
        Ok(codec::decode(&body, MAX_CONTROL_BYTES)?)
    }
}

/// The sum of one metric's lines for `transport` in the server's Prometheus text (per
/// process: tests that run together share it, so compare before and after).
pub async fn metric(http: SocketAddr, name: &str, transport: &str) -> f64 {
    metric_with(http, name, &[&format!("transport=\"{transport}\"")]).await
}

/// The sum of one metric's lines that carry every one of `labels` (each `key="value"`).
pub async fn metric_with(http: SocketAddr, name: &str, labels: &[&str]) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(http).await.unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    // A refusal (the per-address API allowance) must not read as a zero.
    assert!(body.starts_with("HTTP/1.1 200"), "GET /metrics: {body}");
    body.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The QUIC address of the server's node `index`, on 127.0.0.1.
pub fn node_addr(server: &Server, index: usize) -> SocketAddr {
    let port = server.cluster.node(index).address.quic_port;
    SocketAddr::from(([127, 0, 0, 1], port))
}
