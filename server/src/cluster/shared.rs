//! The directory machines share, in Redis (`--redis redis://…`): every node's address and the
//! rooms it hosts, written by that node as keys with a time to live ([`LEASE`]), renewed every
//! [`REFRESH`]. Nothing is ever cleaned up on another node's behalf: a node that stops renewing
//! (killed, frozen, cut off) drops out of every listing when its keys expire, and one that comes
//! back writes them again. Each process mirrors the other machines' entries into its own
//! [`Directory`](super::Directory) once a [`REFRESH`], so listing and routing never wait on
//! Redis, and an outage stops no tick: the mirror keeps what it last read for a lease, then
//! lapses; the node's own keys are written again as soon as Redis answers.
//!
//! A player sent to another machine's node gets a seat reserved there first: the node that
//! answered the player publishes the call on the room node's channel, that node's lobby seats
//! the player as a reservation and publishes the token back ([`Remote::reserve`]).
//!
//! Keys (all under `tickwire:`): `node:ID` (its public [`NodeAddress`]), `room:ID` (a
//! [`Listing`]), `code:CODE` (the room id: claimed only if free), `process:N` (a process's room
//! id block), the counter `processes`; channels `to:ID`.

use super::{Cluster, LEASE, Listing, NodeId};
use crate::game::Identity;
use crate::lobby::SeatCall;
use crate::peers::PeerKey;
use crate::session::{Seeker, reserve_seat};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ProtocolVersion, PushInfo, PushKind, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tickwire_protocol::{ErrorBody, ErrorCode, NodeAddress, RoomId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// How often a node renews its keys and reads the others'.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a node waits after a change of its rooms before writing them, so a burst of
/// changes is written once.
const COALESCE: Duration = Duration::from_millis(100);
/// How long a node waits for another machine's node to reserve a seat.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a process waits for Redis at start-up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages from Redis waiting to be read (calls and answers between nodes); past this they
/// are dropped, and their callers time out.
const PUSH_QUEUE: usize = 1024;
/// Room ids per process: a process's ids are its number times this, plus a count.
const ROOMS_PER_PROCESS: u32 = 1 << 20;
/// Process numbers in use at once at most (room ids are 32 bits).
const PROCESSES: u64 = (u32::MAX / ROOMS_PER_PROCESS) as u64;

const PREFIX: &str = "tickwire:";

fn node_key(node: &str) -> String {
    format!("{PREFIX}node:{node}")
}

fn room_key(room: RoomId) -> String {
    format!("{PREFIX}room:{}", room.0)
}

fn code_key(code: &str) -> String {
    format!("{PREFIX}code:{code}")
}

fn process_key(n: u64) -> String {
    format!("{PREFIX}process:{n}")
}

fn channel(node: &str) -> String {
    format!("{PREFIX}to:{node}")
}

/// Takes a key for `ARGV[1]` if it is free or already this value, for `ARGV[2]` seconds; 0 when
/// someone else holds it.
const CLAIM: &str = "local v = redis.call('GET', KEYS[1]) \
     if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end \
     return 0";

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("bad --redis URL: {0}")]
    Url(redis::RedisError),
    #[error("cannot reach Redis at {url} within {START_TIMEOUT:?}: {source}")]
    Unreachable {
        url: String,
        source: redis::RedisError,
    },
}

/// A connection to the shared directory, made before the nodes start (their room ids come from
/// the process number it claims).
pub struct Shared {
    conn: ConnectionManager,
    pushes: mpsc::Receiver<PushInfo>,
    process: u64,
    /// What other machines' players are told to connect to (`--public-host`).
    host: String,
}

impl Shared {
    /// Connects, and claims a process number no live process holds.
    pub async fn connect(url: &str, host: String, first_node: &str) -> Result<Shared, SharedError> {
        let info =
            redis::IntoConnectionInfo::into_connection_info(url).map_err(SharedError::Url)?;
        // RESP3, for pub/sub messages on the same multiplexed connection.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(SharedError::Url)?;
        let (tx, pushes) = mpsc::channel(PUSH_QUEUE);
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push| tx.try_send(push))
            .set_automatic_resubscription()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_max_delay(Duration::from_secs(1));
        let unreachable = |source| SharedError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let mut conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unreachable)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let process = loop {
            match claim_process(&mut conn, first_node).await {
                Ok(n) => break n,
                Err(e) if Instant::now() >= deadline => return Err(unreachable(e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        tracing::info!(process, "joined the shared directory");
        Ok(Shared {
            conn,
            pushes,
            process,
            host,
        })
    }

    /// The first room id of this process's block.
    pub fn first_room_id(&self) -> u32 {
        self.process as u32 * ROOMS_PER_PROCESS + 1
    }

    /// Starts renewing this process's nodes and rooms, mirroring the others', and answering
    /// their calls; returns what sessions call other nodes with.
    pub async fn run(self, cluster: Arc<Cluster>, mut down: watch::Receiver<bool>) -> Arc<Remote> {
        let Shared {
            mut conn,
            pushes,
            process,
            host,
        } = self;
        for node in cluster.nodes() {
            if let Err(e) = conn.subscribe(channel(&node.id)).await {
                tracing::warn!("cannot subscribe to node {}'s calls yet: {e}", node.id);
            }
        }
        let remote = Arc::new(Remote {
            conn: conn.clone(),
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            from: cluster.node(0).id.clone(),
        });
        tokio::spawn(listen(
            pushes,
            cluster.clone(),
            remote.clone(),
            host.clone(),
        ));
        let mut sync = Sync {
            conn,
            cluster,
            process,
            host,
            published: BTreeSet::new(),
            reachable: true,
        };
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REFRESH);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let directory = sync.cluster.directory().clone();
            loop {
                tokio::select! {
                    _ = every.tick() => sync.round().await,
                    // A room was made, filled or closed: other machines hear of it now (a
                    // burst of changes is written once, after a moment).
                    _ = directory.changed() => {
                        tokio::time::sleep(COALESCE).await;
                        if let Err(e) = sync.publish().await {
                            sync.unreachable(e);
                        }
                    }
                    _ = async { let _ = down.wait_for(|d| *d).await; } => break,
                }
            }
        });
        remote
    }
}

/// Claims the next free process number (`processes` counts up; a number still held by a live
/// process is skipped).
async fn claim_process(conn: &mut ConnectionManager, node: &str) -> redis::RedisResult<u64> {
    for _ in 0..PROCESSES {
        let n: u64 = conn.incr(format!("{PREFIX}processes"), 1).await?;
        let n = n % PROCESSES;
        if n == 0 {
            continue;
        }
        let taken: bool = claim(conn, &process_key(n), node).await?;
        if taken {
            return Ok(n);
        }
    }
    Err(redis::RedisError::from((
        redis::ErrorKind::Client,
        "every process number is taken",
    )))
}

async fn claim(conn: &mut ConnectionManager, key: &str, value: &str) -> redis::RedisResult<bool> {
    let mut pipe = redis::pipe();
    claim_in(&mut pipe, key, value);
    let [held]: [bool; 1] = pipe.query_async(conn).await?;
    Ok(held)
}

/// Adds to `pipe` the claim of `key` for `value` for a lease ([`CLAIM`]); it answers whether
/// the key is held now.
fn claim_in(pipe: &mut redis::Pipeline, key: &str, value: &str) {
    pipe.cmd("EVAL")
        .arg(CLAIM)
        .arg(1)
        .arg(key)
        .arg(value)
        .arg(LEASE.as_secs());
}

/// One process's part of keeping the shared directory.
struct Sync {
    conn: ConnectionManager,
    cluster: Arc<Cluster>,
    process: u64,
    host: String,
    /// Rooms this process wrote last round, to delete the keys of those that closed.
    published: BTreeSet<RoomId>,
    /// Whether the last round reached Redis (an outage is logged once, not every second).
    reachable: bool,
}

impl Sync {
    async fn round(&mut self) {
        let result = async {
            self.publish().await?;
            self.read().await
        }
        .await;
        match result {
            Ok(()) if !self.reachable => {
                tracing::info!("the shared directory is back; this process's entries are renewed");
                self.reachable = true;
            }
            Ok(()) => {}
            Err(e) => self.unreachable(e),
        }
    }

    fn unreachable(&mut self, e: redis::RedisError) {
        if self.reachable {
            tracing::warn!("the shared directory is out of reach: {e}");
        }
        self.reachable = false;
        crate::metrics::directory_error();
        // What was read of the other machines stays for its lease, no longer.
        self.cluster
            .directory()
            .lock()
            .lapse(Instant::now().into_std());
    }

    /// Writes (again) every key of this process in one round trip: its nodes, its rooms, its
    /// room id block and its rooms' codes (the last two claimed, not taken).
    async fn publish(&mut self) -> redis::RedisResult<()> {
        let ttl = LEASE.as_secs();
        let mut pipe = redis::pipe();
        let mut codes = Vec::new();
        let mut now_published = BTreeSet::new();
        {
            let directory = self.cluster.directory().lock();
            for node in self.cluster.nodes() {
                let address = NodeAddress {
                    host: Some(self.host.clone()),
                    ..node.address.clone()
                };
                pipe.set_ex(node_key(&node.id), json(&address), ttl)
                    .ignore();
                for listing in directory.rooms_of(&node.id) {
                    now_published.insert(listing.info.id);
                    pipe.set_ex(room_key(listing.info.id), json(&listing), ttl)
                        .ignore();
                    if let Some(code) = listing.code {
                        codes.push((listing.info.id, code));
                    }
                }
            }
        }
        for gone in self.published.difference(&now_published) {
            pipe.del(room_key(*gone)).ignore();
        }
        // The claims' answers, in order: the id block's, then each code's.
        claim_in(
            &mut pipe,
            &process_key(self.process),
            &self.cluster.node(0).id,
        );
        for (room, code) in &codes {
            claim_in(&mut pipe, &code_key(code), &room.0.to_string());
        }
        let held: Vec<bool> = pipe.query_async(&mut self.conn).await?;
        self.published = now_published;
        if held.first() == Some(&false) {
            tracing::error!(
                process = self.process,
                "another process holds this process's room ids"
            );
        }
        for ((room, _), held) in codes.iter().zip(held.iter().skip(1)) {
            if !held {
                tracing::error!(room = %room, "another room holds this room's code");
            }
        }
        Ok(())
    }

    /// Mirrors every other machine's nodes and rooms.
    async fn read(&mut self) -> redis::RedisResult<()> {
        let nodes: Vec<(String, NodeAddress)> = self.scan("node:*").await?;
        let rooms: Vec<(String, Listing)> = self.scan("room:*").await?;
        let nodes = nodes
            .into_iter()
            .filter_map(|(key, address)| {
                Some((key.strip_prefix(&node_key(""))?.to_owned(), address))
            })
            .collect();
        let rooms = rooms.into_iter().map(|(_, l)| l).collect();
        self.cluster
            .directory()
            .lock()
            .mirror(Instant::now().into_std(), nodes, rooms);
        Ok(())
    }

    /// Every key matching `pattern` (under the prefix) with its JSON value; keys that expire
    /// meanwhile, or hold what this version cannot read, are left out.
    async fn scan<T: serde::de::DeserializeOwned>(
        &mut self,
        pattern: &str,
    ) -> redis::RedisResult<Vec<(String, T)>> {
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .cursor_arg(cursor)
                .arg("MATCH")
                .arg(format!("{PREFIX}{pattern}"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = self.conn.mget(&keys).await?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k, serde_json::from_str(&v?).ok()?)))
            .collect())
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A player as one node tells another about it.
#[derive(serde::Serialize, serde::Deserialize)]
struct WireSeeker {
    name: String,
    origin: PeerKey,
    identity: Option<(
        String,
        Option<String>,
        serde_json::Map<String, serde_json::Value>,
    )>,
}

/// What nodes publish on each other's channels.
#[derive(serde::Serialize, serde::Deserialize)]
enum Envelope {
    /// Seat this player and answer on `from`'s channel.
    Call {
        from: NodeId,
        id: u64,
        seeker: WireSeeker,
        call: SeatCall,
    },
    Answer {
        id: u64,
        result: Answered,
    },
}

/// A call's answer: the seat's token, and where the node that holds it is reached (the caller
/// may not have mirrored a node that has just started).
type Answered = Result<(String, NodeAddress), ErrorBody>;

/// What a session calls another machine's node with.
pub struct Remote {
    conn: ConnectionManager,
    /// Calls waiting for their answer, by id.
    pending: Mutex<HashMap<u64, oneshot::Sender<Answered>>>,
    next: AtomicU64,
    /// The node answers come to.
    from: NodeId,
}

impl Remote {
    /// Asks `node` to seat `seeker` as a reservation. A call not answered in time fails; a seat
    /// it may still have made expires by itself, so nothing is left behind, and it is never
    /// tried on another node (a room made twice).
    pub async fn reserve(&self, node: &str, id: u64, seeker: Seeker, call: SeatCall) -> Answered {
        let identity = seeker
            .identity
            .as_ref()
            .map(|i| (i.subject.clone(), i.name.clone(), i.claims.clone()));
        let envelope = Envelope::Call {
            from: self.from.clone(),
            id,
            seeker: WireSeeker {
                name: seeker.name,
                origin: seeker.origin,
                identity,
            },
            call,
        };
        let (tx, rx) = oneshot::channel();
        self.pending_calls().insert(id, tx);
        let mut conn = self.conn.clone();
        let sent: redis::RedisResult<i64> = conn.publish(channel(node), json(&envelope)).await;
        let answer = match sent {
            Ok(0) => Err(ErrorBody::new(
                ErrorCode::RoomLost,
                "the room's node is not listening",
            )),
            Err(e) => Err(ErrorBody::new(
                ErrorCode::Internal,
                format!("cannot reach the room's node: {e}"),
            )),
            Ok(_) => match tokio::time::timeout(CALL_TIMEOUT, rx).await {
                Ok(Ok(answer)) => answer,
                _ => Err(ErrorBody::new(
                    ErrorCode::Timeout,
                    "the room's node did not answer in time; try again",
                )),
            },
        };
        self.pending_calls().remove(&id);
        answer
    }

    pub fn new_call_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The node that opens a new room for quick joins of `mode`: `candidate`, unless another
    /// node claimed that in the last [`OPENING`](super::directory::OPENING). Without Redis,
    /// `candidate`.
    pub async fn opening(&self, mode: &str, candidate: NodeId) -> NodeId {
        let key = format!("{PREFIX}opening:{mode}");
        let mut conn = self.conn.clone();
        let claimed: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(&key)
            .arg(&candidate)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(super::directory::OPENING.as_millis() as u64)
            .query_async(&mut conn)
            .await;
        match claimed {
            Ok(Some(holder)) => holder,
            Ok(None) | Err(_) => candidate,
        }
    }

    /// The node of the room that holds `code` in the shared directory (a room this process
    /// has not mirrored yet); `None` when none does, or Redis cannot say.
    pub async fn find_code(&self, code: &str) -> Option<NodeId> {
        let mut conn = self.conn.clone();
        let code = code.trim().to_ascii_uppercase();
        let room: Option<u32> = conn.get(code_key(&code)).await.ok()?;
        let listing: Option<String> = conn.get(room_key(RoomId(room?))).await.ok()?;
        let listing: Listing = serde_json::from_str(&listing?).ok()?;
        Some(listing.node)
    }

    fn pending_calls(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Answered>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a node remembers a call it carried out, for the caller asking again.
const REMEMBER: Duration = Duration::from_secs(60);

/// A call from another node: its caller and the caller's id for it.
type CallKey = (NodeId, u64);

/// When a call came, and its answer once there is one (as published).
type Remembered = (Instant, Option<String>);

/// Calls from other nodes: running (no answer yet) or answered, for [`REMEMBER`].
#[derive(Clone, Default)]
struct Answers(Arc<Mutex<HashMap<CallKey, Remembered>>>);

impl Answers {
    /// What is known of the call, marking it running when it is new.
    fn take(&self, key: &CallKey) -> Option<Option<String>> {
        let mut calls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        calls.retain(|_, (at, _)| now.duration_since(*at) < REMEMBER);
        if let Some((_, answer)) = calls.get(key) {
            return Some(answer.clone());
        }
        calls.insert(key.clone(), (now, None));
        None
    }

    fn done(&self, key: CallKey, answer: String) {
        let mut calls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        calls.insert(key, (Instant::now(), Some(answer)));
    }
}

/// Reads the messages published to this process's nodes: calls from other nodes (each served
/// in a task of its own) and answers to this process's calls.
async fn listen(
    mut pushes: mpsc::Receiver<PushInfo>,
    cluster: Arc<Cluster>,
    remote: Arc<Remote>,
    host: String,
) {
    let answered = Answers::default();
    while let Some(push) = pushes.recv().await {
        if push.kind != PushKind::Message {
            continue;
        }
        let [Value::BulkString(to), Value::BulkString(body)] = push.data.as_slice() else {
            continue;
        };
        let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
            tracing::debug!("unreadable message between nodes");
            continue;
        };
        match envelope {
            Envelope::Answer { id, result } => {
                if let Some(waiting) = remote.pending_calls().remove(&id) {
                    let _ = waiting.send(result);
                }
            }
            Envelope::Call {
                from,
                id,
                seeker,
                call,
            } => {
                let to = String::from_utf8_lossy(to);
                let Some(node) = cluster.nodes().iter().position(|n| channel(&n.id) == to) else {
                    continue;
                };
                // A call asked again after its caller timed out is carried out once: it gets
                // the first one's answer (or, still running, the first one's answer is
                // published under the same id).
                let key = (from.clone(), id);
                match answered.take(&key) {
                    Some(Some(answer)) => {
                        let mut conn = remote.conn.clone();
                        let _: redis::RedisResult<i64> = conn.publish(channel(&from), answer).await;
                        continue;
                    }
                    Some(None) => continue,
                    None => {}
                }
                let (cluster, mut conn) = (cluster.clone(), remote.conn.clone());
                let answered = answered.clone();
                let address = NodeAddress {
                    host: Some(host.clone()),
                    ..cluster.node(node).address.clone()
                };
                tokio::spawn(async move {
                    let lobby = &cluster.node(node).lobby;
                    let seeker = Seeker {
                        player: lobby.new_player_id(),
                        name: seeker.name,
                        identity: seeker.identity.map(|(subject, name, claims)| {
                            Arc::new(Identity {
                                subject,
                                name,
                                claims,
                            })
                        }),
                        origin: seeker.origin,
                        link_id: lobby.new_link_id(),
                    };
                    let result = reserve_seat(lobby, seeker, call)
                        .await
                        .map(|token| (token, address));
                    let answer = json(&Envelope::Answer { id, result });
                    answered.done(key, answer.clone());
                    let _: redis::RedisResult<i64> = conn.publish(channel(&from), answer).await;
                });
            }
        }
    }
}
