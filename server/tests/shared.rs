//! Machines sharing one lobby through Redis, with real processes: a `redis-server` of the
//! test's own on a loopback port, and `tickwire-server` processes (one node each, standing for
//! machines) joined to it. Faults are real too: `kill -9`, `SIGSTOP`, Redis restarted.
//!
//! Without `redis-server` on the machine these tests fail: `./scripts/test` installs Debian's.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tickwire_client::{Client, ClientConfig, ClientError, Decoding, GameClient, SioClient, Trust};
use tickwire_protocol::{CreateRoom, ErrorCode, RoomId};
use tickwire_server::Server;

/// Anything a test waits on: a lease (5 s) and a refresh or two fit well inside.
const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A process killed when the test is done with it, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} failed");
}

/// A redis-server of this test's own, with nothing saved to disk.
struct Redis {
    port: u16,
    process: Option<Reaped>,
}

impl Redis {
    async fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            process: None,
        };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts (again) on the same port, and waits until it answers.
    async fn restart(&mut self) {
        self.process = None;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (./scripts/test installs Debian's redis-server)");
        self.process = Some(Reaped(child));
        let addr = format!("127.0.0.1:{}", self.port);
        within("redis-server to answer", async {
            loop {
                if let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut pong = [0u8; 7];
                    if s.write_all(b"PING\r\n").await.is_ok()
                        && s.read_exact(&mut pong).await.is_ok()
                        && &pong == b"+PONG\r\n"
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }

    fn kill(&mut self) {
        self.process = None;
    }
}

/// A `tickwire-server` process joined to the shared directory: one machine.
struct Machine {
    process: Reaped,
    quic: SocketAddr,
    http: SocketAddr,
    cert: String,
    match_log: PathBuf,
}

impl Machine {
    fn start(redis: &Redis, name: &str) -> Machine {
        let match_log = std::env::temp_dir().join(format!(
            "tickwire-shared-{}-{name}-{}.jsonl",
            std::process::id(),
            free_port()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire-server"))
            .args([
                "--http",
                "127.0.0.1:0",
                "--quic",
                "127.0.0.1:0",
                "--nodes",
                "1",
            ])
            .args(["--redis", &redis.url(), "--drones", "0"])
            .args([
                "--match-secs",
                "1",
                "--countdown-secs",
                "0",
                "--results-secs",
                "1",
            ])
            .arg("--match-log")
            .arg(&match_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("a listening line");
        let field = |key: &str| {
            Server::listening_field(&line, key)
                .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
                .to_owned()
        };
        Machine {
            quic: field("quic").parse().expect("an address"),
            http: field("http").parse().expect("an address"),
            cert: field("cert-sha256"),
            process: Reaped(child),
            match_log,
        }
    }

    async fn connect(&self, name: &str) -> Client {
        self.connect_with(name, None).await
    }

    async fn connect_with(&self, name: &str, token: Option<String>) -> Client {
        Client::connect(ClientConfig {
            server: self.quic,
            trust: Trust::pinned_hex(&self.cert).expect("a hash"),
            name: name.into(),
            token,
            ticket: None,
            decoding: Decoding::Full(tickwire_arena::view::schema()),
        })
        .await
        .expect("the client connects")
    }

    /// The public rooms this machine lists (from its HTTP port: no player needed).
    async fn rooms(&self) -> Vec<u32> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(self.http).await else {
            return Vec::new();
        };
        let request = format!(
            "GET /api/rooms HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        );
        let mut body = String::new();
        if s.write_all(request.as_bytes()).await.is_err()
            || s.read_to_string(&mut body).await.is_err()
        {
            return Vec::new();
        }
        let json = body.split("\r\n\r\n").nth(1).unwrap_or("[]");
        let rooms: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
        let mut ids: Vec<u32> = rooms
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .map(|i| i as u32)
            .collect();
        ids.sort();
        ids
    }

    /// Waits until this machine lists exactly `rooms` (sorted).
    async fn lists(&self, what: &str, rooms: &[u32]) {
        within(what, async {
            loop {
                if self.rooms().await == rooms {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
    }
}

/// A redis-server of the test's own and two machines joined to it.
async fn two_machines() -> (Redis, Machine, Machine) {
    let redis = Redis::start().await;
    let (a, b) = (Machine::start(&redis, "a"), Machine::start(&redis, "b"));
    (redis, a, b)
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

fn room(name: &str, private: bool) -> CreateRoom {
    CreateRoom {
        name: name.into(),
        mode: "arena".into(),
        max_players: 4,
        private,
        bots: 0,
        fill_bots: false,
    }
}

/// Joins by `code` once the machine `client` is on knows it: the code of a room made a moment
/// ago on another machine reaches it within a refresh.
async fn join_by_code(client: &Client, code: &str, what: &str) -> tickwire_protocol::Joined {
    within(what, async {
        loop {
            let tried = client.join_by_code(code).await;
            if code_of(&tried) != Some(ErrorCode::BadCode) {
                return tried.expect("joined by code");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// Waits for a snapshot holding the player's own entity.
async fn sees_its_entity(
    client: &mut impl GameClient,
    entity: tickwire_protocol::NetId,
    what: &str,
) {
    within(what, async {
        loop {
            if client
                .next_snapshot()
                .await
                .unwrap()
                .snapshot
                .get(entity)
                .is_some()
            {
                return;
            }
        }
    })
    .await
}

fn port_of(client: &Client) -> u16 {
    client.connection().remote_address().port()
}

fn code_of(result: &Result<impl std::fmt::Debug, ClientError>) -> Option<ErrorCode> {
    match result {
        Err(ClientError::Server(e)) => Some(e.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_of_one_machine_are_listed_and_joined_through_another() {
    let (_redis, a, b) = two_machines().await;
    let host = a.connect("host").await;
    let open = host.create_room(room("open", false)).await.unwrap();
    let second = a.connect("second").await;
    let secret = second.create_room(room("secret", true)).await.unwrap();
    let code = secret.code.clone().expect("a code");
    // Room ids are unique across machines: each process has a block of its own.
    let other = b.connect("other").await;
    let own = other.create_room(room("b's", false)).await.unwrap();
    assert_ne!(own.room.id, open.room.id);
    let mut listed = vec![open.room.id.0, own.room.id.0];
    listed.sort();
    a.lists("a to list both machines' public rooms", &listed)
        .await;
    b.lists("b to list both machines' public rooms", &listed)
        .await;

    // Joined by code through b: the guest is sent to a, the room's machine.
    let guest = b.connect("guest").await;
    let joined = join_by_code(&guest, &code, "b to know the code").await;
    assert_eq!(joined.room.id, secret.room.id);
    assert_eq!(
        port_of(&guest),
        a.quic.port(),
        "the guest moved to the room's machine"
    );
    let mut guest = guest;
    sees_its_entity(&mut guest, joined.entity, "the guest's snapshots from a").await;

    // Over Socket.IO too: the Rust Socket.IO client follows the move to a's HTTP port.
    let url = format!("http://{}", b.http);
    let mut web = SioClient::connect(&url, "web", Decoding::Full(tickwire_arena::view::schema()))
        .await
        .expect("the Socket.IO client connects");
    let joined = web.join_by_code(&code).await.expect("joined by code");
    assert_eq!(joined.room.id, secret.room.id);
    assert_eq!(web.player(), joined.player);
    sees_its_entity(
        &mut web,
        joined.entity,
        "the Socket.IO guest's snapshots from a",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_joins_through_two_machines_at_once_fill_one_room() {
    let (_redis, a, b) = two_machines().await;
    let mut clients = Vec::new();
    for i in 0..12 {
        let machine = if i % 2 == 0 { &a } else { &b };
        clients.push(machine.connect(&format!("p{i}")).await);
    }
    let joins = futures_util::future::join_all(clients.iter().map(|c| c.quick_join("arena"))).await;
    let rooms: std::collections::BTreeSet<RoomId> = joins
        .into_iter()
        .map(|j| j.expect("a quick join").room.id)
        .collect();
    // Rooms of 16 (the default): twelve players fit in one.
    assert_eq!(rooms.len(), 1, "no second room: {rooms:?}");
    let ports: std::collections::BTreeSet<u16> = clients.iter().map(port_of).collect();
    assert_eq!(ports.len(), 1, "everyone is on the room's machine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_machine_drops_out_of_the_listings_and_its_seats_are_room_lost() {
    let (_redis, mut a, b) = two_machines().await;
    let host = a.connect("host").await;
    let made = host.create_room(room("doomed", false)).await.unwrap();
    b.lists("b to list a's room", &[made.room.id.0]).await;

    signal(&a.process.0, "-KILL");
    let _ = a.process.0.wait();
    b.lists("b to drop the killed machine's room within the lease", &[])
        .await;
    // The player comes back through b with its token: told at once that the room is gone.
    let back = b.connect_with("host", Some(made.reconnect_token)).await;
    assert_eq!(back.welcome().resumed, None);
    let lost = back.welcome().lost.clone().expect("told why");
    assert_eq!(lost.code, ErrorCode::RoomLost, "{lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_frozen_past_its_lease_comes_back_and_lists_its_rooms_again() {
    let (_redis, a, b) = two_machines().await;
    let host = a.connect("host").await;
    let made = host.create_room(room("sleepy", false)).await.unwrap();
    b.lists("b to list a's room", &[made.room.id.0]).await;

    signal(&a.process.0, "-STOP");
    b.lists("b to drop the frozen machine's room", &[]).await;
    signal(&a.process.0, "-CONT");
    b.lists("b to list a's room again", &[made.room.id.0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_stops_no_room_and_everything_converges_again() {
    let (mut redis, a, b) = two_machines().await;
    let mut host = a.connect("host").await;
    let made = host.create_room(room("steady", false)).await.unwrap();
    let other = b.connect("other").await;
    let theirs = other.create_room(room("theirs", false)).await.unwrap();
    let mut both = vec![made.room.id.0, theirs.room.id.0];
    both.sort();
    a.lists("a to list both rooms", &both).await;

    redis.kill();
    // Rooms go on: a's room keeps sending its snapshots and plays a match to its result.
    host.start_match().await.unwrap();
    let ticks_then = host.next_snapshot().await.unwrap().snapshot.tick;
    let ended = within("a match to end with Redis down", async {
        loop {
            if let tickwire_protocol::RoomEvent::MatchEnded(result) =
                host.next_event().await.unwrap()
            {
                return result;
            }
        }
    })
    .await;
    let ticks_now = host.next_snapshot().await.unwrap().snapshot.tick;
    assert!(ticks_now > ticks_then, "the room ticked through the outage");
    // Each machine still lists its own room.
    a.lists("a to keep its own room", &[made.room.id.0]).await;

    redis.restart().await;
    a.lists("a to list both rooms again", &both).await;
    b.lists("b to list both rooms again", &both).await;
    // A private room made after the restart is joined by code through the other machine.
    let creator = b.connect("creator").await;
    let secret = creator.create_room(room("new", true)).await.unwrap();
    let code = secret.code.expect("a code");
    let guest = a.connect("guest").await;
    let joined = join_by_code(&guest, &code, "a to know the new code").await;
    assert_eq!(port_of(&guest), b.quic.port());
    assert_eq!(joined.room.id, secret.room.id);
    // The result of the match played during the outage is in a's match log.
    let log = std::fs::read_to_string(&a.match_log).unwrap_or_default();
    let logged = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|l| l["room"] == made.room.id.0 && l["matchNo"] == ended.match_no);
    assert!(logged, "the result was logged: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_retried_after_its_node_timed_out_makes_one_room() {
    let (_redis, a, b) = two_machines().await;
    // b is the busier machine, so a new room asked of b goes to a.
    let busy = b.connect("busy").await;
    let theirs = busy.create_room(room("b's", false)).await.unwrap();
    a.lists("a to list b's room", &[theirs.room.id.0]).await;
    let maker = b.connect("maker").await;

    // a freezes for longer than b waits for it (3 s), not for its lease (5 s).
    signal(&a.process.0, "-STOP");
    let first = maker.create_room(room("once", false)).await;
    assert_eq!(code_of(&first), Some(ErrorCode::Timeout), "{first:?}");
    signal(&a.process.0, "-CONT");
    // The same create again: a carried out the first one when it woke, and answers with it.
    let made = within("the retried create", async {
        loop {
            match maker.create_room(room("once", false)).await {
                Err(ClientError::Server(e)) if e.code == ErrorCode::Timeout => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the retried create");
    assert_eq!(port_of(&maker), a.quic.port(), "the room is on a");
    let mut both = vec![theirs.room.id.0, made.room.id.0];
    both.sort();
    b.lists("one room made, not two", &both).await;
    a.lists("a to list one room of its own", &both).await;
}
