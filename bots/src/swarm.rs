//! Runs N bots over R rooms and gathers their numbers.

use anyhow::Context;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tickwire_client::timing::next_input_at;
use tickwire_client::{Client, ClientConfig, GameClient, SioClient, Trust};
use tickwire_protocol::{CreateRoom, Joined, PlayerId, RoomEvent, RoomId, RoomState};
use tokio::sync::{Semaphore, watch};

/// Where and how the bots connect.
#[derive(Clone)]
pub enum Target {
    Quic {
        server: SocketAddr,
        trust: Trust,
    },
    /// The server's HTTP URL (`http://IP:PORT`).
    SocketIo {
        url: String,
    },
}

impl Target {
    pub fn transport(&self) -> &'static str {
        match self {
            Target::Quic { .. } => "quic",
            Target::SocketIo { .. } => "socketio",
        }
    }
}

pub struct SwarmConfig {
    pub target: Target,
    pub bots: usize,
    pub rooms: usize,
    pub mode: String,
    /// The mode's schema and AI.
    pub playbook: crate::games::Playbook,
    pub duration: Duration,
    pub input_hz: f64,
    /// Join this existing room instead of creating rooms.
    pub join: Option<RoomId>,
    /// Socket.IO load bots (`--light`): acknowledge snapshots from their headers without
    /// decoding the world, so their brains see nobody and wander (no aiming, no firing). Light
    /// QUIC bots are the fleet instead (`fleet.rs`).
    pub light: bool,
}

impl SwarmConfig {
    /// Rooms actually used: at least one, at most one per bot. Bot i sits in room i % rooms.
    pub fn rooms(&self) -> usize {
        self.rooms.max(1).min(self.bots.max(1))
    }

    /// The room a creating bot (bot `index`, the first of its room) asks for: seats for the
    /// bots spread over the rooms.
    pub fn create_room(&self, index: usize) -> CreateRoom {
        let seats = self.bots.div_ceil(self.rooms());
        CreateRoom {
            name: format!("bots-{index}"),
            mode: self.mode.clone(),
            max_players: seats.min(u8::MAX as usize) as u8,
            private: false,
            bots: 0,
            fill_bots: false,
        }
    }
}

/// What a seated bot knows of its room from its join and the room's events. Bots are always
/// ready, but only once their room is full (or after [`READY_WAIT`]): the match starts when
/// every seated player is ready, and a started match refuses later joiners.
pub(crate) struct RoomWatch {
    pub room: RoomId,
    me: PlayerId,
    /// Players seated, this bot included.
    present: usize,
    full: usize,
    ready: bool,
}

impl RoomWatch {
    pub fn new(me: PlayerId, joined: &Joined) -> RoomWatch {
        RoomWatch {
            room: joined.room.id,
            me,
            present: joined.room.players as usize,
            full: joined.room.max_players as usize,
            ready: false,
        }
    }

    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Whether to say ready now (the room is full, or the bot has `waited_enough`); once it
    /// says yes it counts the bot as ready.
    pub fn take_ready(&mut self, waited_enough: bool) -> bool {
        if self.ready || (self.present < self.full && !waited_enough) {
            return false;
        }
        self.ready = true;
        true
    }

    /// Takes a room event: keeps the head count and the matches seen. True when the room waits
    /// again after a match (time to ready up for the rematch).
    pub fn on_event(&mut self, event: &RoomEvent, outcome: &mut BotOutcome) -> bool {
        match event {
            RoomEvent::MatchEnded(result) => {
                outcome.matches.insert((self.room, result.match_no));
            }
            RoomEvent::PlayerJoined { player, .. } if *player != self.me => self.present += 1,
            RoomEvent::PlayerLeft { .. } => self.present = self.present.saturating_sub(1),
            RoomEvent::StateChanged {
                state: RoomState::Waiting,
                ..
            } => return true,
            _ => {}
        }
        false
    }
}

/// Live counters, read by the progress display while the swarm runs.
#[derive(Default)]
pub struct Progress {
    pub connected: AtomicU64,
    pub snapshots: AtomicU64,
    pub errors: AtomicU64,
}

/// One bot's numbers at the end.
#[derive(Default)]
pub struct BotOutcome {
    pub connected: bool,
    pub snapshots: u64,
    pub snapshot_bytes: u64,
    pub inputs_sent: u64,
    pub rtt_ms: Vec<f64>,
    /// (room, match number) of every match this bot saw end.
    pub matches: BTreeSet<(RoomId, u32)>,
    pub errors: u64,
    /// Seconds from joining its room to the end: when snapshots were due.
    pub seated_secs: f64,
}

/// Bots sharing one QUIC endpoint (one UDP socket and its driver task): far fewer sockets and
/// tasks than one endpoint per bot, which matters at thousands of bots on one core.
const BOTS_PER_ENDPOINT: usize = 64;
/// Connections being set up at once, at most.
pub(crate) const CONCURRENT_CONNECTS: usize = 16;
/// How often a bot measures its round trip (a `ping` call on the control stream). Not part of
/// the standard workload, so rare enough to cost next to nothing at thousands of bots.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(2);
/// How long a bot waits for its room to fill before saying ready anyway.
pub(crate) const READY_WAIT: Duration = Duration::from_secs(30);

pub async fn run(config: Arc<SwarmConfig>, progress: Arc<Progress>) -> Vec<BotOutcome> {
    let endpoints: Vec<Option<quinn::Endpoint>> = match &config.target {
        Target::Quic { server, trust } => (0..config.bots.div_ceil(BOTS_PER_ENDPOINT))
            .map(|_| tickwire_client::connection::endpoint(*server, trust).ok())
            .collect(),
        Target::SocketIo { .. } => Vec::new(),
    };
    let rooms = config.rooms();
    // The first bot of each room creates it and publishes its id to the others.
    let room_ids: Vec<_> = (0..rooms).map(|_| watch::channel(None::<RoomId>)).collect();
    let deadline = Instant::now() + config.duration;
    let connects = Arc::new(Semaphore::new(CONCURRENT_CONNECTS));
    let mut tasks = Vec::with_capacity(config.bots);
    for i in 0..config.bots {
        let group = i % rooms;
        let role = if let Some(id) = config.join {
            Role::Join(watch::channel(Some(id)).1)
        } else if i < rooms {
            Role::Create {
                publish: room_ids[group].0.clone(),
            }
        } else {
            Role::Join(room_ids[group].1.clone())
        };
        let (config, progress, connects) = (config.clone(), progress.clone(), connects.clone());
        let endpoint = endpoints.get(i / BOTS_PER_ENDPOINT).cloned().flatten();
        tasks.push(tokio::spawn(async move {
            let mut outcome = BotOutcome::default();
            let dial = Dial {
                endpoint,
                queue: &connects,
            };
            if let Err(e) = bot(i, &config, role, dial, deadline, &progress, &mut outcome).await {
                tracing::warn!(bot = i, "bot failed: {e:#}");
                outcome.errors += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.unwrap_or_else(|_| BotOutcome {
            errors: 1,
            ..BotOutcome::default()
        }));
    }
    outcomes
}

/// How a bot gets connected: its shared QUIC endpoint (if any) and the queue of connects.
struct Dial<'a> {
    endpoint: Option<quinn::Endpoint>,
    queue: &'a Semaphore,
}

enum Role {
    Create {
        publish: watch::Sender<Option<RoomId>>,
    },
    Join(watch::Receiver<Option<RoomId>>),
}

async fn bot(
    index: usize,
    config: &SwarmConfig,
    role: Role,
    dial: Dial<'_>,
    deadline: Instant,
    progress: &Progress,
    outcome: &mut BotOutcome,
) -> anyhow::Result<()> {
    let name = format!("bot-{index}");
    // Handshakes a few at a time, in spawn order (room creators first), so a thousand bots do
    // not all compete for the one core with their TLS handshakes at once.
    let permit = dial.queue.acquire().await.context("connect queue closed")?;
    match &config.target {
        Target::Quic { server, trust } => {
            let endpoint = match dial.endpoint {
                Some(e) => e,
                None => tickwire_client::connection::endpoint(*server, trust)
                    .context("making a QUIC endpoint")?,
            };
            let client = Client::connect_on(
                endpoint,
                ClientConfig {
                    server: *server,
                    trust: trust.clone(),
                    name,
                    token: None,
                    ticket: None,
                    decoding: tickwire_client::Decoding::Full(config.playbook.schema.clone()),
                },
            )
            .await
            .context("connecting over QUIC")?;
            drop(permit);
            play(client, index, config, role, deadline, progress, outcome).await
        }
        Target::SocketIo { url } => {
            let decoding = if config.light {
                tickwire_client::Decoding::TicksOnly
            } else {
                tickwire_client::Decoding::Full(config.playbook.schema.clone())
            };
            let client = SioClient::connect(url, &name, decoding)
                .await
                .context("connecting over Socket.IO")?;
            drop(permit);
            play(client, index, config, role, deadline, progress, outcome).await
        }
    }
}

async fn play<C: GameClient>(
    mut client: C,
    index: usize,
    config: &SwarmConfig,
    role: Role,
    deadline: Instant,
    progress: &Progress,
    outcome: &mut BotOutcome,
) -> anyhow::Result<()> {
    let me = client.player();
    let joined = match role {
        Role::Create { publish } => {
            let joined = client
                .create_room(config.create_room(index))
                .await
                .context("creating a room")?;
            publish.send_replace(Some(joined.room.id));
            joined
        }
        Role::Join(mut room) => {
            // As long as the run lasts: the creator's own connect and call are bounded, and
            // when it fails the channel closes and this returns at once. On a bad path (30%
            // loss) a handshake alone can take over 10 s.
            let wait = tokio::time::timeout_at(deadline.into(), room.wait_for(Option::is_some));
            let id = wait
                .await
                .context("waiting for the room to be created")?
                .context("the room's creator failed")?
                .context("room id")?;
            client.join_room(id).await.context("joining the room")?
        }
    };
    outcome.connected = true;
    progress.connected.fetch_add(1, Ordering::Relaxed);
    let seated = Instant::now();
    let mut room = RoomWatch::new(me, &joined);
    let ready_wait = tokio::time::sleep(READY_WAIT);
    tokio::pin!(ready_wait);

    let mut brain = config
        .playbook
        .bot(index as u64 + 1)
        .context("the game gave this bot no AI")?;
    let input_period = Duration::from_secs_f64(1.0 / config.input_hz);
    let mut inputs = tokio::time::interval(input_period);
    inputs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let snapshot_rate = client.state().welcome().snapshot_rate;
    let mut pings = tokio::time::interval(PING_EVERY);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = tokio::time::sleep_until(deadline.into());
    tokio::pin!(end);
    let mut seen = 0u64;
    loop {
        if room.take_ready(ready_wait.is_elapsed()) {
            client.set_ready(true).await.context("getting ready")?;
        }
        tokio::select! {
            _ = &mut end => break,
            // Only wakes the loop; the check above says ready.
            _ = &mut ready_wait, if !room.ready() => {}
            _ = inputs.tick() => {
                let stats = client.stats();
                let now = stats.snapshots.load(Ordering::Relaxed);
                progress.snapshots.fetch_add(now - seen, Ordering::Relaxed);
                seen = now;
                let latest = client.latest();
                if let Some(r) = &latest {
                    let slots = brain.act(me, &r.snapshot).context("the game's AI")?;
                    client.send_slots(slots).context("sending input")?;
                }
                // Keep time with the snapshots (`tickwire_client::timing`), re-aligned on each
                // input from the newest snapshot's arrival rather than woken by every snapshot.
                if let Some(r) = latest {
                    let next = next_input_at(r.at, snapshot_rate, input_period, Instant::now());
                    inputs.reset_at(next.into());
                }
            }
            _ = pings.tick() => {
                let rtt = client.ping().await.context("ping")?;
                outcome.rtt_ms.push(rtt.as_secs_f64() * 1000.0);
            }
            event = client.next_event() => {
                // Ready again for the rematch once the room waits.
                if room.on_event(&event.context("connection lost")?, outcome) {
                    client.set_ready(true).await.context("getting ready")?;
                }
            }
        }
    }
    outcome.seated_secs = seated.elapsed().as_secs_f64();
    let stats = client.stats();
    outcome.snapshots = stats.snapshots.load(Ordering::Relaxed);
    outcome.snapshot_bytes = stats.snapshot_bytes.load(Ordering::Relaxed);
    outcome.inputs_sent = stats.inputs_sent.load(Ordering::Relaxed);
    outcome.errors += stats.decode_errors.load(Ordering::Relaxed);
    progress
        .snapshots
        .fetch_add(outcome.snapshots - seen, Ordering::Relaxed);
    client.close().await;
    Ok(())
}
