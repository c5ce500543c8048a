//! Room listings racing the rooms' ticks must never stop the server.
//!
//! The release binary once froze within seconds under this load: the lobby read a room's
//! published status twice in one expression while the room's tick queued to replace it, and the
//! two waited on each other, each holding a runtime worker. Here the real binary hosts many
//! ticking rooms while HTTP and Socket.IO listings (all rooms and `hasSpace`) and quick-joins
//! hammer the lobby for a bounded time; throughout, `/healthz` must answer and a bystander in a
//! room must keep receiving snapshots. At the end SIGTERM must stop it within its deadline.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tickwire_client::{Client, ClientConfig, Decoding, GameClient, SioClient, Trust};
use tickwire_protocol::{CreateRoom, Request};
use tickwire_server::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// These clients play the arena.
fn arena() -> Decoding {
    Decoding::Full(tickwire_arena::view::schema())
}

const ROOMS: usize = 200;
const HTTP_LOOPS: usize = 32;
const SOCKETIO_LISTERS: usize = 4;
const QUICK_JOINERS: usize = 4;
const LOAD_FOR: Duration = Duration::from_secs(30);
/// Longest a healthy server may leave `/healthz` or the bystander's snapshots waiting, on a
/// loaded 2-core machine; a frozen one never answers.
const STALL: Duration = Duration::from_secs(4);
/// The server's own shutdown deadline is 5 s; this leaves room for a loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(8);
const WAIT: Duration = Duration::from_secs(20);

/// Kills the server if the test ends early, so a failure never leaves it running.
struct ServerProcess(Option<Child>);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_server() -> (ServerProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire-server"))
        .args(["--http", "127.0.0.1:0", "--quic", "127.0.0.1:0"])
        .args([
            "--no-match-log",
            "--drones",
            "0",
            "--snapshot-rate",
            "10",
            "--tick-rate",
            "120",
        ])
        // Rooms whose creators left must stay open (and ticking) for the whole run.
        .args(["--empty-room-secs", "600", "--max-rooms", "2000"])
        // Hundreds of clients from one address, as a load test from one machine has, and the
        // listing loops' API requests (a quarter of this a second) never refused.
        .args(["--per-address-connections", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(WAIT).expect("a listening line");
    (ServerProcess(Some(child)), line)
}

/// One HTTP/1.1 request on a kept-alive connection; returns the status code.
async fn get(conn: &mut tokio::io::BufReader<TcpStream>, path: &str) -> std::io::Result<u16> {
    conn.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(status)
}

async fn open(http: SocketAddr) -> std::io::Result<tokio::io::BufReader<TcpStream>> {
    Ok(tokio::io::BufReader::new(TcpStream::connect(http).await?))
}

async fn healthy(http: SocketAddr) -> Result<(), String> {
    let check = async {
        let mut conn = open(http).await?;
        get(&mut conn, "/healthz").await
    };
    match tokio::time::timeout(STALL, check).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(code)) => Err(format!("/healthz answered {code}")),
        Ok(Err(e)) => Err(format!("/healthz failed: {e}")),
        Err(_) => Err(format!("/healthz did not answer within {STALL:?}")),
    }
}

fn create(name: String) -> CreateRoom {
    CreateRoom {
        name,
        mode: "arena".into(),
        max_players: 16,
        private: false,
        bots: 0,
        fill_bots: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_racing_ticks_never_freeze_the_server() {
    let (mut process, line) = start_server();
    let field = |key| Server::listening_field(&line, key).expect("listening field");
    let http: SocketAddr = field("http").parse().expect("http address");
    let quic: SocketAddr = field("quic").parse().expect("quic address");
    let trust = Trust::pinned_hex(field("cert-sha256")).expect("certificate hash");
    let url = format!("http://{http}");

    // Many ticking rooms, each created (and left) by its own socket.
    let creators = (0..ROOMS).map(|i| {
        let url = url.clone();
        async move {
            let mut client = SioClient::connect(&url, &format!("creator {i}"), arena()).await?;
            client.create_room(create(format!("room {i}"))).await?;
            client.leave_room().await?;
            client.close().await;
            Ok::<_, tickwire_client::ClientError>(())
        }
    });
    for created in futures_util::future::join_all(creators).await {
        created.expect("a room is created");
    }

    let quic_client = |name: &str| {
        Client::connect(ClientConfig {
            server: quic,
            trust: trust.clone(),
            name: name.to_owned(),
            token: None,
            ticket: None,
            decoding: arena(),
        })
    };
    let mut bystander = quic_client("bystander").await.expect("bystander connects");
    bystander
        .create_room(create("bystander's room".into()))
        .await
        .expect("bystander's room");
    let started = Instant::now();
    let last_snapshot = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watching = {
        let (last, stop) = (last_snapshot.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(STALL, bystander.next_snapshot()).await {
                    Ok(Ok(_)) => {
                        last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed)
                    }
                    Ok(Err(_)) | Err(_) => return,
                }
            }
        })
    };

    let mut load = Vec::new();
    for _ in 0..HTTP_LOOPS {
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut conn) = open(http).await else {
                    continue;
                };
                while !stop.load(Ordering::Relaxed) {
                    if get(&mut conn, "/api/rooms").await.is_err() {
                        break;
                    }
                }
            }
        }));
    }
    // Socket.IO and QUIC calls stay within the per-socket call rate (10/s), so each socket's
    // calls all reach the lobby.
    for i in 0..SOCKETIO_LISTERS {
        let (url, stop) = (url.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let Ok(client) = SioClient::connect(&url, &format!("lister {i}"), arena()).await else {
                return;
            };
            let mut pace = tokio::time::interval(Duration::from_millis(110));
            while !stop.load(Ordering::Relaxed) {
                pace.tick().await;
                let request = Request::ListRooms {
                    mode: Some("arena".into()),
                    open_only: true,
                };
                let _ = client.call(request).await;
            }
        }));
    }
    for i in 0..QUICK_JOINERS {
        let stop = stop.clone();
        let connecting = quic_client(&format!("joiner {i}"));
        load.push(tokio::spawn(async move {
            let Ok(mut client) = connecting.await else {
                return;
            };
            let mut pace = tokio::time::interval(Duration::from_millis(110));
            while !stop.load(Ordering::Relaxed) {
                pace.tick().await;
                if client.quick_join("arena").await.is_ok() {
                    pace.tick().await;
                    let _ = client.leave_room().await;
                }
            }
        }));
    }

    let mut failure = None;
    let mut checks = 0;
    while started.elapsed() < LOAD_FOR {
        if let Err(e) = healthy(http).await {
            failure = Some(e);
            break;
        }
        let since =
            started.elapsed() - Duration::from_millis(last_snapshot.load(Ordering::Relaxed));
        if since > STALL {
            failure = Some(format!("the bystander got no snapshot for {since:?}"));
            break;
        }
        checks += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);

    // Whether or not it froze, SIGTERM must end it within the deadline.
    let child = process.0.take().expect("server process");
    let pid = child.id().to_string();
    let signalled = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(signalled.expect("kill runs").success());
    let (exit_tx, exit_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = exit_tx.send(child.wait());
    });
    let exited = exit_rx.recv_timeout(EXIT_WITHIN).ok();
    if exited.is_none() {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
    watching.abort();
    for task in load {
        task.abort();
    }
    if let Some(failure) = failure {
        let after = match &exited {
            Some(status) => format!("SIGTERM ended it: {status:?}"),
            None => format!("it ignored SIGTERM for {EXIT_WITHIN:?}"),
        };
        panic!(
            "after {checks} healthy checks ({:?}): {failure}; {after}",
            started.elapsed()
        );
    }
    assert!(checks > 20, "only {checks} checks ran");
    let status = exited.unwrap_or_else(|| panic!("the server ignored SIGTERM for {EXIT_WITHIN:?}"));
    let status = status.expect("waiting on the server");
    assert!(status.success(), "the server exited with {status:?}");
}
