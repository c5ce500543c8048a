//! Light QUIC bots (`--light`): many bots' connections driven from a few tasks, each over one UDP
//! socket, with quinn's state machines (`quinn-proto`) called directly.
//!
//! Why: through quinn's async API every bot costs a connection-driver task, a snapshot task, a
//! control-stream task and its own loop, each woken for each packet, plus their timers; at a
//! thousand bots on one core that machinery was about a quarter of the bot process (0.8 against
//! 0.6 core here; docs/BENCHMARKS.md), enough for the load generator, not the server, to set
//! the limit of the load ladder. Here a shard task owns a socket, a `quinn_proto::Endpoint` and the connections of a
//! few whole rooms: it reads the socket, hands each datagram to its connection, sends each
//! room's inputs from one timer, and keeps one heap of connection timers.
//!
//! The bots do what the standard workload asks of a player and no more: connect with the pinned
//! certificate, say hello, create or join their room, get ready once it is full, send an input
//! (with the acknowledged tick) at the configured rate timed to the snapshots
//! ([`tickwire_client::timing`]), and read each snapshot's header to acknowledge it
//! ([`ClientWorld::ticks_only`]). They wander instead of aiming, and time a `ping` call every
//! [`PING_EVERY`] as the async bots do. A bot whose room is on another node of the server is
//! sent there ([`Reply::Moved`]): it closes its connection and connects to that node with the
//! seat's token, over a socket of the shard's connected to that node.

use crate::games::Ai;
use crate::swarm::{
    BotOutcome, CONCURRENT_CONNECTS, PING_EVERY, Progress, READY_WAIT, RoomWatch, SwarmConfig,
};
use anyhow::Context;
use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ClientConfig, Connection, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig,
    Event, StreamEvent, StreamId,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tickwire_client::timing::next_input_at;
use tickwire_client::{InputLog, Trust};
use tickwire_protocol::codec::{self, MAX_CONTROL_BYTES};
use tickwire_protocol::world::{Applied, ClientWorld};
use tickwire_protocol::{
    ClientFrame, Joined, Moved, PROTOCOL_VERSION, PlayerId, Reply, Request, RoomId, ServerFrame,
    packet,
};
use tokio::net::UdpSocket;

/// Rooms per shard (task and socket): 8 rooms of 16 are 128 bots.
const ROOMS_PER_SHARD: usize = 8;
/// Datagrams read from the socket before the shard looks at its timers again.
const READ_BATCH: usize = 256;
/// How often a shard looks at connects, joins, readiness and pings: none needs finer timing,
/// and looking at every bot whenever a packet arrives is wasted work.
const DUTIES_EVERY: Duration = Duration::from_millis(20);
/// A joiner gives up when its room's creator has not created it by then.
const ROOM_WAIT: Duration = Duration::from_secs(30);

/// Runs the light swarm against a QUIC server; one outcome per bot, in bot order.
pub async fn run(
    config: Arc<SwarmConfig>,
    progress: Arc<Progress>,
    server: SocketAddr,
    trust: &Trust,
) -> anyhow::Result<Vec<BotOutcome>> {
    let client_config =
        tickwire_client::connection::client_config(trust).context("QUIC client setup")?;
    let trust = trust.clone();
    let rooms = config.rooms();
    let deadline = Instant::now() + config.duration;
    // Bot i sits in room i % rooms (as in the async swarm); a shard takes whole rooms.
    let mut shards = Vec::new();
    for first_room in (0..rooms).step_by(ROOMS_PER_SHARD) {
        let groups: Vec<usize> = (first_room..(first_room + ROOMS_PER_SHARD).min(rooms)).collect();
        let members: Vec<usize> = (0..config.bots)
            .filter(|i| groups.contains(&(i % rooms)))
            .collect();
        let socket = bind(server)?;
        let shard = Shard::new(
            config.clone(),
            progress.clone(),
            (client_config.clone(), trust.clone()),
            Peer {
                addr: server,
                socket,
            },
            rooms,
            &groups,
            members,
        );
        shards.push(tokio::spawn(shard.run(deadline)));
    }
    let mut outcomes: Vec<(usize, BotOutcome)> = Vec::with_capacity(config.bots);
    for shard in shards {
        outcomes.extend(shard.await.context("a shard of bots panicked")??);
    }
    outcomes.sort_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

/// Socket buffers asked of the kernel (it caps them at `net.core.rmem_max` / `wmem_max`): a
/// shard's rooms snapshot in bursts of up to 128 packets, and the shard may be busy for a few
/// milliseconds when they land.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

fn bind(server: SocketAddr) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ip: std::net::IpAddr = match server {
        s if s.ip().is_loopback() => s.ip(),
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let local = SocketAddr::new(ip, 0);
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))
        .context("making a UDP socket for bots")?;
    // Best effort: a smaller buffer only means more drops under bursts.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket
        .bind(&local.into())
        .context("binding a UDP socket for bots")?;
    // Connected: every packet goes to the server, and the kernel then keeps the route instead
    // of looking it up for each datagram (a tenth of the send path's cost).
    socket
        .connect(&server.into())
        .context("connecting the bots' UDP socket")?;
    UdpSocket::from_std(socket.into()).context("registering the bots' socket")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for a connect slot.
    Idle,
    /// QUIC handshake, then the hello call.
    Connecting,
    /// Welcomed; waiting for its room to exist, or for the create/join reply.
    Joining,
    Seated,
    /// Gone (failed, or closed at the end).
    Done,
}

struct Bot {
    index: usize,
    group: usize,
    creator: bool,
    stage: Stage,
    /// Which of the shard's sockets (the server's node) the bot connects to.
    peer: usize,
    /// The seat a move reserved, for the hello to the node it moved to, and how to trust
    /// that node.
    moved: Option<(String, ClientConfig)>,
    handle: Option<ConnectionHandle>,
    conn: Option<Connection>,
    control: Option<StreamId>,
    /// Control-stream bytes received and not yet a whole frame.
    inbox: Vec<u8>,
    /// Control-stream bytes not yet accepted by the stream (flow control).
    outbox: Vec<u8>,
    /// Snapshots too large for a datagram, on their own streams, by stream.
    streamed: HashMap<StreamId, Vec<u8>>,
    next_call: u32,
    me: PlayerId,
    welcomed_at: Option<Instant>,
    /// A joiner has asked to join its room.
    join_sent: bool,
    /// The room, once seated.
    watch: Option<RoomWatch>,
    seated_at: Option<Instant>,
    /// When this bot next times a round trip (bots spread over [`PING_EVERY`]).
    next_ping: Option<Instant>,
    world: ClientWorld,
    inputs: InputLog,
    /// None when the game gave no AI for this bot's seed: it then sends nothing.
    brain: Option<Box<dyn Ai>>,
    /// The deadline this bot has in the shard's timer heap.
    timer: Option<Instant>,
    dirty: bool,
    outcome: BotOutcome,
}

/// One room's bots as the shard sees them: who is in it and when their inputs go out.
struct Group {
    room: Option<RoomId>,
    members: Vec<usize>,
    next_input: Instant,
    /// When the newest snapshot reached any of its bots (they share the room's clock).
    last_arrival: Option<Instant>,
}

/// A socket connected to one node of the server.
struct Peer {
    addr: SocketAddr,
    socket: UdpSocket,
}

struct Shard {
    config: Arc<SwarmConfig>,
    progress: Arc<Progress>,
    client_config: ClientConfig,
    trust: Trust,
    /// The server's first node (where every bot starts), then the nodes bots were sent to.
    peers: Vec<Peer>,
    endpoint: Endpoint,
    bots: Vec<Bot>,
    by_handle: HashMap<ConnectionHandle, usize>,
    groups: HashMap<usize, Group>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    dirty: Vec<usize>,
    /// Bots whose room's inputs are due (scratch, kept to avoid allocating each round).
    due: Vec<usize>,
    next_duties: Instant,
    input_period: Duration,
    /// The server's snapshot rate, from the first welcome.
    snapshot_rate: u16,
    /// Pings carry their send time as microseconds since this instant.
    epoch: Instant,
    /// Datagram scratch buffers.
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    fn new(
        config: Arc<SwarmConfig>,
        progress: Arc<Progress>,
        (client_config, trust): (ClientConfig, Trust),
        entry: Peer,
        rooms: usize,
        groups: &[usize],
        members: Vec<usize>,
    ) -> Shard {
        let now = Instant::now();
        let input_period = Duration::from_secs_f64(1.0 / config.input_hz);
        let bots = members
            .iter()
            .map(|&index| Bot {
                index,
                group: index % rooms,
                creator: index < rooms && config.join.is_none(),
                stage: Stage::Idle,
                peer: 0,
                moved: None,
                handle: None,
                conn: None,
                control: None,
                inbox: Vec::new(),
                outbox: Vec::new(),
                streamed: HashMap::new(),
                next_call: 0,
                me: PlayerId(0),
                welcomed_at: None,
                join_sent: false,
                watch: None,
                seated_at: None,
                next_ping: None,
                world: ClientWorld::ticks_only(),
                inputs: InputLog::default(),
                brain: config.playbook.bot(index as u64 + 1),
                timer: None,
                dirty: false,
                outcome: BotOutcome::default(),
            })
            .collect::<Vec<_>>();
        let mut group_map: HashMap<usize, Group> = groups
            .iter()
            .map(|&g| {
                let group = Group {
                    room: config.join,
                    members: Vec::new(),
                    next_input: now + input_period,
                    last_arrival: None,
                };
                (g, group)
            })
            .collect();
        for (slot, bot) in bots.iter().enumerate() {
            if let Some(g) = group_map.get_mut(&bot.group) {
                g.members.push(slot);
            }
        }
        Shard {
            progress,
            client_config,
            trust,
            peers: vec![entry],
            endpoint: Endpoint::new(Arc::new(EndpointConfig::default()), None, true, None),
            bots,
            by_handle: HashMap::new(),
            groups: group_map,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            due: Vec::new(),
            next_duties: now,
            input_period,
            snapshot_rate: 0,
            epoch: now,
            send_buf: Vec::with_capacity(1500),
            recv_buf: vec![0; 64 * 1024],
            config,
        }
    }

    async fn run(mut self, deadline: Instant) -> anyhow::Result<Vec<(usize, BotOutcome)>> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now >= self.next_duties {
                // Every bot has given up: nothing is left to play, so the run ends now (as the
                // async swarm's does) rather than at the deadline.
                if self.bots.iter().all(|b| b.stage == Stage::Done) {
                    break;
                }
                self.next_duties = now + DUTIES_EVERY;
                self.start_connects(now);
                self.room_duties(now);
            }
            self.fire_timers(now);
            self.send_inputs(now);
            self.flush(now);
            let wake = self.next_wake().min(deadline);
            let peers = &self.peers;
            let readable = std::future::poll_fn(|cx| {
                for (i, peer) in peers.iter().enumerate() {
                    if let std::task::Poll::Ready(ready) = peer.socket.poll_recv_ready(cx) {
                        return std::task::Poll::Ready(ready.map(|()| i));
                    }
                }
                std::task::Poll::Pending
            });
            tokio::select! {
                readable = readable => {
                    let peer = readable.context("waiting on the bots' socket")?;
                    self.read_socket(peer);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        let now = Instant::now();
        for slot in 0..self.bots.len() {
            let bot = &mut self.bots[slot];
            if let Some(seated) = bot.seated_at {
                bot.outcome.seated_secs = now.duration_since(seated).as_secs_f64();
            }
            if let Some(conn) = bot.conn.as_mut() {
                conn.close(now, 0u32.into(), Bytes::from_static(b"bye"));
                bot.stage = Stage::Done;
                self.mark(slot);
            }
        }
        self.flush(now);
        Ok(self
            .bots
            .into_iter()
            .map(|b| (b.index, b.outcome))
            .collect())
    }

    fn mark(&mut self, slot: usize) {
        let bot = &mut self.bots[slot];
        if !bot.dirty {
            bot.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Starts handshakes, a few at a time across the whole shard, creators first.
    fn start_connects(&mut self, now: Instant) {
        let busy = self
            .bots
            .iter()
            .filter(|b| b.stage == Stage::Connecting)
            .count();
        let slots = (CONCURRENT_CONNECTS / 4).max(1).saturating_sub(busy);
        let waiting: Vec<usize> = self
            .bots
            .iter()
            .enumerate()
            .filter(|(_, b)| b.stage == Stage::Idle)
            .map(|(slot, _)| slot)
            .take(slots)
            .collect();
        for slot in waiting {
            let bot = &self.bots[slot];
            let config = match &bot.moved {
                Some((_, config)) => config.clone(),
                None => self.client_config.clone(),
            };
            let server = self.peers[bot.peer].addr;
            match self.endpoint.connect(now, config, server, "localhost") {
                Ok((handle, conn)) => {
                    let bot = &mut self.bots[slot];
                    bot.handle = Some(handle);
                    bot.conn = Some(conn);
                    bot.stage = Stage::Connecting;
                    self.by_handle.insert(handle, slot);
                    self.mark(slot);
                }
                Err(e) => self.fail(slot, &format!("cannot connect: {e}")),
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, slot))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let bot = &mut self.bots[slot];
            // A stale entry: the bot has an earlier one, or none (it was handled already).
            if bot.timer != Some(at) {
                continue;
            }
            bot.timer = None;
            if let Some(conn) = bot.conn.as_mut() {
                conn.handle_timeout(now);
            }
            self.mark(slot);
        }
    }

    /// Joins rooms created meanwhile, says ready when a room is full (or waited long enough),
    /// times round trips.
    fn room_duties(&mut self, now: Instant) {
        for slot in 0..self.bots.len() {
            let bot = &self.bots[slot];
            match bot.stage {
                Stage::Joining if !bot.join_sent && !bot.creator => {
                    let room = self.groups.get(&bot.group).and_then(|g| g.room);
                    let waited = bot
                        .welcomed_at
                        .is_some_and(|t| now.duration_since(t) > ROOM_WAIT);
                    if let Some(room) = room {
                        self.bots[slot].join_sent = true;
                        self.call(slot, Request::JoinRoom { room });
                    } else if waited {
                        self.fail(slot, "its room was never created");
                    }
                }
                Stage::Seated => {
                    let waited = bot
                        .seated_at
                        .is_some_and(|t| now.duration_since(t) >= READY_WAIT);
                    let bot = &mut self.bots[slot];
                    if bot.watch.as_mut().is_some_and(|w| w.take_ready(waited)) {
                        self.call(slot, Request::SetReady { ready: true });
                    }
                    if self.bots[slot].next_ping.is_some_and(|t| t <= now) {
                        self.bots[slot].next_ping = Some(now + PING_EVERY);
                        let client_time_us = now.duration_since(self.epoch).as_micros() as u64;
                        self.call(slot, Request::Ping { client_time_us });
                    }
                }
                _ => {}
            }
        }
    }

    /// Each room's inputs, all at once, a third of a snapshot interval after its snapshots
    /// arrive (re-aligned on every round, as the async bots do).
    fn send_inputs(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        for group in self.groups.values_mut() {
            if group.next_input > now {
                continue;
            }
            group.next_input = match group.last_arrival {
                Some(at) => next_input_at(at, self.snapshot_rate, self.input_period, now),
                None => now + self.input_period,
            };
            due.extend_from_slice(&group.members);
        }
        for &slot in &due {
            self.send_input(slot);
        }
        due.clear();
        self.due = due;
    }

    fn send_input(&mut self, slot: usize) {
        let bot = &mut self.bots[slot];
        if bot.stage != Stage::Seated {
            return;
        }
        let Some(view) = bot.world.current() else {
            return;
        };
        let Some(Ok(slots)) = bot.brain.as_mut().map(|b| b.act(bot.me, view)) else {
            return;
        };
        let (_, batch) = bot.inputs.next_batch(slots, Some(view.tick));
        let Ok(bytes) = packet::encode_input(&batch) else {
            return;
        };
        let Some(conn) = bot.conn.as_mut() else {
            return;
        };
        if conn.datagrams().send(Bytes::from(bytes), true).is_ok() {
            bot.outcome.inputs_sent += 1;
        }
        self.mark(slot);
    }

    fn next_wake(&self) -> Instant {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let inputs = self.groups.values().map(|g| g.next_input).min();
        [timer, inputs, Some(self.next_duties)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_duties)
    }

    fn read_socket(&mut self, peer: usize) {
        let now = Instant::now();
        // The socket is connected: whatever arrives came from that node.
        let from = self.peers[peer].addr;
        for _ in 0..READ_BATCH {
            let len = match self.peers[peer].socket.try_recv(&mut self.recv_buf) {
                Ok(len) => len,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("bots' socket: {e}");
                    break;
                }
            };
            let data = BytesMut::from(&self.recv_buf[..len]);
            self.send_buf.clear();
            match self
                .endpoint
                .handle(now, from, None, None, data, &mut self.send_buf)
            {
                Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                    if let Some(&slot) = self.by_handle.get(&handle)
                        && let Some(conn) = self.bots[slot].conn.as_mut()
                    {
                        conn.handle_event(event);
                        self.mark(slot);
                    }
                }
                Some(DatagramEvent::Response(transmit)) => {
                    let _ = self.peers[peer]
                        .socket
                        .try_send(&self.send_buf[..transmit.size]);
                }
                // A client endpoint accepts no connections.
                Some(DatagramEvent::NewConnection(_)) | None => {}
            }
        }
    }

    /// Lets every connection touched since the last flush act: endpoint bookkeeping, what the
    /// server sent, what to send, and its next timer.
    fn flush(&mut self, now: Instant) {
        while let Some(slot) = self.dirty.pop() {
            self.bots[slot].dirty = false;
            self.service(slot, now);
        }
    }

    fn service(&mut self, slot: usize, now: Instant) {
        let Some(handle) = self.bots[slot].handle else {
            return;
        };
        // Endpoint bookkeeping (connection ids; `drained` once a closed connection is done).
        while let Some(event) = self.bots[slot]
            .conn
            .as_mut()
            .and_then(Connection::poll_endpoint_events)
        {
            let drained = event.is_drained();
            if let Some(back) = self.endpoint.handle_event(handle, event)
                && let Some(conn) = self.bots[slot].conn.as_mut()
            {
                conn.handle_event(back);
            }
            if drained {
                self.by_handle.remove(&handle);
                self.bots[slot].conn = None;
                self.bots[slot].handle = None;
                return;
            }
        }
        while let Some(event) = self.bots[slot].conn.as_mut().and_then(Connection::poll) {
            self.on_event(slot, event, now);
        }
        self.write_control(slot);
        let peer = self.bots[slot].peer;
        let Some(conn) = self.bots[slot].conn.as_mut() else {
            return;
        };
        transmit(conn, &self.peers[peer].socket, &mut self.send_buf, now);
        let next = conn.poll_timeout();
        let bot = &mut self.bots[slot];
        if let Some(at) = next
            && bot.timer.is_none_or(|t| at < t)
        {
            bot.timer = Some(at);
            self.timers.push(Reverse((at, slot)));
        }
    }

    fn on_event(&mut self, slot: usize, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                let Some(conn) = self.bots[slot].conn.as_mut() else {
                    return;
                };
                match conn.streams().open(Dir::Bi) {
                    Some(id) => {
                        self.bots[slot].control = Some(id);
                        let name = format!("bot-{}", self.bots[slot].index);
                        let token = self.bots[slot].moved.as_ref().map(|(t, _)| t.clone());
                        self.call(
                            slot,
                            Request::Hello {
                                protocol: PROTOCOL_VERSION,
                                name,
                                token,
                                schemas: Vec::new(),
                                ticket: None,
                            },
                        );
                    }
                    None => self.fail(slot, "the server allows no control stream"),
                }
            }
            Event::ConnectionLost { reason } if self.bots[slot].stage != Stage::Done => {
                self.fail(slot, &format!("connection lost: {reason}"));
            }
            Event::Stream(StreamEvent::Readable { id }) => self.read_stream(slot, id, now),
            Event::Stream(StreamEvent::Opened { dir: Dir::Uni }) => {
                while let Some(id) = self.bots[slot]
                    .conn
                    .as_mut()
                    .and_then(|c| c.streams().accept(Dir::Uni))
                {
                    self.bots[slot].streamed.insert(id, Vec::new());
                    self.read_stream(slot, id, now);
                }
            }
            Event::DatagramReceived => {
                while let Some(datagram) = self.bots[slot]
                    .conn
                    .as_mut()
                    .and_then(|c| c.datagrams().recv())
                {
                    self.on_snapshot(slot, &datagram, now);
                }
            }
            _ => {}
        }
    }

    /// Reads what a stream has: control frames, or a large snapshot's bytes until its end.
    fn read_stream(&mut self, slot: usize, id: StreamId, now: Instant) {
        let bot = &mut self.bots[slot];
        let Some(conn) = bot.conn.as_mut() else {
            return;
        };
        let control = bot.control == Some(id);
        let mut recv = conn.recv_stream(id);
        let Ok(mut chunks) = recv.read(true) else {
            return;
        };
        let mut finished = false;
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(chunk)) if control => bot.inbox.extend_from_slice(&chunk.bytes),
                Ok(Some(chunk)) => {
                    if let Some(buf) = bot.streamed.get_mut(&id)
                        && buf.len() + chunk.bytes.len() <= packet::MAX_SNAPSHOT_PACKET_BYTES
                    {
                        buf.extend_from_slice(&chunk.bytes);
                    }
                }
                Ok(None) => {
                    finished = true;
                    break;
                }
                // Blocked (nothing more yet), reset or closed.
                Err(_) => break,
            }
        }
        let _ = chunks.finalize();
        if control {
            self.take_frames(slot, now);
        } else if finished && let Some(bytes) = self.bots[slot].streamed.remove(&id) {
            self.on_snapshot(slot, &bytes, now);
        }
    }

    fn take_frames(&mut self, slot: usize, now: Instant) {
        loop {
            let inbox = &self.bots[slot].inbox;
            let Some(len) = inbox
                .first_chunk::<4>()
                .map(|b| u32::from_le_bytes(*b) as usize)
            else {
                return;
            };
            if len > MAX_CONTROL_BYTES {
                self.fail(slot, &format!("control frame of {len} bytes"));
                return;
            }
            if inbox.len() < 4 + len {
                return;
            }
            let frame = codec::decode::<ServerFrame>(&inbox[4..4 + len], MAX_CONTROL_BYTES);
            self.bots[slot].inbox.drain(..4 + len);
            match frame {
                Ok(frame) => self.on_frame(slot, frame, now),
                Err(e) => {
                    self.fail(slot, &format!("bad control frame: {e}"));
                    return;
                }
            }
        }
    }

    fn on_frame(&mut self, slot: usize, frame: ServerFrame, now: Instant) {
        match frame {
            ServerFrame::Reply { result, .. } => match (self.bots[slot].stage, result) {
                (Stage::Connecting, Ok(Reply::Welcome(welcome))) => {
                    self.snapshot_rate = welcome.snapshot_rate;
                    let bot = &mut self.bots[slot];
                    bot.me = welcome.player;
                    bot.stage = Stage::Joining;
                    bot.welcomed_at = Some(now);
                    if bot.moved.is_some() {
                        match welcome.resumed {
                            Some(joined) => self.seated(slot, joined, now),
                            None => self.fail(slot, "the seat reserved on the room's node is gone"),
                        }
                        return;
                    }
                    let (creator, index) = (bot.creator, bot.index);
                    if creator {
                        let request = Request::CreateRoom(self.config.create_room(index));
                        self.call(slot, request);
                    }
                }
                (Stage::Connecting | Stage::Joining, Ok(Reply::Moved(moved))) => {
                    self.move_to(slot, moved, now)
                }
                (Stage::Joining, Ok(Reply::Joined(joined))) => self.seated(slot, joined, now),
                (_, Ok(Reply::Pong { client_time_us })) => {
                    let sent = self.epoch + Duration::from_micros(client_time_us);
                    let rtt = now.saturating_duration_since(sent);
                    self.bots[slot]
                        .outcome
                        .rtt_ms
                        .push(rtt.as_secs_f64() * 1000.0);
                }
                (Stage::Connecting | Stage::Joining, Err(e)) => {
                    self.fail(slot, &format!("{:?}: {}", e.code, e.message))
                }
                (_, Err(e)) => {
                    tracing::warn!(bot = self.bots[slot].index, "call refused: {}", e.message);
                    self.error(slot);
                }
                _ => {}
            },
            ServerFrame::Event(event) => {
                let bot = &mut self.bots[slot];
                let Some(watch) = bot.watch.as_mut() else {
                    return;
                };
                // Ready again for the rematch once the room waits (if it was ready before).
                if watch.on_event(&event, &mut bot.outcome) && watch.ready() {
                    self.call(slot, Request::SetReady { ready: true });
                }
            }
            ServerFrame::Error(e) => {
                tracing::warn!(bot = self.bots[slot].index, "server error: {}", e.message);
                self.error(slot);
            }
        }
    }

    /// The bot is in its room (joined, or back in the seat a move reserved).
    fn seated(&mut self, slot: usize, joined: Joined, now: Instant) {
        let bot = &mut self.bots[slot];
        bot.stage = Stage::Seated;
        bot.watch = Some(RoomWatch::new(bot.me, &joined));
        bot.seated_at = Some(now);
        // Spread the bots' pings over the interval instead of all at once.
        let phase = PING_EVERY.mul_f64(fastrand::f64());
        bot.next_ping = Some(now + phase);
        bot.outcome.connected = true;
        self.progress.connected.fetch_add(1, Ordering::Relaxed);
        let group = bot.group;
        if let Some(g) = self.groups.get_mut(&group) {
            g.room = Some(joined.room.id);
        }
    }

    /// The bot's room is on another node: it leaves this connection and connects there with
    /// the seat's token (through a socket connected to that node, made on first use).
    fn move_to(&mut self, slot: usize, moved: Moved, now: Instant) {
        let here = self.peers[self.bots[slot].peer].addr;
        let ip = match &moved.node.host {
            None => here.ip(),
            Some(host) => match host.parse() {
                Ok(ip) => ip,
                Err(_) => {
                    return self.fail(slot, &format!("light bots follow nodes by IP, not {host}"));
                }
            },
        };
        let addr = SocketAddr::new(ip, moved.node.quic_port);
        let peer = match self.peers.iter().position(|p| p.addr == addr) {
            Some(peer) => peer,
            None => match bind(addr) {
                Ok(socket) => {
                    self.peers.push(Peer { addr, socket });
                    self.peers.len() - 1
                }
                Err(e) => return self.fail(slot, &format!("{e:#}")),
            },
        };
        let config = match self.config_for(&moved.node.cert_sha256) {
            Ok(config) => config,
            Err(e) => return self.fail(slot, &format!("{e:#}")),
        };
        let old_peer = self.bots[slot].peer;
        let bot = &mut self.bots[slot];
        if let (Some(mut conn), Some(handle)) = (bot.conn.take(), bot.handle.take()) {
            conn.close(now, 0u32.into(), Bytes::from_static(b"moved"));
            transmit(
                &mut conn,
                &self.peers[old_peer].socket,
                &mut self.send_buf,
                now,
            );
            // Anything more from the old connection is dropped unread.
            self.by_handle.remove(&handle);
        }
        bot.control = None;
        bot.inbox.clear();
        bot.outbox.clear();
        bot.streamed.clear();
        bot.join_sent = true;
        bot.peer = peer;
        bot.moved = Some((moved.token, config));
        bot.stage = Stage::Idle;
    }

    /// How to trust a node the server sent a bot to: by the hash it gave (the same
    /// configuration as the first node's when the hash is the same).
    fn config_for(&self, cert_sha256: &str) -> anyhow::Result<ClientConfig> {
        let trust = self
            .trust
            .for_node(cert_sha256)
            .context("the node's hash")?;
        if trust == self.trust {
            return Ok(self.client_config.clone());
        }
        tickwire_client::connection::client_config(&trust).context("QUIC client setup")
    }

    /// Queues a request on the control stream; replies come back in order.
    fn call(&mut self, slot: usize, request: Request) {
        let bot = &mut self.bots[slot];
        bot.next_call += 1;
        let frame = ClientFrame {
            id: bot.next_call,
            request,
        };
        match codec::encode_frame(&frame) {
            Ok(bytes) => {
                bot.outbox.extend_from_slice(&bytes);
                self.mark(slot);
            }
            Err(e) => self.fail(slot, &format!("cannot encode a request: {e}")),
        }
    }

    fn write_control(&mut self, slot: usize) {
        let bot = &mut self.bots[slot];
        if bot.outbox.is_empty() {
            return;
        }
        let (Some(conn), Some(id)) = (bot.conn.as_mut(), bot.control) else {
            return;
        };
        // What flow control does not take now goes when the stream says it is writable (the
        // connection is serviced again on every packet).
        if let Ok(n) = conn.send_stream(id).write(&bot.outbox) {
            bot.outbox.drain(..n);
        }
    }

    fn on_snapshot(&mut self, slot: usize, packet_bytes: &[u8], now: Instant) {
        let bot = &mut self.bots[slot];
        let Ok((_, body)) = packet::decode_snapshot(packet_bytes) else {
            bot.outcome.errors += 1;
            return;
        };
        match bot.world.apply(body) {
            Ok(Applied::Newer { .. }) => {
                bot.outcome.snapshots += 1;
                bot.outcome.snapshot_bytes += packet_bytes.len() as u64;
                self.progress.snapshots.fetch_add(1, Ordering::Relaxed);
                if let Some(g) = self.groups.get_mut(&bot.group) {
                    g.last_arrival = Some(now);
                }
            }
            Ok(Applied::Stale(_)) => {}
            Err(e) => {
                tracing::debug!(bot = bot.index, "snapshot not decoded: {e}");
                bot.outcome.errors += 1;
            }
        }
    }

    fn error(&mut self, slot: usize) {
        self.bots[slot].outcome.errors += 1;
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The bot gives up: counted, logged, its connection closed.
    fn fail(&mut self, slot: usize, why: &str) {
        tracing::warn!(bot = self.bots[slot].index, "bot failed: {why}");
        self.error(slot);
        let bot = &mut self.bots[slot];
        bot.stage = Stage::Done;
        if let Some(seated) = bot.seated_at.take() {
            bot.outcome.seated_secs = seated.elapsed().as_secs_f64();
        }
        if let Some(conn) = bot.conn.as_mut() {
            conn.close(
                Instant::now(),
                0u32.into(),
                Bytes::from_static(b"bot failed"),
            );
        }
        self.mark(slot);
    }
}

/// Puts what a connection has to send on its node's socket (a full socket buffer drops the
/// packet; QUIC treats it as lost).
fn transmit(conn: &mut Connection, socket: &UdpSocket, buf: &mut Vec<u8>, now: Instant) {
    loop {
        buf.clear();
        let Some(transmit) = conn.poll_transmit(now, 1, buf) else {
            break;
        };
        let _ = socket.try_send(&buf[..transmit.size]);
    }
}
