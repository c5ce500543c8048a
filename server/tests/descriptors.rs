//! A server started under a small open-file limit, held to it by idle TCP connections (the
//! attack: 1,100 of them under the default 1,024 made `/healthz` and every new player time
//! out): it refuses the connections past its cap cleanly, says so, and keeps serving players.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tickwire_client::{Client, ClientConfig, Decoding, GameClient, Trust};
use tickwire_server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
/// The hard (and so the soft) open-file limit the server runs under.
const NOFILE: u32 = 256;

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines the server prints, on a thread each for stdout and stderr.
fn lines(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

async fn healthz(http: SocketAddr) -> String {
    let mut conn = TcpStream::connect(http).await.unwrap();
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_at_the_descriptor_limit_are_refused_and_players_still_get_in() {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -n {NOFILE} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tickwire-server"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--quic",
            "127.0.0.1:0",
            "--no-match-log",
        ])
        // The per-address cap would come first; this test is about the descriptor one.
        .args(["--per-address-connections", "2000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let (stdout, stderr) = (
        lines(child.stdout.take().unwrap()),
        lines(child.stderr.take().unwrap()),
    );
    let server = ServerProcess(child);
    let line = stdout.recv_timeout(WAIT).expect("a listening line");
    let field = |key| Server::listening_field(&line, key).expect("listening field");
    let http: SocketAddr = field("http").parse().unwrap();

    // Some descriptors are kept back for everything else; hold every HTTP one.
    let cap = tickwire_server::accept::cap_below(NOFILE.into());
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(TcpStream::connect(http).await.unwrap());
    }
    let refused = tokio::time::timeout(WAIT, healthz(http))
        .await
        .expect("answered");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    let said = (0..)
        .map_while(|_| stderr.recv_timeout(WAIT).ok())
        .find(|l| l.contains("refusing HTTP connections"));
    assert!(said.is_some_and(|l| l.contains("connection cap")));

    // Players still get in over QUIC, whose connections cost no descriptor.
    let player = Client::connect(ClientConfig {
        server: field("quic").parse().unwrap(),
        trust: Trust::pinned_hex(field("cert-sha256")).unwrap(),
        name: "player".into(),
        token: None,
        ticket: None,
        decoding: Decoding::TicksOnly,
    });
    let player = tokio::time::timeout(WAIT, player).await.expect("in time");
    player.expect("a player connects").close().await;

    // And HTTP comes back as soon as connections go.
    held.truncate(cap - 8);
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            let reply = healthz(http).await;
            if !reply.starts_with("HTTP/1.1 503") {
                break reply;
            }
        }
    })
    .await
    .expect("a place comes free");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered:?}");
    drop((held, server));
}
