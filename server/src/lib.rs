//! tickwire-server: the authoritative game state server.
//!
//! See docs/ARCHITECTURE.md for the map. In short: transports turn bytes into session calls;
//! the lobby owns the room registry; each room is a task that owns its world and steps it at a
//! fixed rate; replication turns the world into per-player deltas. Games are not in here: a
//! game implements [`game::Game`] in its own crate and a server binary registers it on
//! [`Server::builder`].

/// The public game API (the `tickwire-game` crate).
pub use tickwire_game as game;

pub mod accept;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod http;
pub mod lobby;
pub mod match_log;
pub mod metrics;
pub mod modes;
pub mod origin;
pub mod peers;
pub mod random;
pub mod rate;
pub mod replication;
pub mod room;
pub mod session;
pub mod tls;
pub mod transport;
pub mod watchdog;
pub mod web;

use cluster::{Cluster, LocalNode, Registry, SharedDirectory};
use config::ServerConfig;
use game::GameMode;
use modes::Modes;
use session::{Rates, Reach};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tickwire_protocol::{NodeAddress, RoomId, Snapshot, Tick};
use tls::{ServerCert, TlsError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use transport::quic::{self, QuicSettings};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("cannot start the watchdog thread: {0}")]
    Watchdog(std::io::Error),
    #[error(transparent)]
    Random(#[from] random::Unavailable),
    #[error(transparent)]
    Shared(#[from] cluster::shared::SharedError),
    #[error(transparent)]
    AuthKey(#[from] auth::KeyError),
}

/// A running server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    pub http_addr: SocketAddr,
    /// The first node's QUIC address: where clients connect; the others' are in `cluster`.
    pub quic_addr: SocketAddr,
    /// Hex SHA-256 of the QUIC certificate, for clients to pin.
    pub cert_sha256: String,
    /// The nodes of this process and the directory they share.
    pub cluster: Arc<Cluster>,
    pub config: Arc<ServerConfig>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    socketio: socketioxide::SocketIo,
    match_log: Option<match_log::MatchLog>,
}

/// Builds a server: its configuration and the games it hosts, each under a mode name.
///
/// ```no_run
/// # async fn run() -> Result<(), tickwire_server::ServerError> {
/// use tickwire_server::Server;
/// use tickwire_server::config::ServerConfig;
/// use tickwire_arena::{Arena, ArenaConfig};
///
/// let server = Server::builder(ServerConfig::default())
///     .game::<Arena>("arena", ArenaConfig::default())
///     .start()
///     .await?;
/// println!("{}", server.listening_line());
/// # Ok(()) }
/// ```
pub struct ServerBuilder {
    config: ServerConfig,
    modes: Modes,
    /// The first mistake made while building, reported by `start`.
    error: Option<ServerError>,
}

impl ServerBuilder {
    /// Hosts `G` under `mode`: rooms created with that mode run a fresh `G` made from `config`.
    pub fn game<G: GameMode>(mut self, mode: &str, config: G::Config) -> ServerBuilder {
        if let Err(e) = self.modes.add::<G>(mode, config) {
            self.error.get_or_insert(ServerError::Config(e.to_string()));
        }
        self
    }

    /// Binds both listeners and starts serving. Must run inside a tokio runtime.
    pub async fn start(self) -> Result<Server, ServerError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.modes.is_empty() {
            return Err(ServerError::Config("no game registered".into()));
        }
        Server::serve(self.config, self.modes).await
    }
}

impl Server {
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            modes: Modes::default(),
            error: None,
        }
    }

    async fn serve(config: ServerConfig, modes: Modes) -> Result<Server, ServerError> {
        if config.snapshot_rate > config.tick_rate {
            return Err(ServerError::Config(
                "--snapshot-rate cannot exceed --tick-rate".into(),
            ));
        }
        let config = Arc::new(config);
        let cert = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => ServerCert::load(cert, key)?,
            _ => ServerCert::self_signed()?,
        };
        let cert_sha256 = cert.sha256_hex();
        let settings = QuicSettings {
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            keep_alive: Duration::from_secs((config.idle_timeout_secs / 3).clamp(1, 5)),
        };
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| ServerError::Bind {
                what: "HTTP",
                addr: config.http,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            what: "HTTP",
            addr: config.http,
            source,
        })?;
        let mut endpoints = Vec::new();
        for index in 0..config.node_count() {
            let addr = config.node_quic(index).map_err(ServerError::Config)?;
            let endpoint = quic::bind(addr, &cert, &settings)?;
            let bound = endpoint.local_addr().map_err(|source| ServerError::Bind {
                what: "QUIC",
                addr,
                source,
            })?;
            endpoints.push((endpoint, bound));
        }
        let quic_addr = endpoints[0].1;

        let random = Arc::new(random::SystemRandom::new());
        let match_log =
            match config.match_log_path() {
                Some(path) => Some(match_log::MatchLog::open(&path, random.as_ref()).map_err(
                    |e| ServerError::Config(format!("match log {}: {e}", path.display())),
                )?),
                None => None,
            };
        let watchdog = watchdog::Watchdog::start().map_err(ServerError::Watchdog)?;
        let mode_list = modes.list();
        let default_mode = modes.default_mode().unwrap_or_default().to_owned();
        let directory = SharedDirectory::default();
        let node_ids = (0..endpoints.len())
            .map(|_| random::node_id(random.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        // With other machines, this process's room ids are a block of its own.
        let shared = match &config.redis {
            Some(url) => {
                let host = config.public_host().map_err(ServerError::Config)?;
                Some(cluster::shared::Shared::connect(url, host, &node_ids[0]).await?)
            }
            None => None,
        };
        let ids = lobby::Ids::rooms_from(shared.as_ref().map_or(1, |s| s.first_room_id()));
        let mut nodes = Vec::new();
        for ((_, bound), id) in endpoints.iter().zip(node_ids) {
            let lobby = lobby::spawn(lobby::LobbySetup {
                config: config.clone(),
                modes: modes.clone(),
                match_log: match_log.clone(),
                watchdog: watchdog.clone(),
                random: random.clone(),
                registry: Registry::new(id.clone(), directory.clone()),
                ids: ids.clone(),
            });
            let address = NodeAddress {
                host: None,
                quic_port: bound.port(),
                http_port: http_addr.port(),
                cert_sha256: cert_sha256.clone(),
            };
            nodes.push(LocalNode { id, lobby, address });
        }
        let cluster = Arc::new(Cluster::new(nodes, directory, default_mode));
        let (shutdown, down) = watch::channel(false);
        if let Some(shared) = shared {
            let remote = shared.run(cluster.clone(), down.clone()).await;
            cluster.join(remote);
        }
        let rates = Rates {
            tick_rate: config.tick_rate,
            snapshot_rate: config.effective_snapshot_rate(),
        };
        let gate = config.gate()?;
        if gate.requires_tickets() {
            tracing::info!("players need a ticket signed with the configured key");
        }
        let peer_limits = config.peer_limits();
        let peers = peers::Peers::new(peer_limits);
        let mut tasks = Vec::new();
        for (index, (endpoint, _)) in endpoints.into_iter().enumerate() {
            tasks.push(tokio::spawn(quic::serve(
                endpoint,
                (cluster.clone(), index, Reach::Home),
                peers.clone(),
                rates,
                gate.clone(),
                down.clone(),
            )));
        }
        let (layer, socketio) =
            transport::socketio::layer(cluster.clone(), peers.clone(), rates, gate);
        let origins = origin::Origins::new(&config.cors_origin);
        let app = http::router(cluster.clone(), peers, layer, mode_list, origins);
        let caps = accept::Caps {
            total: accept::connection_cap(),
            peer: peer_limits,
        };
        tasks.push(tokio::spawn(accept::serve(listener, app, caps, down)));
        Ok(Server {
            http_addr,
            quic_addr,
            cert_sha256,
            cluster,
            config,
            shutdown,
            tasks,
            socketio,
            match_log,
        })
    }

    /// The one line the contract says a ready server prints; `nodes=` says how many nodes
    /// serve behind the first one's QUIC address.
    pub fn listening_line(&self) -> String {
        format!(
            "listening http={} quic={} cert-sha256={} nodes={}",
            self.http_addr,
            self.quic_addr,
            self.cert_sha256,
            self.cluster.nodes().len()
        )
    }

    /// The server's snapshot of a room at a tick, while it is in the room's history: asked of
    /// the node hosting the room.
    pub async fn inspect(&self, room: RoomId, tick: Tick) -> Option<Snapshot> {
        match self.cluster.room_node(room, 0) {
            cluster::Place::Local(node) => self.cluster.node(node).lobby.inspect(room, tick).await,
            cluster::Place::Remote(_) => None,
        }
    }

    /// Reads one `key=value` field (`http`, `quic`, `cert-sha256`) of a `listening` line, as
    /// scripts and tests that start the server do.
    pub fn listening_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
    }

    /// Tells the Socket.IO players (`server_shutdown`, then a disconnect), closes the QUIC
    /// connections with code 3, stops accepting, waits for the listeners to end, and flushes
    /// the match log.
    pub async fn shutdown(self) {
        transport::socketio::farewell(&self.socketio).await;
        // QUIC connections are closed with code 3; HTTP stops accepting.
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        // Results recorded until now reach the disk before the process ends.
        if let Some(log) = &self.match_log
            && tokio::time::timeout(Duration::from_secs(1), log.flush())
                .await
                .is_err()
        {
            tracing::error!("the match log did not finish writing within 1 s");
        }
    }
}
