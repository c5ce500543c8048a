//! The connection as Bevy sees it: settings in, a status resource, lobby calls as messages
//! both ways, room events as messages, and the newest snapshots handed to replication.

use crate::bridge::{Bridge, Command, Update};
use bevy::prelude::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tickwire_client::{ClientConfig, Decoding, InputSender, Received, Trust};
use tickwire_protocol::{
    CreateRoom, Joined, PlayerId, Reply, Request, RoomEvent, RoomId, RoomState, Schema,
};

/// Where and as whom to connect. Insert it before adding the plugins; the connection starts at
/// startup.
#[derive(Resource, Clone)]
pub struct TickwireSettings {
    pub server: SocketAddr,
    pub trust: Trust,
    pub name: String,
    /// A reconnect token from an earlier session: resume that seat if the server still holds it.
    pub token: Option<String>,
    /// A ticket from the game's backend naming the player, for a server that asks for one.
    pub ticket: Option<String>,
    /// How often to measure the round trip (through the server's request path).
    pub ping_every: Duration,
    /// The schema of the game this app plays (a join into a room of another is refused). The
    /// arena's unless [`TickwireSettings::with_schema`] says otherwise.
    pub schema: Arc<Schema>,
}

impl TickwireSettings {
    pub fn new(server: SocketAddr, trust: Trust, name: impl Into<String>) -> Self {
        TickwireSettings {
            server,
            trust,
            name: name.into(),
            token: None,
            ticket: None,
            ping_every: Duration::from_secs(1),
            schema: tickwire_arena::view::schema(),
        }
    }

    /// Plays the game whose schema is `schema` (its crate's, e.g. `tickwire_standard::schema()`).
    pub fn with_schema(mut self, schema: Arc<Schema>) -> Self {
        self.schema = schema;
        self
    }
}

/// Where the connection stands.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub enum NetStatus {
    #[default]
    Connecting,
    Connected {
        player: PlayerId,
        tick_rate: u16,
        snapshot_rate: u16,
    },
    /// Could not connect, or the connection ended; why.
    Closed(String),
}

impl NetStatus {
    pub fn player(&self) -> Option<PlayerId> {
        match self {
            NetStatus::Connected { player, .. } => Some(*player),
            _ => None,
        }
    }
}

/// A lobby call the game makes.
#[derive(Message, Clone, Debug, PartialEq)]
pub enum LobbyRequest {
    List {
        mode: Option<String>,
    },
    Create(CreateRoom),
    Join(RoomId),
    JoinByCode(String),
    QuickJoin {
        mode: String,
    },
    Leave,
    Ready(bool),
    /// As the room's owner, start the countdown without waiting for everyone to be ready.
    Start,
    Chat(String),
}

impl LobbyRequest {
    fn into_request(self) -> Request {
        match self {
            LobbyRequest::List { mode } => Request::ListRooms {
                mode,
                open_only: false,
            },
            LobbyRequest::Create(create) => Request::CreateRoom(create),
            LobbyRequest::Join(room) => Request::JoinRoom { room },
            LobbyRequest::JoinByCode(code) => Request::JoinByCode { code },
            LobbyRequest::QuickJoin { mode } => Request::QuickJoin { mode },
            LobbyRequest::Leave => Request::LeaveRoom,
            LobbyRequest::Ready(ready) => Request::SetReady { ready },
            LobbyRequest::Start => Request::StartMatch,
            LobbyRequest::Chat(text) => Request::Chat { text },
        }
    }
}

/// The answer to a [`LobbyRequest`]: the server's reply, or why the call failed.
#[derive(Message, Clone, Debug)]
pub struct LobbyResponse {
    pub request: Request,
    pub result: Result<Reply, String>,
}

/// Something that happened in the player's room.
#[derive(Message, Clone, Debug, Deref)]
pub struct RoomEventMessage(pub RoomEvent);

/// A snapshot newer than any before, as it arrived (replication and prediction read these).
#[derive(Message, Clone, Debug, Deref)]
pub struct SnapshotMessage(pub Arc<Received>);

/// The room the player sits in, if any, kept current from replies and events (state, countdown,
/// ready, and the number of players seated).
#[derive(Resource, Clone, Debug, Default)]
pub struct CurrentRoom {
    pub joined: Option<Joined>,
    pub state: Option<RoomState>,
    /// Seconds left of a countdown or results pause, as last announced.
    pub seconds: u32,
    pub ready: bool,
}

/// Counters for a HUD and reports.
#[derive(Resource, Clone, Debug, Default)]
pub struct NetStats {
    pub snapshots: u64,
    /// Round trips measured so far, in milliseconds.
    pub rtt_ms: Vec<f64>,
    pub failed_calls: u64,
    pub dropped_commands: u64,
}

impl NetStats {
    pub fn last_rtt_ms(&self) -> Option<f64> {
        self.rtt_ms.last().copied()
    }

    /// The median round trip in milliseconds.
    pub fn rtt_ms_p50(&self) -> Option<f64> {
        if self.rtt_ms.is_empty() {
            return None;
        }
        let mut sorted = self.rtt_ms.clone();
        sorted.sort_by(f64::total_cmp);
        Some(sorted[sorted.len() / 2])
    }
}

/// Round trips kept for the median, at most (about two hours at one a second).
const MAX_RTT_SAMPLES: usize = 8192;

/// The bridge and the input sender, once connected. Only this module and prediction touch it.
#[derive(Resource)]
pub struct NetLink {
    bridge: Bridge,
    pub(crate) inputs: Option<InputSender>,
    ping: Timer,
}

impl NetLink {
    fn send(&self, command: Command, stats: &mut NetStats) {
        if !self.bridge.send(command) {
            stats.dropped_commands += 1;
        }
    }
}

/// The system that turns the network's updates into resources and messages; whatever reads
/// those messages in `PreUpdate` runs after it.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReceiveSet;

#[derive(Default)]
pub struct ConnectionPlugin;

impl Plugin for ConnectionPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<NetStatus>()
            .init_resource::<CurrentRoom>()
            .init_resource::<NetStats>()
            .add_message::<LobbyRequest>()
            .add_message::<LobbyResponse>()
            .add_message::<RoomEventMessage>()
            .add_message::<SnapshotMessage>()
            .add_systems(Startup, connect)
            .add_systems(PreUpdate, receive_updates.in_set(ReceiveSet))
            .add_systems(Update, (send_requests, ping));
    }
}

fn connect(
    mut commands: Commands,
    settings: Option<Res<TickwireSettings>>,
    mut status: ResMut<NetStatus>,
) {
    let Some(settings) = settings else {
        *status = NetStatus::Closed("no TickwireSettings resource: nothing to connect to".into());
        return;
    };
    let config = ClientConfig {
        server: settings.server,
        trust: settings.trust.clone(),
        name: settings.name.clone(),
        token: settings.token.clone(),
        ticket: settings.ticket.clone(),
        decoding: Decoding::Full(settings.schema.clone()),
    };
    match Bridge::start(config) {
        Ok(bridge) => {
            commands.insert_resource(NetLink {
                bridge,
                inputs: None,
                ping: Timer::new(settings.ping_every, TimerMode::Repeating),
            });
            *status = NetStatus::Connecting;
        }
        Err(e) => *status = NetStatus::Closed(format!("cannot start the network runtime: {e}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn receive_updates(
    link: Option<ResMut<NetLink>>,
    mut status: ResMut<NetStatus>,
    mut room: ResMut<CurrentRoom>,
    mut stats: ResMut<NetStats>,
    mut responses: MessageWriter<LobbyResponse>,
    mut events: MessageWriter<RoomEventMessage>,
    mut snapshots: MessageWriter<SnapshotMessage>,
) {
    let Some(mut link) = link else {
        return;
    };
    while let Some(update) = link.bridge.try_recv() {
        match update {
            Update::Connected { welcome, inputs } => {
                info!(player = welcome.player.0, "connected");
                *status = NetStatus::Connected {
                    player: welcome.player,
                    tick_rate: welcome.tick_rate,
                    snapshot_rate: welcome.snapshot_rate,
                };
                if let Some(joined) = welcome.resumed {
                    room.joined = Some(joined);
                }
                link.inputs = Some(inputs);
            }
            Update::Closed(why) => {
                warn!("connection closed: {why}");
                *status = NetStatus::Closed(why);
                link.inputs = None;
                *room = CurrentRoom::default();
            }
            Update::Reply { request, result } => {
                match (&request, &result) {
                    (_, Ok(Reply::Joined(joined))) => {
                        *room = CurrentRoom {
                            joined: Some(joined.clone()),
                            state: Some(joined.room.state),
                            ..CurrentRoom::default()
                        };
                    }
                    (_, Ok(Reply::Left)) => {
                        *room = CurrentRoom::default();
                        // Old inputs must not be repeated into the next room.
                        if let Some(inputs) = &mut link.inputs {
                            inputs.forget();
                        }
                    }
                    (Request::SetReady { ready }, Ok(_)) => room.ready = *ready,
                    (_, Err(e)) => {
                        warn!("{request:?} failed: {e}");
                        stats.failed_calls += 1;
                    }
                    _ => {}
                }
                responses.write(LobbyResponse { request, result });
            }
            Update::Event(event) => {
                match &event {
                    RoomEvent::StateChanged { state, seconds } => {
                        room.state = Some(*state);
                        room.seconds = *seconds;
                        if *state == RoomState::Waiting {
                            room.ready = false;
                        }
                    }
                    RoomEvent::RoomClosed | RoomEvent::SeatTaken => *room = CurrentRoom::default(),
                    // Keep the seat count current (the join reply already counted us).
                    RoomEvent::PlayerJoined { player, .. } if status.player() != Some(*player) => {
                        if let Some(joined) = &mut room.joined {
                            joined.room.players = joined.room.players.saturating_add(1);
                        }
                    }
                    RoomEvent::PlayerLeft { .. } => {
                        if let Some(joined) = &mut room.joined {
                            joined.room.players = joined.room.players.saturating_sub(1);
                        }
                    }
                    _ => {}
                }
                events.write(RoomEventMessage(event));
            }
            Update::Snapshot(received) => {
                stats.snapshots += 1;
                snapshots.write(SnapshotMessage(received));
            }
            Update::Rtt(rtt) => {
                if stats.rtt_ms.len() < MAX_RTT_SAMPLES {
                    stats.rtt_ms.push(rtt.as_secs_f64() * 1000.0);
                }
            }
        }
    }
}

fn send_requests(
    link: Option<Res<NetLink>>,
    mut requests: MessageReader<LobbyRequest>,
    mut stats: ResMut<NetStats>,
) {
    let Some(link) = link else {
        requests.clear();
        return;
    };
    for request in requests.read() {
        link.send(Command::Call(request.clone().into_request()), &mut stats);
    }
}

fn ping(
    link: Option<ResMut<NetLink>>,
    status: Res<NetStatus>,
    time: Res<Time>,
    mut stats: ResMut<NetStats>,
) {
    let Some(mut link) = link else {
        return;
    };
    if link.ping.tick(time.delta()).just_finished() && status.player().is_some() {
        link.send(Command::Ping, &mut stats);
    }
}
