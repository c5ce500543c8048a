//! The command line: where to connect, what to do in the lobby, and how to run.

use anyhow::{Context, bail};
use clap::Parser;
use std::net::SocketAddr;
use tickwire_client::Trust;
use tickwire_protocol::{CreateRoom, RoomId};

#[derive(Parser, Debug)]
#[command(
    name = "tickwire-client-bevy",
    version,
    about = "Play the arena on a tickwire server."
)]
pub struct Args {
    /// The server's QUIC address (its `listening` line says `quic=IP:PORT`).
    #[arg(long, env = "TICKWIRE_SERVER")]
    pub server: SocketAddr,
    /// The SHA-256 of the server's certificate, hex (its `listening` line says `cert-sha256=`).
    #[arg(
        long,
        env = "TICKWIRE_CERT_SHA256",
        required_unless_present = "insecure"
    )]
    pub cert_sha256: Option<String>,
    /// Trust any certificate. Only for local experiments: anyone on the path can impersonate
    /// the server.
    #[arg(long, conflicts_with = "cert_sha256")]
    pub insecure: bool,
    #[arg(long, default_value = "player")]
    pub name: String,
    /// A ticket from the game's backend, for a server that asks for one (better passed in the
    /// environment, where other users of the machine cannot read it).
    #[arg(long, env = "TICKWIRE_TICKET", hide_env_values = true)]
    pub ticket: Option<String>,
    /// Join the fullest open public room of this mode (the default, with `arena`).
    #[arg(long, value_name = "MODE")]
    pub quick: Option<String>,
    /// Create a room with this name and join it.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["quick", "join", "code", "list"])]
    pub create: Option<String>,
    /// With --create: an unlisted room, joined by its code (printed when created).
    #[arg(long, requires = "create")]
    pub private: bool,
    /// With --create: server bots seated in the room.
    #[arg(long, requires = "create", default_value_t = 0)]
    pub bots: u8,
    /// With --create: the room's seats.
    #[arg(long, requires = "create", default_value_t = 16)]
    pub max_players: u8,
    /// Join a room by id.
    #[arg(long, value_name = "ROOM", conflicts_with_all = ["quick", "code", "list"])]
    pub join: Option<u32>,
    /// Join a private room by its code.
    #[arg(long, conflicts_with_all = ["quick", "list"])]
    pub code: Option<String>,
    /// Print the rooms and exit.
    #[arg(long, conflicts_with = "quick")]
    pub list: bool,
    /// Say ready as soon as seated (and again after each match). Bots always do.
    #[arg(long)]
    pub ready: bool,
    /// No window, no renderer: the same app and netcode, for tests and bot matches.
    #[arg(long)]
    pub headless: bool,
    /// A bot plays instead of the keyboard and mouse.
    #[arg(long)]
    pub bot: bool,
    /// Stop after this many seconds (headless runs default to 10).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Print the report as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Save a screenshot of the window to this PNG after --duration seconds (default 5), then
    /// exit.
    #[arg(long, value_name = "PATH", conflicts_with = "headless")]
    pub screenshot: Option<std::path::PathBuf>,
    /// Seed of the bot's choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What to do once connected.
#[derive(Clone, Debug)]
pub enum Plan {
    Quick(String),
    Create(CreateRoom),
    Join(RoomId),
    Code(String),
    List,
}

impl Args {
    pub fn trust(&self) -> anyhow::Result<Trust> {
        if self.insecure {
            eprintln!(
                "WARNING: --insecure trusts any certificate; anyone on the path can impersonate the server"
            );
            return Ok(Trust::Insecure);
        }
        let Some(hex) = &self.cert_sha256 else {
            bail!("give --cert-sha256 (or, for local experiments only, --insecure)");
        };
        Trust::pinned_hex(hex).context("--cert-sha256 must be 64 hex digits")
    }

    pub fn plan(&self) -> Plan {
        if self.list {
            Plan::List
        } else if let Some(name) = &self.create {
            Plan::Create(CreateRoom {
                name: name.clone(),
                mode: "arena".into(),
                max_players: self.max_players,
                private: self.private,
                bots: self.bots,
                fill_bots: false,
            })
        } else if let Some(room) = self.join {
            Plan::Join(RoomId(room))
        } else if let Some(code) = &self.code {
            Plan::Code(code.clone())
        } else {
            Plan::Quick(self.quick.clone().unwrap_or_else(|| "arena".into()))
        }
    }

    pub fn duration(&self) -> Option<f64> {
        match (self.duration, self.headless, self.screenshot.is_some()) {
            (Some(d), _, _) => Some(d),
            (None, true, _) => Some(10.0),
            (None, false, true) => Some(5.0),
            (None, false, false) => None,
        }
    }
}
