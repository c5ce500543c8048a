//! The lobby: the one owner of the room registry. It runs as a task; sessions talk to it through
//! a [`LobbyHandle`] (a bounded channel with a reply per call).
//!
//! The lobby keeps each room's seat list, so "is there space" is answered in one place. A join is
//! checked and the seat reserved here, then handed to the room task, which answers the session
//! directly: the lobby never waits on a room.

use crate::cluster::{Listing, Maker, RESERVATION, Registry, directory};
use crate::config::ServerConfig;
use crate::game::Identity;
use crate::match_log::MatchLog;
use crate::modes::Modes;
use crate::peers::PeerKey;
use crate::random::{self, RandomSource};
use crate::room::sim::Timing;
use crate::room::task::{JoinRequest, RoomLabel, RoomReport, RoomSetup, RoomStatus, StatusFeed};
use crate::room::{self, Admitted, RoomCommand, RoomHandle, RoomLink, RoomSim};
use crate::watchdog::{Heartbeat, Watchdog, Watched};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tickwire_protocol::{
    CreateRoom, ErrorBody, ErrorCode, Joined, NetId, PlayerId, RoomId, RoomInfo, RoomState,
    Snapshot, Tick, normalise_name,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const LOBBY_QUEUE: usize = 1024;
/// Status changes rooms push; a room offers a change again when this is full.
const STATUS_QUEUE: usize = 1024;

pub enum LobbyCommand {
    Create {
        request: CreateRoom,
        member: Member,
    },
    Join {
        room: RoomId,
        member: Member,
    },
    JoinByCode {
        code: String,
        member: Member,
    },
    Spectate {
        room: Option<RoomId>,
        code: Option<String>,
        member: Member,
    },
    QuickJoin {
        mode: String,
        member: Member,
    },
    /// The player left its room on purpose.
    Leave {
        room: RoomId,
        player: PlayerId,
        link: u64,
    },
    /// The player's connection ended: its seat waits for it (the reconnect grace).
    Dropped {
        room: RoomId,
        player: PlayerId,
        link: u64,
    },
    /// The seat was taken for a player sent here from another node, who has not connected
    /// yet: it waits for [`RESERVATION`].
    Reserved {
        room: RoomId,
        player: PlayerId,
        link: u64,
    },
    /// A hello with a reconnect token: back into the seat, if it is still held.
    Resume {
        token: String,
        link_id: u64,
        link: RoomLink,
        /// Whose ticket the new connection holds (on a server that asks for tickets): a seat
        /// is taken back only by the player it was given to.
        subject: Option<String>,
        found: oneshot::Sender<Result<Option<(PlayerId, String)>, ErrorBody>>,
        reply: oneshot::Sender<Result<Admitted, ErrorBody>>,
    },
    Inspect {
        room: RoomId,
        tick: Tick,
        reply: oneshot::Sender<Option<Snapshot>>,
    },
}

/// A call that seats a player (or lets it watch): what a session asks of a lobby, and what one
/// node asks of another's for a player it sends there.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SeatCall {
    Create(CreateRoom),
    Join(RoomId),
    Code(String),
    Quick(String),
    Spectate {
        room: Option<RoomId>,
        code: Option<String>,
    },
}

impl SeatCall {
    /// The lobby command that carries this call for `member`.
    pub fn command(self, member: Member) -> LobbyCommand {
        match self {
            SeatCall::Create(request) => LobbyCommand::Create { request, member },
            SeatCall::Join(room) => LobbyCommand::Join { room, member },
            SeatCall::Code(code) => LobbyCommand::JoinByCode { code, member },
            SeatCall::Quick(mode) => LobbyCommand::QuickJoin { mode, member },
            SeatCall::Spectate { room, code } => LobbyCommand::Spectate { room, code, member },
        }
    }

    /// A spectator holds no seat to reserve.
    pub fn spectates(&self) -> bool {
        matches!(self, SeatCall::Spectate { .. })
    }
}

/// A player asking for a seat, with its channels and where to send the answer.
pub struct Member {
    pub player: PlayerId,
    pub name: String,
    /// Who the player is, on a server that asks for tickets.
    pub identity: Option<Arc<Identity>>,
    /// The address the player connects from: rooms it creates count against it.
    pub origin: PeerKey,
    /// Which connection of the player this is; a stale connection's leave is ignored.
    pub link_id: u64,
    pub link: RoomLink,
    pub reply: oneshot::Sender<Result<Admitted, ErrorBody>>,
}

#[derive(Clone)]
pub struct LobbyHandle {
    tx: mpsc::Sender<LobbyCommand>,
    ids: Ids,
}

/// Numbers the nodes of a process share, so a player or a room keeps its id whichever node's
/// lobby it meets.
#[derive(Clone)]
pub struct Ids {
    players: Arc<AtomicU32>,
    rooms: Arc<AtomicU32>,
    links: Arc<AtomicU64>,
    /// Rooms open on all the process's nodes, against `--max-rooms`. Two nodes creating at the
    /// same moment may both pass the check: the cap is exceeded by at most the nodes less one.
    open_rooms: Arc<AtomicUsize>,
}

impl Default for Ids {
    fn default() -> Self {
        Ids::rooms_from(1)
    }
}

impl Ids {
    /// Counters whose room ids start at `first` (a process's block, with a shared directory).
    pub fn rooms_from(first: u32) -> Ids {
        Ids {
            players: Arc::new(AtomicU32::new(1)),
            rooms: Arc::new(AtomicU32::new(first)),
            links: Arc::new(AtomicU64::new(1)),
            open_rooms: Arc::new(AtomicUsize::new(0)),
        }
    }
}

fn lobby_gone() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "server is shutting down")
}

impl LobbyHandle {
    pub fn new_player_id(&self) -> PlayerId {
        PlayerId(self.ids.players.fetch_add(1, Ordering::Relaxed))
    }

    /// A number for one connection's session, unique for the server's lifetime.
    pub fn new_link_id(&self) -> u64 {
        self.ids.links.fetch_add(1, Ordering::Relaxed)
    }

    fn try_command(&self, cmd: LobbyCommand, what: &str) {
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            // Lost, a disconnect would leave its seat held as if connected until the room
            // closed. It waits for room in a task of its own: one per connection that ended
            // while the queue was full, so never more tasks than connections.
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        tracing::debug!("lobby queue full; {what} waits its turn");
                        let tx = self.tx.clone();
                        runtime.spawn(async move {
                            let _ = tx.send(cmd).await;
                        });
                    }
                    Err(_) => tracing::warn!("lobby queue full outside a runtime; {what} lost"),
                }
            }
            // The lobby has stopped (the server is shutting down): nothing is waiting for it.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!("lobby stopped; {what} not passed on");
            }
        }
    }

    /// The connection ended (a session's Drop cannot wait): the seat waits for a reconnect.
    pub fn try_dropped(&self, room: RoomId, player: PlayerId, link: u64) {
        self.try_command(LobbyCommand::Dropped { room, player, link }, "disconnect");
    }

    pub async fn send(&self, cmd: LobbyCommand) -> Result<(), ErrorBody> {
        self.tx.send(cmd).await.map_err(|_| lobby_gone())
    }

    /// A seat reserved for a player sent from another node now waits for it to connect.
    pub fn try_reserved(&self, room: RoomId, player: PlayerId, link: u64) {
        self.try_command(LobbyCommand::Reserved { room, player, link }, "reservation");
    }

    /// For paths that cannot wait (a session's Drop).
    pub fn try_leave(&self, room: RoomId, player: PlayerId, link: u64) {
        self.try_command(LobbyCommand::Leave { room, player, link }, "leave");
    }

    /// The server's snapshot of a room at a tick, while it is in the room's history.
    pub async fn inspect(&self, room: RoomId, tick: Tick) -> Option<Snapshot> {
        let (reply, rx) = oneshot::channel();
        self.send(LobbyCommand::Inspect { room, tick, reply })
            .await
            .ok()?;
        rx.await.ok().flatten()
    }
}

struct RoomEntry {
    info: RoomInfo,
    /// Watching, not seated.
    spectators: BTreeSet<PlayerId>,
    /// The join code of a private room.
    code: Option<String>,
    members: BTreeSet<PlayerId>,
    handle: RoomHandle,
    /// The lobby's copy of what the room last pushed.
    status: RoomStatus,
    empty_since: Option<Instant>,
    /// Who made the room (quick-join included): rooms count against their maker.
    maker: Maker,
    /// Made with server bots (seated or filling): the costly kind, limited more tightly.
    with_bots: bool,
}

/// Open rooms one player may have made, and of those with server bots. An address may have
/// made a quarter of its connections' worth (`--per-address-connections`: 16 by default, so one
/// address cannot fill the default cap of 1,000), a quarter of those with bots.
const ROOMS_PER_PLAYER: usize = 2;
const BOT_ROOMS_PER_PLAYER: usize = 1;

/// A seated player, as the lobby remembers it for reconnection.
struct SeatRecord {
    room: RoomId,
    name: String,
    /// The ticket's subject the seat was given to, on a server that asks for tickets.
    subject: Option<String>,
    token: String,
    /// The connection currently holding the seat.
    link: u64,
    /// Set while disconnected: when the seat is given up.
    away_until: Option<Instant>,
}

struct Lobby {
    config: Arc<ServerConfig>,
    seats: HashMap<PlayerId, SeatRecord>,
    tokens: HashMap<String, PlayerId>,
    ids: Ids,
    match_log: Option<MatchLog>,
    rooms: BTreeMap<RoomId, RoomEntry>,
    codes: HashMap<String, RoomId>,
    /// This node's rooms in the directory every node reads.
    registry: Registry,
    /// Given to each room for its status pushes.
    status_feed: StatusFeed,
    watchdog: Watchdog,
    heartbeat: Arc<Heartbeat>,
    /// Codes and tokens come from here; a failure refuses the call.
    random: Arc<dyn RandomSource>,
    modes: Modes,
}

/// What the lobby is started with.
pub struct LobbySetup {
    pub config: Arc<ServerConfig>,
    pub modes: Modes,
    pub match_log: Option<MatchLog>,
    pub watchdog: Watchdog,
    pub random: Arc<dyn RandomSource>,
    pub registry: Registry,
    pub ids: Ids,
}

/// Starts the lobby task; it ends when every handle is dropped.
pub fn spawn(setup: LobbySetup) -> LobbyHandle {
    let LobbySetup {
        config,
        modes,
        match_log,
        watchdog,
        random,
        registry,
        ids,
    } = setup;
    let (tx, rx) = mpsc::channel(LOBBY_QUEUE);
    let (status_feed, statuses) = mpsc::channel(STATUS_QUEUE);
    let heartbeat = watchdog.heartbeat(Watched {
        what: format!("the lobby of node {}", registry.node),
        kind: "lobby".into(),
    });
    let lobby = Lobby {
        config,
        seats: HashMap::new(),
        tokens: HashMap::new(),
        ids: ids.clone(),
        match_log,
        rooms: BTreeMap::new(),
        codes: HashMap::new(),
        registry,
        status_feed,
        watchdog,
        heartbeat,
        random,
        modes,
    };
    tokio::spawn(lobby.run(rx, statuses));
    LobbyHandle { tx, ids }
}

impl Lobby {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<LobbyCommand>,
        mut statuses: mpsc::Receiver<(RoomId, RoomReport)>,
    ) {
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Statuses first: a call answered after a room pushed a change sees it.
                biased;
                // The lobby holds a sender itself, so this never ends.
                Some((room, report)) = statuses.recv() => match report {
                    RoomReport::Status(status) => self.status(room, status),
                    RoomReport::Refused(player) => self.refused(room, player),
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = sweep.tick() => {
                    self.heartbeat.beat();
                    self.expire_disconnected();
                    self.close_empty_rooms();
                    self.publish_room_counts();
                }
            }
        }
    }

    fn handle(&mut self, cmd: LobbyCommand) {
        match cmd {
            LobbyCommand::Create { request, member } => {
                match self.create(request, maker(&member)) {
                    Ok(room) => self.join(room, member),
                    Err(e) => {
                        let _ = member.reply.send(Err(e));
                    }
                }
            }
            LobbyCommand::Join { room, member } => {
                let target = self.public_room(room);
                self.seat_or_refuse(target, member, false)
            }
            LobbyCommand::Spectate { room, code, member } => {
                let target = match (room, code) {
                    (Some(room), _) => self.public_room(room),
                    (None, Some(code)) => self.room_by_code(&code),
                    (None, None) => Err(ErrorBody::new(
                        ErrorCode::BadRequest,
                        "spectate needs a room id or a code",
                    )),
                };
                self.seat_or_refuse(target, member, true)
            }
            LobbyCommand::JoinByCode { code, member } => {
                let target = self.room_by_code(&code);
                self.seat_or_refuse(target, member, false)
            }
            LobbyCommand::QuickJoin { mode, member } => {
                match self.quick_room(&mode, maker(&member)) {
                    Ok(room) => self.join(room, member),
                    Err(e) => {
                        let _ = member.reply.send(Err(e));
                    }
                }
            }
            LobbyCommand::Leave { room, player, link } => {
                if self.current_link(player, link) {
                    self.forget_seat(player);
                    self.leave(room, player);
                }
            }
            LobbyCommand::Dropped { room, player, link } => {
                let grace = Duration::from_secs(self.config.reconnect_grace_secs);
                self.dropped(room, player, link, grace)
            }
            LobbyCommand::Reserved { room, player, link } => {
                self.dropped(room, player, link, RESERVATION)
            }
            LobbyCommand::Resume {
                token,
                link_id,
                link,
                subject,
                found,
                reply,
            } => self.resume(&token, link_id, link, subject, found, reply),
            LobbyCommand::Inspect { room, tick, reply } => match self.rooms.get(&room) {
                Some(entry) => {
                    let cmd = RoomCommand::Inspect { tick, reply };
                    let _ = entry.handle.commands.try_send(cmd);
                }
                None => {
                    let _ = reply.send(None);
                }
            },
        }
    }

    fn info(entry: &RoomEntry) -> RoomInfo {
        RoomInfo {
            players: Self::seated(entry) as u8,
            state: entry.status.state,
            ..entry.info.clone()
        }
    }

    /// Seats taken, by players and server bots.
    fn seated(entry: &RoomEntry) -> usize {
        entry.members.len() + entry.status.bots
    }

    /// A free seat, and the match not yet under way.
    fn open(e: &RoomEntry) -> bool {
        directory::takes_players(Self::seated(e), e.info.max_players, e.status.state)
    }

    /// Refuses a room `maker` may not make now: over the server's cap, or over its player's or
    /// its address's share of open rooms, or of rooms with server bots.
    fn may_make(&self, maker: Maker, with_bots: bool) -> Result<(), ErrorBody> {
        if self.ids.open_rooms.load(Ordering::Relaxed) >= self.config.max_rooms {
            return Err(ErrorBody::new(
                ErrorCode::ServerFull,
                "this server hosts as many rooms as it may",
            ));
        }
        // Counted over every node: a player cannot make more by being placed on another.
        let made = self.registry.made_by(maker);
        let (player, address) = (made.player, made.address);
        let peer = self.config.peer_limits();
        let (rooms, bot_rooms) = ("rooms", "rooms with server bots");
        let limits = [
            (player.0, ROOMS_PER_PLAYER, "you have", rooms),
            (address.0, peer.rooms(), "your address has", rooms),
            (player.1, BOT_ROOMS_PER_PLAYER, "you have", bot_rooms),
            (address.1, peer.bot_rooms(), "your address has", bot_rooms),
        ];
        let checked = if with_bots { &limits[..] } else { &limits[..2] };
        if let Some((made, _, whose, kind)) = checked.iter().find(|(made, most, ..)| made >= most) {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "{whose} made {made} {kind} still open, the most allowed; wait for one to close"
                ),
            ));
        }
        Ok(())
    }

    fn create(&mut self, mut req: CreateRoom, maker: Maker) -> Result<RoomId, ErrorBody> {
        req.name = normalise_name(&req.name)?;
        req.mode = self.known_mode(&req.mode)?;
        let max_players = match req.max_players {
            0 => self.config.max_players,
            n if n <= self.config.max_players => n,
            n => {
                return Err(ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!(
                        "max players {n} is over this server's limit of {}",
                        self.config.max_players
                    ),
                ));
            }
        };
        if req.bots as usize >= max_players as usize {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("{} bots leave no seat in a room of {max_players}", req.bots),
            ));
        }
        let with_bots = req.bots > 0 || req.fill_bots;
        self.may_make(maker, with_bots)?;
        let id = RoomId(self.ids.rooms.fetch_add(1, Ordering::Relaxed));
        let Some(game) = self.modes.new_game(&req.mode, id.0 as u64) else {
            return Err(unknown_mode(&req.mode));
        };
        // The CLI caps the tick rate at 240.
        let tick_rate = u8::try_from(self.config.tick_rate).unwrap_or(u8::MAX);
        let sim = RoomSim::hosting(game, tick_rate, self.config.ticks_per_snapshot());
        let mut sim = sim.with_timing(Timing {
            countdown_secs: self.config.countdown_secs,
            results_secs: self.config.results_secs,
        });
        let max_players = sim
            .max_players()
            .map_or(max_players, |most| max_players.min(most.max(1)));
        if req.bots as usize >= max_players as usize {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("{} bots leave no seat in a room of {max_players}", req.bots),
            ));
        }
        if (req.bots > 0 || req.fill_bots) && !sim.hosts_bots() {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("mode {:?} has no bots", req.mode),
            ));
        }
        for i in 1..=req.bots {
            let bot = PlayerId(self.ids.players.fetch_add(1, Ordering::Relaxed));
            sim.join_bot(bot, &format!("bot {i}"));
        }
        if req.fill_bots {
            sim = sim.with_bot_fill(max_players as usize, self.ids.players.clone());
        }
        // Drawn before the room's task starts, so a failed random source leaves nothing
        // behind.
        let code = if req.private {
            Some(self.new_code(id)?)
        } else {
            None
        };
        let label = RoomLabel {
            name: req.name.clone(),
            mode: req.mode.clone(),
        };
        let status = RoomStatus::of(&sim);
        let heartbeat = self.watchdog.heartbeat(Watched {
            what: format!("room {id}"),
            kind: req.mode.clone(),
        });
        let handle = room::task::spawn(
            sim,
            RoomSetup {
                id,
                label,
                period: self.config.tick_period(),
                match_log: self.match_log.clone(),
                status: self.status_feed.clone(),
                heartbeat,
            },
        );
        if let Some(code) = &code {
            self.codes.insert(code.clone(), id);
        }
        let info = RoomInfo {
            id,
            name: req.name,
            mode: req.mode,
            players: 0,
            max_players,
            state: status.state,
            private: req.private,
        };
        tracing::info!(room = %id, name = %info.name, node = %self.registry.node, "room created");
        self.rooms.insert(
            id,
            RoomEntry {
                info,
                spectators: BTreeSet::new(),
                code,
                members: BTreeSet::new(),
                handle,
                status,
                empty_since: Some(Instant::now()),
                maker,
                with_bots,
            },
        );
        self.ids.open_rooms.fetch_add(1, Ordering::Relaxed);
        self.publish(id);
        Ok(id)
    }

    /// The registered mode a request names; an empty name is the server's default mode.
    fn known_mode(&self, mode: &str) -> Result<String, ErrorBody> {
        let mode = match mode {
            "" => self.modes.default_mode().unwrap_or_default(),
            named => named,
        };
        match self.modes.contains(mode) {
            true => Ok(mode.to_owned()),
            false => Err(unknown_mode(mode)),
        }
    }

    /// A fresh private-room code no open room of any node uses, claimed for `room`.
    fn new_code(&self, room: RoomId) -> Result<String, ErrorBody> {
        loop {
            let code = random::room_code(self.random.as_ref())?;
            if self.registry.claim_code(&code, room) {
                return Ok(code);
            }
        }
    }

    /// The fullest open public room of `mode` (a free seat, match not started), or a new one.
    fn quick_room(&mut self, mode: &str, maker: Maker) -> Result<RoomId, ErrorBody> {
        let mode = self.known_mode(mode)?;
        let best = self
            .rooms
            .values()
            .filter(|e| !e.info.private && e.info.mode == mode && Self::open(e))
            .max_by_key(|e| (e.members.len(), std::cmp::Reverse(e.info.id)))
            .map(|e| e.info.id);
        match best {
            Some(id) => Ok(id),
            None => self.create(
                CreateRoom {
                    name: format!("{mode} {}", self.ids.rooms.load(Ordering::Relaxed)),
                    mode,
                    max_players: 0,
                    private: false,
                    bots: 0,
                    fill_bots: false,
                },
                maker,
            ),
        }
    }

    fn join(&mut self, room: RoomId, member: Member) {
        self.seat(room, member, false)
    }

    /// A room reached by id: a private room is reached by its code only; by id it does not
    /// exist.
    fn public_room(&self, room: RoomId) -> Result<RoomId, ErrorBody> {
        match self.rooms.get(&room) {
            Some(e) if e.code.is_some() => Err(not_found(room)),
            _ => Ok(room),
        }
    }

    fn room_by_code(&self, code: &str) -> Result<RoomId, ErrorBody> {
        self.codes
            .get(&code.trim().to_ascii_uppercase())
            .copied()
            .ok_or_else(|| ErrorBody::new(ErrorCode::BadCode, "no room has that code"))
    }

    fn seat_or_refuse(
        &mut self,
        target: Result<RoomId, ErrorBody>,
        member: Member,
        spectator: bool,
    ) {
        match target {
            Ok(room) => self.seat(room, member, spectator),
            Err(e) => {
                let _ = member.reply.send(Err(e));
            }
        }
    }

    /// Puts a player in a room: in a seat, or (`spectator`) watching, which needs no free seat
    /// and is allowed while a match runs.
    fn seat(&mut self, room: RoomId, member: Member, spectator: bool) {
        let Some(entry) = self.rooms.get_mut(&room) else {
            let _ = member.reply.send(Err(not_found(room)));
            return;
        };
        if !spectator && entry.status.state == RoomState::Playing {
            let _ = member.reply.send(Err(ErrorBody::new(
                ErrorCode::MatchInProgress,
                "the match is under way; join when it ends",
            )));
            return;
        }
        if !spectator && Self::seated(entry) >= entry.info.max_players as usize {
            let _ = member.reply.send(Err(ErrorBody::new(
                ErrorCode::RoomFull,
                format!("room {} is full", room.0),
            )));
            return;
        }
        let token = match self.registry.token(self.random.as_ref()) {
            Ok(token) => token,
            Err(e) => {
                let _ = member.reply.send(Err(e.into()));
                return;
            }
        };
        let player = member.player;
        let (member_name, member_link) = (member.name.clone(), member.link_id);
        let subject = member.identity.as_ref().map(|i| i.subject.clone());
        if spectator {
            entry.spectators.insert(player);
        } else {
            entry.members.insert(player);
        }
        entry.empty_since = None;
        let joined = Joined {
            room: Self::info(entry),
            player: member.player,
            entity: NetId(0),
            reconnect_token: token.clone(),
            code: entry.code.clone(),
            schema: None,
            schema_hash: String::new(),
        };
        let cmd = RoomCommand::Join(Box::new(JoinRequest {
            player: member.player,
            name: member.name,
            identity: member.identity,
            link: member.link,
            joined,
            spectator,
            commands: entry.handle.commands.downgrade(),
            reply: member.reply,
        }));
        if let Err(err) = entry.handle.commands.try_send(cmd) {
            entry.members.remove(&player);
            entry.spectators.remove(&player);
            if entry.members.is_empty() && entry.spectators.is_empty() {
                entry.empty_since = Some(Instant::now());
            }
            if let RoomCommand::Join(req) = err.into_inner() {
                let _ = req
                    .reply
                    .send(Err(ErrorBody::new(ErrorCode::Internal, "room is busy")));
            }
            return;
        }
        if !spectator {
            self.tokens.insert(token.clone(), player);
            self.seats.insert(
                player,
                SeatRecord {
                    room,
                    name: member_name,
                    subject,
                    token,
                    link: member_link,
                    away_until: None,
                },
            );
            self.publish(room);
        }
    }

    /// Whether `link` is the connection holding the player's seat (spectators hold none).
    fn current_link(&self, player: PlayerId, link: u64) -> bool {
        self.seats.get(&player).is_none_or(|r| r.link == link)
    }

    fn forget_seat(&mut self, player: PlayerId) {
        if let Some(record) = self.seats.remove(&player) {
            self.tokens.remove(&record.token);
        }
    }

    /// The player's connection ended (or, for a reservation, has not begun): its seat waits
    /// `grace` for it.
    fn dropped(&mut self, room: RoomId, player: PlayerId, link: u64, grace: Duration) {
        match self.seats.get_mut(&player) {
            Some(record) if record.link == link && !grace.is_zero() => {
                record.away_until = Some(Instant::now() + grace);
                if let Some(entry) = self.rooms.get(&room) {
                    let cmd = RoomCommand::Detach {
                        player,
                        grace_secs: grace.as_secs().max(1) as u32,
                    };
                    let _ = entry.handle.commands.try_send(cmd);
                }
            }
            // An older connection of a player who has already come back.
            Some(record) if record.link != link => {}
            // A spectator, or no grace: gone at once.
            _ => {
                self.forget_seat(player);
                self.leave(room, player);
            }
        }
    }

    fn resume(
        &mut self,
        token: &str,
        link_id: u64,
        link: RoomLink,
        subject: Option<String>,
        found: oneshot::Sender<Result<Option<(PlayerId, String)>, ErrorBody>>,
        reply: oneshot::Sender<Result<Admitted, ErrorBody>>,
    ) {
        let Some(&player) = self.tokens.get(token) else {
            let _ = found.send(Ok(None));
            return;
        };
        let Some(record) = self.seats.get_mut(&player) else {
            let _ = found.send(Ok(None));
            return;
        };
        let Some(entry) = self.rooms.get(&record.room) else {
            let _ = found.send(Ok(None));
            return;
        };
        // A reconnect token alone is a bearer secret; where tickets name players, the seat
        // goes back only to the one it was given to.
        if record.subject != subject {
            let _ = found.send(Err(ErrorBody::new(
                ErrorCode::Unauthorized,
                "this seat belongs to another player",
            )));
            return;
        }
        record.link = link_id;
        record.away_until = None;
        let joined = Joined {
            room: Self::info(entry),
            player,
            entity: NetId(0),
            reconnect_token: record.token.clone(),
            code: entry.code.clone(),
            schema: None,
            schema_hash: String::new(),
        };
        let cmd = RoomCommand::Reattach(Box::new(JoinRequest {
            player,
            name: record.name.clone(),
            identity: None,
            link,
            joined,
            spectator: false,
            commands: entry.handle.commands.downgrade(),
            reply,
        }));
        let name = record.name.clone();
        if entry.handle.commands.try_send(cmd).is_err() {
            let _ = found.send(Ok(None));
            return;
        }
        let _ = found.send(Ok(Some((player, name))));
    }

    /// Seats whose players did not come back within the grace period are given up.
    fn expire_disconnected(&mut self) {
        let now = Instant::now();
        let expired: Vec<(PlayerId, RoomId)> = self
            .seats
            .iter()
            .filter(|(_, r)| r.away_until.is_some_and(|t| t <= now))
            .map(|(p, r)| (*p, r.room))
            .collect();
        for (player, room) in expired {
            self.forget_seat(player);
            self.leave(room, player);
        }
    }

    /// The game refused `player` the seat this lobby gave it in `room`: the seat and its
    /// reconnect token go (unless the player has since been seated elsewhere).
    fn refused(&mut self, room: RoomId, player: PlayerId) {
        if self.seats.get(&player).is_some_and(|r| r.room == room) {
            self.forget_seat(player);
        }
        if let Some(entry) = self.rooms.get_mut(&room)
            && entry.members.remove(&player)
            && entry.members.is_empty()
            && entry.spectators.is_empty()
        {
            entry.empty_since = Some(Instant::now());
        }
        self.publish(room);
    }

    fn leave(&mut self, room: RoomId, player: PlayerId) {
        let Some(entry) = self.rooms.get_mut(&room) else {
            return;
        };
        if entry.members.remove(&player) || entry.spectators.remove(&player) {
            let _ = entry
                .handle
                .commands
                .try_send(RoomCommand::Leave { player });
            if entry.members.is_empty() && entry.spectators.is_empty() {
                entry.empty_since = Some(Instant::now());
            }
        }
        self.publish(room);
    }

    fn publish_room_counts(&self) {
        let node = &self.registry.node;
        for state in [
            RoomState::Waiting,
            RoomState::Countdown,
            RoomState::Playing,
            RoomState::Finished,
        ] {
            let n = self
                .rooms
                .values()
                .filter(|e| e.status.state == state)
                .count();
            metrics::gauge!(crate::metrics::ROOMS, "state" => state.as_str(), "node" => node.clone())
                .set(n as f64);
        }
    }

    fn status(&mut self, room: RoomId, status: RoomStatus) {
        let Some(entry) = self.rooms.get_mut(&room) else {
            return;
        };
        let in_match = |state| matches!(state, RoomState::Playing | RoomState::Finished);
        let match_over = in_match(entry.status.state) && !in_match(status.state);
        entry.status = status;
        // Bots play a match with no human seated (spectators watch it to its results), but not
        // the next one: a room left to its bots would otherwise play on for ever.
        let left_to_bots = match_over && status.bots > 0 && entry.members.is_empty();
        self.publish(room);
        if left_to_bots {
            tracing::info!(room = %room, "closing a room of bots after its match");
            self.close_room(room);
        }
    }

    fn close_empty_rooms(&mut self) {
        let timeout = Duration::from_secs(self.config.empty_room_secs);
        let now = Instant::now();
        let closing: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, e)| {
                e.empty_since.is_some_and(|t| now - t >= timeout) || e.handle.commands.is_closed()
            })
            .map(|(id, _)| *id)
            .collect();
        for room in closing {
            tracing::info!(room = %room, "closing empty room");
            self.close_room(room);
        }
    }

    /// Drops a room (its task ends with its last command sender) and its code.
    fn close_room(&mut self, room: RoomId) {
        let Some(entry) = self.rooms.remove(&room) else {
            return;
        };
        self.ids.open_rooms.fetch_sub(1, Ordering::Relaxed);
        if let Some(code) = entry.code {
            self.codes.remove(&code);
        }
        self.registry.remove(room);
    }

    /// Tells the directory how `room` stands now (its seats or state changed).
    fn publish(&self, room: RoomId) {
        if let Some(entry) = self.rooms.get(&room) {
            self.registry.put(Listing {
                node: self.registry.node.clone(),
                info: Self::info(entry),
                code: entry.code.clone(),
                maker: entry.maker,
                with_bots: entry.with_bots,
            });
        }
    }
}

fn maker(member: &Member) -> Maker {
    Maker {
        player: member.player,
        origin: member.origin,
    }
}

fn unknown_mode(mode: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::UnknownMode, format!("no mode named {mode:?}"))
}

fn not_found(room: RoomId) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("no room {}", room.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{NoMessages, Outbox, TickInput};
    use crate::random::tests::Broken;
    use crate::room::SnapshotPacket;
    use tickwire_protocol::NetId;
    use tickwire_protocol::schema::{Field, FieldType, Kind};

    #[tokio::test]
    async fn a_disconnect_the_full_queue_cannot_take_waits_for_room() {
        let (tx, mut rx) = mpsc::channel(1);
        let lobby = LobbyHandle {
            tx,
            ids: Ids::default(),
        };
        lobby.try_leave(RoomId(1), PlayerId(1), 1);
        lobby.try_dropped(RoomId(1), PlayerId(2), 2);
        assert!(matches!(rx.recv().await, Some(LobbyCommand::Leave { .. })));
        let dropped = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the disconnect was not lost");
        assert!(
            matches!(
                dropped,
                Some(LobbyCommand::Dropped {
                    player: PlayerId(2),
                    ..
                })
            ),
            "the disconnect arrived once there was room"
        );
    }

    /// A lone node's part of a directory of its own.
    fn registry() -> Registry {
        Registry::new("node0".into(), Default::default())
    }

    struct Discard;

    impl crate::room::SnapshotSink for Discard {
        fn send(&self, _: SnapshotPacket) {}
    }

    fn member(lobby: &LobbyHandle) -> (Member, oneshot::Receiver<Result<Admitted, ErrorBody>>) {
        let (_inputs_tx, inputs) = mpsc::channel(1);
        let (events, _events_rx) = mpsc::channel(1);
        let (reply, answer) = oneshot::channel();
        let member = Member {
            player: lobby.new_player_id(),
            name: "ada".into(),
            identity: None,
            origin: PeerKey::from(std::net::IpAddr::from([192, 0, 2, 1])),
            link_id: lobby.new_link_id(),
            link: RoomLink {
                inputs,
                snapshots: Arc::new(Discard),
                events,
            },
            reply,
        };
        (member, answer)
    }

    fn request(private: bool) -> CreateRoom {
        CreateRoom {
            name: "room".into(),
            mode: String::new(),
            max_players: 4,
            private,
            bots: 0,
            fill_bots: false,
        }
    }

    #[tokio::test]
    async fn a_failed_random_source_refuses_codes_and_seats() {
        let watchdog = Watchdog::start().unwrap();
        let config = Arc::new(ServerConfig::loopback());
        let mut modes = Modes::default();
        modes
            .add::<tickwire_arena::Arena>("arena", Default::default())
            .unwrap();
        let lobby = spawn(LobbySetup {
            config,
            modes,
            match_log: None,
            watchdog,
            random: Arc::new(Broken),
            registry: registry(),
            ids: Ids::default(),
        });
        for private in [true, false] {
            let (member, answer) = member(&lobby);
            let cmd = LobbyCommand::Create {
                request: request(private),
                member,
            };
            lobby.send(cmd).await.unwrap();
            let refused = answer.await.unwrap().err().expect("refused");
            assert_eq!(refused.code, ErrorCode::Internal, "{refused:?}");
        }
        // No private room was made with a predictable code.
        let (member, answer) = member(&lobby);
        let cmd = LobbyCommand::JoinByCode {
            code: "AAAAAA".into(),
            member,
        };
        lobby.send(cmd).await.unwrap();
        let refused = answer.await.unwrap().err().expect("refused");
        assert_eq!(refused.code, ErrorCode::BadCode);
    }

    /// A game with no AI and nothing to replicate; its input is a switch.
    struct Quiet;

    #[derive(Clone)]
    struct Switch;

    impl crate::game::Record for Switch {
        fn fields() -> &'static [Field] {
            static FIELDS: std::sync::OnceLock<Vec<Field>> = std::sync::OnceLock::new();
            FIELDS.get_or_init(|| vec![Field::new("on", FieldType::Bool, 1)])
        }
        fn write(&self, out: &mut Vec<f64>) {
            out.push(0.0);
        }
        fn read(_: &mut crate::game::Values<'_>) -> Switch {
            Switch
        }
    }

    impl crate::game::Game for Quiet {
        type Input = Switch;
        type ToRoom = NoMessages;
        type ToPlayer = NoMessages;

        fn min_players(&self) -> usize {
            1
        }
        fn add_player(
            &mut self,
            _: &mut hecs::World,
            _: PlayerId,
            _: &crate::game::Joiner<'_>,
        ) -> Result<NetId, String> {
            Ok(NetId(1))
        }
        fn remove_player(&mut self, _: &mut hecs::World, _: PlayerId) {}
        fn start_match(&mut self, _: &mut hecs::World, _: &mut Outbox<NoMessages>) {}
        fn abort_match(&mut self, _: &mut hecs::World) {}
        fn step(
            &mut self,
            _: &mut hecs::World,
            _: &[(PlayerId, TickInput<Switch>)],
            _: f32,
            _: &mut Outbox<NoMessages>,
        ) {
        }
        fn schema(&self) -> Arc<tickwire_protocol::Schema> {
            let lit = Field::new("lit", FieldType::Bool, 1);
            Arc::new(crate::game::declare::<Quiet>(vec![Kind::new("lamp", vec![lit])]).unwrap())
        }
        fn capture(&self, _: &hecs::World, _: &mut tickwire_protocol::Capture) {}
    }

    impl crate::game::GameMode for Quiet {
        type Config = ();
        fn new_room(_: &(), _: u64) -> Quiet {
            Quiet
        }
    }

    #[tokio::test]
    async fn no_mode_is_the_first_registered_and_a_game_without_ai_refuses_bots() {
        let mut modes = Modes::default();
        modes.add::<Quiet>("quiet", ()).unwrap();
        modes
            .add::<tickwire_arena::Arena>("arena", Default::default())
            .unwrap();
        let directory = crate::cluster::SharedDirectory::default();
        let lobby = spawn(LobbySetup {
            config: Arc::new(ServerConfig::loopback()),
            modes,
            match_log: None,
            watchdog: Watchdog::start().unwrap(),
            random: Arc::new(crate::random::SystemRandom::new()),
            registry: Registry::new("node0".into(), directory.clone()),
            ids: Ids::default(),
        });
        let create = async |mode: &str, bots: u8| {
            let (member, answer) = member(&lobby);
            let request = CreateRoom {
                mode: mode.into(),
                bots,
                ..request(false)
            };
            lobby
                .send(LobbyCommand::Create { request, member })
                .await
                .unwrap();
            answer.await.unwrap().map(|_| ())
        };
        create("", 0).await.unwrap();
        // The lobby lists its rooms in the directory before it answers.
        let rooms = directory.lock().list(None, false);
        assert_eq!(
            rooms.iter().map(|r| r.mode.as_str()).collect::<Vec<_>>(),
            ["quiet"]
        );
        let refused = create("quiet", 1).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::BadRequest, "{refused:?}");
        create("arena", 1).await.unwrap();
    }
}
