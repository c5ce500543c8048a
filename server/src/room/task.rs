//! The async shell around a [`RoomSim`]: the fixed-tick timer, the command channel from the
//! lobby, and the per-player channels to sessions.
//!
//! Timing: a step is due every `period`. When the task wakes late it runs the steps it owes, at
//! most [`MAX_CATCH_UP`] in a row, and skips (and counts) the rest, so a stall never turns into
//! a long burst of simulation. Each player's snapshots go to its transport's [`SnapshotSink`]
//! (which queues without waiting or drops) and events into a bounded channel with `try_send`: a
//! slow player can only lose its own messages; it never delays the tick.

use super::sim::{Outgoing, RoomSim};
use crate::game::{Identity, Joiner};
use crate::match_log::MatchLog;
use crate::metrics::{MISSED_TICKS, TICK_SECONDS};
use crate::watchdog::Heartbeat;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tickwire_protocol::json;
use tickwire_protocol::{
    ErrorBody, InputBatch, Joined, NetId, PlayerId, RoomEvent, RoomId, RoomState, Snapshot, Tick,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Most steps run back to back when the task wakes late.
pub const MAX_CATCH_UP: u32 = 4;
/// Commands a room buffers from the lobby.
pub const ROOM_COMMAND_QUEUE: usize = 256;

/// One player's encoded snapshot: the per-player header values and the shared body.
#[derive(Clone, Debug)]
pub struct SnapshotPacket {
    pub tick: Tick,
    pub input_ack: u32,
    pub body: Bytes,
}

/// Where a room hands one player's snapshots: the player's transport. Called from the room's
/// tick, so an implementation never waits: it queues the packet or drops it (the next snapshot
/// is a delta against the player's ack and still valid).
pub trait SnapshotSink: Send + Sync + 'static {
    fn send(&self, packet: SnapshotPacket);
}

/// For a transport that forwards snapshots from a task of its own: the latest one wins.
impl SnapshotSink for watch::Sender<Option<SnapshotPacket>> {
    fn send(&self, packet: SnapshotPacket) {
        self.send_replace(Some(packet));
    }
}

/// The room's ends of the channels between a room and one player's session.
pub struct RoomLink {
    pub inputs: mpsc::Receiver<InputBatch>,
    pub snapshots: Arc<dyn SnapshotSink>,
    pub events: mpsc::Sender<RoomEvent>,
}

pub struct JoinRequest {
    pub player: PlayerId,
    pub name: String,
    /// Who the player is, on a server that asks for tickets (the game's join hook sees it).
    pub identity: Option<Arc<Identity>>,
    pub link: RoomLink,
    /// Filled in by the room with the player's entity.
    pub joined: Joined,
    /// Watch only: no seat, no entity.
    pub spectator: bool,
    /// Handed back to the session so it can reach the room (ready, chat) without keeping it
    /// alive: the lobby alone holds the strong sender.
    pub commands: mpsc::WeakSender<RoomCommand>,
    pub reply: oneshot::Sender<Result<Admitted, ErrorBody>>,
}

/// A successful join, as the session receives it.
pub struct Admitted {
    pub joined: Joined,
    pub commands: mpsc::WeakSender<RoomCommand>,
}

pub enum RoomCommand {
    Join(Box<JoinRequest>),
    /// A reconnecting player takes its seat back with new channels.
    Reattach(Box<JoinRequest>),
    /// The player's connection dropped: stop sending, keep the seat.
    Detach {
        player: PlayerId,
        grace_secs: u32,
    },
    Leave {
        player: PlayerId,
    },
    Ready {
        player: PlayerId,
        ready: bool,
    },
    Chat {
        player: PlayerId,
        text: String,
    },
    Start {
        player: PlayerId,
        reply: oneshot::Sender<Result<(), ErrorBody>>,
    },
    /// A game message, its slots checked against the schema.
    Message {
        player: PlayerId,
        kind: u16,
        slots: Vec<u32>,
        reply: oneshot::Sender<Result<(), ErrorBody>>,
    },
    /// The server's snapshot of `tick`, if still in the history (tests, debugging).
    Inspect {
        tick: Tick,
        reply: oneshot::Sender<Option<Snapshot>>,
    },
}

/// What the lobby needs to know of a room to list it and seat players. The room pushes it to
/// the lobby when it changes, and the lobby keeps its own copy: the lobby never reads anything
/// the room owns, so neither can wait on the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomStatus {
    pub state: RoomState,
    /// Server bots seated (they take seats like players).
    pub bots: usize,
}

impl RoomStatus {
    pub fn of(sim: &RoomSim) -> RoomStatus {
        RoomStatus {
            state: sim.state(),
            bots: sim.bot_count(),
        }
    }
}

/// What a room tells the lobby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomReport {
    /// Its state or bot count changed.
    Status(RoomStatus),
    /// The game refused the player a seat the lobby had given it: the lobby gives it back.
    Refused(PlayerId),
}

/// Where rooms push their reports: the lobby's status queue.
pub type StatusFeed = mpsc::Sender<(RoomId, RoomReport)>;

/// Refusals waiting for room in the lobby's queue, at most; a join the game refuses is rare,
/// and the lobby takes them in order with the status changes.
const MAX_UNTOLD_REFUSALS: usize = 256;

#[derive(Clone)]
pub struct RoomHandle {
    pub id: RoomId,
    pub commands: mpsc::Sender<RoomCommand>,
}

/// A player's channels, as the room holds them.
type Member = RoomLink;

/// What a room needs to know about itself for its match log lines.
pub struct RoomLabel {
    pub name: String,
    pub mode: String,
}

/// What a room task is started with besides its simulation.
pub struct RoomSetup {
    pub id: RoomId,
    pub label: RoomLabel,
    pub period: Duration,
    pub match_log: Option<MatchLog>,
    /// The lobby's status queue; the room's status at spawn is taken as already known.
    pub status: StatusFeed,
    /// Beaten every tick, so a stalled room is noticed.
    pub heartbeat: Arc<Heartbeat>,
}

/// Starts a room task. It ends when every [`RoomHandle`] is dropped (the lobby closed it).
pub fn spawn(sim: RoomSim, setup: RoomSetup) -> RoomHandle {
    let RoomSetup {
        id,
        label,
        period,
        match_log,
        status,
        heartbeat,
    } = setup;
    let mode = label.mode.clone();
    let (commands, rx) = mpsc::channel(ROOM_COMMAND_QUEUE);
    tokio::spawn(
        RoomTask {
            id,
            told: RoomStatus::of(&sim),
            refused: Vec::new(),
            sim,
            members: BTreeMap::new(),
            status,
            heartbeat,
            outgoing: Vec::new(),
            tick_seconds: metrics::histogram!(TICK_SECONDS, "mode" => mode.clone()),
            missed_ticks: metrics::counter!(MISSED_TICKS, "mode" => mode),
            label,
            match_log,
            writing: None,
        }
        .run(rx, period),
    );
    RoomHandle { id, commands }
}

struct RoomTask {
    id: RoomId,
    sim: RoomSim,
    members: BTreeMap<PlayerId, Member>,
    status: StatusFeed,
    /// The status the lobby has; pushed again until the lobby's queue takes it.
    told: RoomStatus,
    /// Players the game refused whose seats the lobby has not yet been told to give back.
    refused: Vec<PlayerId>,
    heartbeat: Arc<Heartbeat>,
    outgoing: Vec<Outgoing>,
    tick_seconds: metrics::Histogram,
    missed_ticks: metrics::Counter,
    label: RoomLabel,
    match_log: Option<MatchLog>,
    /// The last result on its way to disk, and its event: players are told a result only
    /// once it is written, so a result anyone has seen survives a crash.
    writing: Option<(oneshot::Receiver<()>, RoomEvent)>,
}

impl RoomTask {
    async fn run(mut self, mut commands: mpsc::Receiver<RoomCommand>, period: Duration) {
        let mut next = Instant::now() + period;
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        self.command(cmd);
                        self.report_status();
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(next) => {
                    let started = Instant::now();
                    let owed = 1 + (started - next).as_nanos() / period.as_nanos().max(1);
                    let owed = u32::try_from(owed).unwrap_or(u32::MAX);
                    let steps = owed.min(MAX_CATCH_UP);
                    self.missed_ticks.increment((owed - steps) as u64);
                    next += period * owed;
                    self.heartbeat.beat();
                    self.tick(steps);
                    self.tick_seconds.record(started.elapsed().as_secs_f64());
                    self.report_status();
                }
            }
        }
        for member in self.members.values() {
            let _ = member.events.try_send(RoomEvent::RoomClosed);
        }
        tracing::debug!(room = %self.id, "room closed");
    }

    fn command(&mut self, cmd: RoomCommand) {
        match cmd {
            RoomCommand::Join(req) => {
                let JoinRequest {
                    player,
                    name,
                    identity,
                    link,
                    mut joined,
                    spectator,
                    commands,
                    reply,
                } = *req;
                joined.schema = Some(self.sim.schema().clone());
                joined.schema_hash = self.sim.schema_hash().to_owned();
                let entity = if spectator {
                    self.sim.spectate(player);
                    Ok(NetId(0))
                } else {
                    let who = Joiner {
                        name: &name,
                        identity: identity.as_deref(),
                    };
                    self.sim.join_as(player, &who)
                };
                match entity {
                    Ok(entity) => {
                        joined.entity = entity;
                        self.members.insert(player, link);
                        if reply.send(Ok(Admitted { joined, commands })).is_err() {
                            // The session went away while joining.
                            self.remove(player);
                        }
                    }
                    Err(refused) => {
                        let _ = reply.send(Err(refused));
                        if self.refused.len() < MAX_UNTOLD_REFUSALS {
                            self.refused.push(player);
                        } else {
                            tracing::warn!(room = %self.id, %player, "too many refusals untold");
                        }
                        self.report_status();
                    }
                }
                self.send_events();
            }
            RoomCommand::Reattach(req) => {
                let JoinRequest {
                    player,
                    link,
                    mut joined,
                    commands,
                    reply,
                    ..
                } = *req;
                match self.sim.reattach(player) {
                    Some(entity) => {
                        joined.entity = entity;
                        joined.schema = Some(self.sim.schema().clone());
                        joined.schema_hash = self.sim.schema_hash().to_owned();
                        // A seat still connected is taken over, not refused: a player whose
                        // network changed comes back before the server notices the old
                        // connection is dead. That connection is told why, and closes.
                        if let Some(old) = self.members.insert(player, link) {
                            let _ = old.events.try_send(RoomEvent::SeatTaken);
                        }
                        let _ = reply.send(Ok(Admitted { joined, commands }));
                    }
                    None => {
                        let _ = reply.send(Err(ErrorBody::new(
                            tickwire_protocol::ErrorCode::NotFound,
                            "the seat is gone",
                        )));
                    }
                }
                self.send_events();
            }
            RoomCommand::Detach { player, grace_secs } => {
                self.members.remove(&player);
                self.sim.detach(player, grace_secs);
                self.send_events();
            }
            RoomCommand::Leave { player } => {
                self.remove(player);
                self.send_events();
            }
            RoomCommand::Ready { player, ready } => {
                self.sim.set_ready(player, ready);
                self.send_events();
            }
            RoomCommand::Chat { player, text } => {
                self.sim.chat(player, text);
                self.send_events();
            }
            RoomCommand::Start { player, reply } => {
                let _ = reply.send(self.sim.start(player));
                self.send_events();
            }
            RoomCommand::Message {
                player,
                kind,
                slots,
                reply,
            } => {
                let _ = reply.send(self.sim.message(player, kind, &slots));
                self.send_events();
            }
            RoomCommand::Inspect { tick, reply } => {
                let _ = reply.send(self.sim.history().get(tick).cloned());
            }
        }
    }

    fn remove(&mut self, player: PlayerId) {
        self.members.remove(&player);
        self.sim.leave(player);
    }

    fn tick(&mut self, steps: u32) {
        if let Some((written, _)) = &mut self.writing
            && !matches!(written.try_recv(), Err(oneshot::error::TryRecvError::Empty))
            && let Some((_, result)) = self.writing.take()
        {
            // Written (or failed and logged): the players hear of it, and the room may leave
            // its results screen.
            self.sim.hold_results(false);
            self.broadcast(result);
        }
        for (player, member) in &mut self.members {
            // Bounded by the channel's capacity: a flooding client loses its own inputs only.
            while let Ok(batch) = member.inputs.try_recv() {
                self.sim.receive(*player, &batch);
            }
        }
        let mut snapshot_due = false;
        for _ in 0..steps {
            snapshot_due |= self.sim.step();
        }
        // Before any player sees this tick: whatever a player saw, the lobby's listing of the
        // room already has (the lobby takes statuses before calls).
        self.report_status();
        // Bots see the world through snapshots too, so a bot-only room keeps capturing.
        if snapshot_due && (!self.members.is_empty() || self.sim.has_bots()) {
            self.outgoing.clear();
            self.sim.snapshot(&mut self.outgoing);
            let tick = self.sim.tick();
            for out in self.outgoing.drain(..) {
                if let Some(member) = self.members.get(&out.player) {
                    member.snapshots.send(SnapshotPacket {
                        tick,
                        input_ack: out.input_ack,
                        body: out.body,
                    });
                }
            }
        }
        self.send_events();
    }

    fn broadcast(&self, event: RoomEvent) {
        for (player, member) in &self.members {
            if member.events.try_send(event.clone()).is_err() {
                tracing::debug!(room = %self.id, %player, "event queue full; event dropped");
            }
        }
    }

    fn send_events(&mut self) {
        let events: Vec<RoomEvent> = self.sim.drain_events().collect();
        for event in events {
            if let (RoomEvent::MatchEnded(result), Some(log)) = (&event, &self.match_log) {
                let mut line = json::room_event(&event, self.sim.schema());
                line["room"] = self.id.0.into();
                line["roomName"] = self.label.name.clone().into();
                line["mode"] = self.label.mode.clone().into();
                line["endedAtMs"] = unix_ms().into();
                line["matchNo"] = result.match_no.into();
                self.writing = Some((log.record(line), event));
                self.sim.hold_results(true);
                continue;
            }
            self.broadcast(event);
        }
        let told: Vec<(PlayerId, RoomEvent)> = self.sim.drain_told().collect();
        for (player, event) in told {
            if let Some(member) = self.members.get(&player)
                && member.events.try_send(event).is_err()
            {
                tracing::debug!(room = %self.id, %player, "event queue full; message dropped");
            }
        }
    }

    /// Tells the lobby of refused seats and of a change in state or bots. Never waits: when
    /// the lobby's queue is full they are offered again after the next tick.
    fn report_status(&mut self) {
        while let Some(&player) = self.refused.first() {
            if self
                .status
                .try_send((self.id, RoomReport::Refused(player)))
                .is_err()
            {
                break;
            }
            self.refused.remove(0);
        }
        let now = RoomStatus::of(&self.sim);
        if now != self.told
            && self
                .status
                .try_send((self.id, RoomReport::Status(now)))
                .is_ok()
        {
            self.told = now;
        }
    }
}
