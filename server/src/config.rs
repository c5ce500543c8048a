//! Server configuration: the command line (and environment) of `tickwire-server`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "tickwire-server",
    version,
    about = "Authoritative multiplayer game state server"
)]
pub struct ServerConfig {
    /// HTTP address (health, room list). Port 0 picks a free port.
    #[arg(long, env = "TICKWIRE_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// QUIC address (UDP). Port 0 picks a free port.
    #[arg(long, env = "TICKWIRE_QUIC", default_value = "127.0.0.1:4433")]
    pub quic: SocketAddr,
    /// Nodes this process runs, each on a core of its own: its own QUIC endpoint (on the
    /// ports following `--quic`'s, or free ones with port 0) and its own rooms; they share the
    /// HTTP port and one lobby. Default: one per core.
    #[arg(long, env = "TICKWIRE_NODES", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub nodes: Option<u16>,
    /// Share one lobby with the servers of other machines through this Redis
    /// (`redis://HOST:PORT/DB`): listings, quick joins, codes and reconnects then see every
    /// machine's rooms, and players are sent to the machine that hosts theirs.
    #[arg(long, env = "TICKWIRE_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// The host name or IP other machines' players reach this one by (with `--redis`); by
    /// default the IP `--quic` binds, which then must not be 0.0.0.0 or [::].
    #[arg(long, env = "TICKWIRE_PUBLIC_HOST", value_name = "HOST")]
    pub public_host: Option<String>,
    /// Simulation steps per second.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(1..=240))]
    pub tick_rate: u16,
    /// Snapshots per second sent to each player; at most the tick rate.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(1..=240))]
    pub snapshot_rate: u16,
    /// Default and upper bound of players per room.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub max_players: u8,
    /// Connections one address (an IPv6 address by its /64) may hold at once, over both
    /// transports. Its other allowances follow from it (`peers::PeerLimits`): new
    /// connections per second (an eighth of this), lobby calls (a quarter of this many
    /// connections' worth), open rooms (a quarter of this; a quarter again with server bots),
    /// TCP connections and bytes read on the HTTP port. Raise it for load tests that run many
    /// clients from one machine.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_address_connections: u32,
    /// A web page origin (`https://game.example`) besides this server's own that may use it
    /// from a browser (Socket.IO, `/api/*`); repeat for more, `*` for any. Without it only the
    /// pages this server serves get in; clients that are not browsers are not affected.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// Rooms this server hosts at most.
    #[arg(long, default_value_t = 1000)]
    pub max_rooms: usize,
    /// Seconds of countdown once everyone is ready (or the owner starts).
    #[arg(long, default_value_t = 3)]
    pub countdown_secs: u32,
    /// Seconds the results stay up before the room waits for the next match.
    #[arg(long, default_value_t = 5)]
    pub results_secs: u32,
    /// A player whose connection drops keeps its seat and entity this long (0: leaves at once).
    #[arg(long, default_value_t = 30)]
    pub reconnect_grace_secs: u64,
    /// An empty room closes after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub empty_room_secs: u64,
    /// A QUIC connection that hears nothing for this long is closed.
    #[arg(long, default_value_t = 15)]
    pub idle_timeout_secs: u64,
    /// Folder for the server's files (the match log).
    #[arg(long, env = "TICKWIRE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Where finished matches are appended as JSON lines; default DATA_DIR/matches.jsonl.
    #[arg(long)]
    pub match_log: Option<PathBuf>,
    /// Do not write a match log.
    #[arg(long, conflicts_with = "match_log")]
    pub no_match_log: bool,
    /// PEM certificate chain for QUIC; without it a self-signed one is made at start-up.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key matching --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Let in only players with a ticket signed (HS256) with the key in this file, shared
    /// with the game's backend; see docs/PROTOCOL.md, "Tickets". The key may come from the
    /// environment instead (`TICKWIRE_AUTH_KEY`, read by the server binary). Without either,
    /// anyone may connect.
    #[arg(long, env = "TICKWIRE_AUTH_KEY_FILE")]
    pub auth_key_file: Option<PathBuf>,
    /// The ticket key itself, for a server built in code (the binary fills it from
    /// `TICKWIRE_AUTH_KEY`); never a command-line flag, where other users could read it.
    #[arg(skip)]
    pub auth_key: Option<Vec<u8>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::parse_from(["tickwire-server"])
    }
}

impl ServerConfig {
    /// Who may connect: players with a ticket when a key is set (the key's bytes, else the
    /// key file), anyone otherwise.
    pub fn gate(&self) -> Result<crate::auth::Gate, crate::auth::KeyError> {
        use crate::auth::Gate;
        match (&self.auth_key, &self.auth_key_file) {
            (Some(key), _) => Gate::tickets(key),
            (None, Some(path)) => Gate::from_key_file(path),
            (None, None) => Ok(Gate::Open),
        }
    }

    /// How many nodes to run: `--nodes`, or one per core the process may use.
    pub fn node_count(&self) -> usize {
        match self.nodes {
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The QUIC address of node `index`: `--quic`'s port plus the index, or a free port.
    pub fn node_quic(&self, index: usize) -> Result<SocketAddr, String> {
        let mut addr = self.quic;
        if addr.port() != 0 {
            let port = u16::try_from(addr.port() as usize + index)
                .map_err(|_| format!("no QUIC port left for node {index} after {addr}"))?;
            addr.set_port(port);
        }
        Ok(addr)
    }

    /// The host other machines' players are sent to (see `--public-host`).
    pub fn public_host(&self) -> Result<String, String> {
        match &self.public_host {
            Some(host) => Ok(host.clone()),
            None if self.quic.ip().is_unspecified() => Err(format!(
                "--quic {} binds every address: say which one other machines reach with --public-host",
                self.quic
            )),
            None => Ok(self.quic.ip().to_string()),
        }
    }

    /// What one address may do, all derived from `per_address_connections`.
    pub fn peer_limits(&self) -> crate::peers::PeerLimits {
        crate::peers::PeerLimits {
            connections: self.per_address_connections,
        }
    }

    /// A configuration for tests and in-process servers: both listeners on 127.0.0.1, port 0,
    /// and no match log (set `match_log` to have one).
    pub fn loopback() -> Self {
        ServerConfig {
            http: "127.0.0.1:0".parse().expect("literal address"),
            quic: "127.0.0.1:0".parse().expect("literal address"),
            no_match_log: true,
            ..ServerConfig::default()
        }
    }

    /// The match log's path, unless it is turned off.
    pub fn match_log_path(&self) -> Option<PathBuf> {
        match (&self.match_log, self.no_match_log) {
            (Some(path), _) => Some(path.clone()),
            (None, true) => None,
            (None, false) => Some(self.data_dir.join("matches.jsonl")),
        }
    }

    pub fn tick_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.tick_rate as f64)
    }

    /// Every how many ticks a snapshot goes out.
    pub fn ticks_per_snapshot(&self) -> u32 {
        (self.tick_rate / self.snapshot_rate.min(self.tick_rate)).max(1) as u32
    }

    /// The snapshot rate actually achieved with a whole number of ticks per snapshot.
    pub fn effective_snapshot_rate(&self) -> u16 {
        (self.tick_rate as u32 / self.ticks_per_snapshot()) as u16
    }
}
