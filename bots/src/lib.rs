//! Headless bots for tickwire: bot matches and load against a server, local (in-process) or
//! remote, ending with a report (one JSON line with `--json`). The `tickwire-bots` binary plays
//! the built-in games; a game of one's own gets the same bots from a binary of a few lines
//! ([`Games::game`], [`run`]), as `examples/coins` shows.

mod fleet;
mod games;
mod report;
mod swarm;

pub use games::{Ai, Games, Playbook};
pub use report::Report;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use swarm::{Progress, SwarmConfig, Target};
use tickwire_client::Trust;
use tickwire_server::Server;
use tickwire_server::config::ServerConfig;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Quic,
    Socketio,
}

/// The bots' own flags (a binary adds its games' flags beside them).
#[derive(Args, Debug, Clone)]
pub struct BotArgs {
    /// Start an in-process server on 127.0.0.1 and play against it.
    #[arg(long, conflicts_with_all = ["server", "url"])]
    pub local: bool,
    /// QUIC address of a running server.
    #[arg(long, requires = "trust")]
    pub server: Option<SocketAddr>,
    /// SHA-256 of the server's certificate, as its `listening` line prints it.
    #[arg(long, group = "trust")]
    pub cert_sha256: Option<String>,
    /// Accept any server certificate (local development only; prints a warning).
    #[arg(long, group = "trust")]
    pub insecure: bool,
    /// HTTP URL of a running server (Socket.IO transport), http://IP:PORT.
    #[arg(long, conflicts_with = "server")]
    pub url: Option<String>,
    #[arg(long, value_enum, default_value = "quic")]
    pub transport: Transport,
    #[arg(long, default_value_t = 8)]
    pub bots: usize,
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// The mode to play (default: the first one the binary registers).
    #[arg(long)]
    pub mode: Option<String>,
    /// Join this existing room (by id) instead of creating rooms.
    #[arg(long)]
    pub join: Option<u32>,
    /// Seconds to play.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Load-generator bots: the game's AI with an input each `--input-hz` tick, each snapshot
    /// acknowledged from its header without decoding the world (so the AI sees nobody).
    /// Over QUIC they run as a fleet of tasks that each drive whole rooms' connections over one
    /// socket (`fleet.rs`).
    #[arg(long)]
    pub light: bool,
    /// Inputs each bot sends per second.
    #[arg(long, default_value_t = 30.0)]
    pub input_hz: f64,
    /// With --local: the server's simulation rate.
    #[arg(long, default_value_t = 60)]
    pub tick_rate: u16,
    /// With --local: the server's snapshot rate.
    #[arg(long, default_value_t = 60)]
    pub snapshot_rate: u16,
    /// With --local: seconds of countdown before a match.
    #[arg(long, default_value_t = 3)]
    pub countdown_secs: u32,
    /// With --local: seconds the results stay up.
    #[arg(long, default_value_t = 5)]
    pub results_secs: u32,
    /// Print the report as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Plays `args` with the modes `games` knows, and prints the report.
pub async fn run(args: BotArgs, games: Games) -> anyhow::Result<()> {
    let json = args.json;
    let report = play(args, games).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.table());
    }
    Ok(())
}

/// Plays `args` with the modes `games` knows and returns the report (what [`run`] prints).
pub async fn play(args: BotArgs, games: Games) -> anyhow::Result<Report> {
    if args.bots == 0 || args.rooms == 0 {
        bail!("--bots and --rooms must be at least 1");
    }
    let rates_ok = (0.0..=240.0).contains(&args.input_hz) && args.input_hz > 0.0;
    if !rates_ok || args.duration.is_nan() || args.duration <= 0.0 {
        bail!("--input-hz must be in (0, 240] and --duration positive");
    }

    let Some(mode) = args.mode.clone().or_else(|| games.default_mode()) else {
        bail!("no game to play: the binary registered none");
    };
    let mut local = None;
    let target = if args.local {
        let config = ServerConfig {
            tick_rate: args.tick_rate,
            snapshot_rate: args.snapshot_rate,
            countdown_secs: args.countdown_secs,
            results_secs: args.results_secs,
            max_players: ServerConfig::default()
                .max_players
                .max(args.bots.div_ceil(args.rooms).min(64) as u8),
            // Every bot connects from this machine's one address.
            per_address_connections: ServerConfig::default().per_address_connections.max(
                u32::try_from(args.bots)
                    .unwrap_or(u32::MAX)
                    .saturating_mul(2),
            ),
            ..ServerConfig::loopback()
        };
        let s = games
            .host(Server::builder(config))
            .start()
            .await
            .context("starting the local server")?;
        let target = match args.transport {
            Transport::Quic => Target::Quic {
                server: s.quic_addr,
                trust: Trust::pinned_hex(&s.cert_sha256)?,
            },
            Transport::Socketio => Target::SocketIo {
                url: format!("http://{}", s.http_addr),
            },
        };
        local = Some(s);
        target
    } else if args.transport == Transport::Socketio || args.url.is_some() {
        let Some(url) = args.url.clone() else {
            bail!("--transport socketio needs --url http://IP:PORT (or --local)");
        };
        Target::SocketIo { url }
    } else {
        let Some(server) = args.server else {
            bail!("give --local, --server IP:PORT with --cert-sha256 HEX, or --url http://IP:PORT");
        };
        let trust = match (&args.cert_sha256, args.insecure) {
            (Some(hex), _) => Trust::pinned_hex(hex)?,
            (None, true) => {
                eprintln!("WARNING: --insecure: the server's certificate is not verified.");
                Trust::Insecure
            }
            (None, false) => bail!("--server needs --cert-sha256 HEX (or --insecure)"),
        };
        Target::Quic { server, trust }
    };

    let transport = target.transport();
    let config = Arc::new(SwarmConfig {
        target,
        bots: args.bots,
        rooms: args.rooms,
        playbook: games.playbook(&mode)?,
        mode,
        duration: Duration::from_secs_f64(args.duration),
        input_hz: args.input_hz,
        join: args.join.map(tickwire_protocol::RoomId),
        light: args.light,
    });
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let display = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(progress.clone(), args.bots, args.duration)));
    // Light QUIC bots run as a fleet of shards over quinn's state machines (see `fleet`).
    let outcomes = match (&config.target, args.light) {
        (Target::Quic { server, trust }, true) => {
            let (server, trust) = (*server, trust.clone());
            fleet::run(config, progress, server, &trust).await?
        }
        _ => swarm::run(config, progress).await,
    };
    if let Some(d) = display {
        d.abort();
        eprintln!();
    }
    let report = report::Report::new(
        transport,
        args.bots,
        args.rooms,
        started.elapsed().as_secs_f64(),
        &outcomes,
    );
    if let Some(s) = local {
        s.shutdown().await;
    }
    Ok(report)
}

async fn show_progress(progress: Arc<Progress>, bots: usize, duration: f64) {
    let started = Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{:5.1}/{duration:.0}s  connected {}/{bots}  snapshots {}  errors {}   ",
            started.elapsed().as_secs_f64(),
            progress.connected.load(Ordering::Relaxed),
            progress.snapshots.load(Ordering::Relaxed),
            progress.errors.load(Ordering::Relaxed),
        );
        let _ = err.flush();
    }
}
