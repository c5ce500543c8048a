//! The real binary killed and stopped: `kill -9` mid-match and right after a match ends must
//! leave a match log of whole lines that holds every match a player saw end, and a restart on
//! the same data folder must start clean and go on numbering matches with new ids. SIGTERM
//! must tell the players (QUIC close code 3) and leave the log complete.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tickwire_client::{Client, ClientConfig, Decoding, GameClient, Trust};
use tickwire_protocol::{CreateRoom, RoomEvent, RoomState};
use tickwire_server::Server;

const WAIT: Duration = Duration::from_secs(20);

/// A running server process; killed if the test ends early.
struct Proc {
    /// Taken once the process has been waited for.
    child: Option<Child>,
    quic: std::net::SocketAddr,
    cert: String,
    /// Its stderr, line by line.
    log: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Proc {
    /// Starts the binary on `data` with short matches (1 s countdown, 2 s of play, 1 s of
    /// results) and waits for its listening line.
    fn start(data: &Path) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire-server"))
            .args(["--http", "127.0.0.1:0", "--quic", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data)
            .args(["--countdown-secs", "1", "--results-secs", "1"])
            .args(["--match-secs", "2", "--drones", "5"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = line_tx.send(line);
            }
            for _ in lines {}
        });
        let (log_tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = log_tx.send(line);
            }
        });
        let line = line_rx.recv_timeout(WAIT).expect("a listening line");
        let field = |key: &str| {
            Server::listening_field(&line, key)
                .unwrap_or_else(|| panic!("no {key}= in {line}"))
                .to_owned()
        };
        Proc {
            child: Some(child),
            quic: field("quic").parse().expect("a QUIC address"),
            cert: field("cert-sha256"),
            log,
        }
    }

    fn kill_9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("the killed server is reaped");
    }

    /// Sends SIGTERM and returns whether it exited cleanly within [`WAIT`].
    fn terminate(&mut self) -> bool {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(sent.expect("kill runs").success());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let exit = rx.recv_timeout(WAIT).expect("the server exits");
        exit.expect("wait").success()
    }

    /// Whether stderr said anything containing `text` (what it printed so far).
    fn said(&self, text: &str) -> bool {
        self.log.try_iter().any(|l| l.contains(text))
    }

    async fn player(&self, name: &str) -> Client {
        Client::connect(ClientConfig {
            server: self.quic,
            trust: Trust::pinned_hex(&self.cert).expect("a valid hash"),
            name: name.into(),
            token: None,
            ticket: None,
            decoding: Decoding::Full(tickwire_arena::view::schema()),
        })
        .await
        .expect("the player connects")
    }
}

fn data_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tickwire-crash-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The match log's lines; panics unless every line is whole JSON.
fn log_lines(data: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(data.join("matches.jsonl")).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the log ends in a partial line: {text:?}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A room of one player and three server bots, its match started.
async fn room_with_bots(player: &Client) {
    player
        .create_room(CreateRoom {
            name: "crash".into(),
            mode: "arena".into(),
            max_players: 4,
            private: false,
            bots: 3,
            fill_bots: false,
        })
        .await
        .expect("the room is made");
    player.start_match().await.expect("the match starts");
}

/// Waits for the next event that `pick` accepts, reading snapshots meanwhile.
async fn event_where<T>(player: &mut Client, mut pick: impl FnMut(RoomEvent) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = player.next_event().await.expect("the connection stays up");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("the event comes")
}

async fn match_ended(player: &mut Client) -> u32 {
    event_where(player, |e| match e {
        RoomEvent::MatchEnded(result) => Some(result.match_no),
        _ => None,
    })
    .await
}

/// After a match's results: the room waits again, and the owner starts the next match.
async fn next_match(player: &mut Client) -> u32 {
    event_where(player, |e| match e {
        RoomEvent::StateChanged {
            state: RoomState::Waiting,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    player.start_match().await.expect("the next match starts");
    match_started(player).await
}

async fn match_started(player: &mut Client) -> u32 {
    event_where(player, |e| match e {
        RoomEvent::MatchStarted { match_no } => Some(match_no),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_a_match_and_mid_match_loses_no_finished_match_and_restarts_clean() {
    let data = data_dir("kill");
    let mut ids = std::collections::BTreeSet::new();
    // Three lives of the server on one folder: killed the moment a match ends, killed in the
    // middle of the next match, and a last one that finds both results.
    for life in 0..3 {
        let mut server = Proc::start(&data);
        assert!(
            !server.said("partial line"),
            "the log needed no repair: results are written as whole lines"
        );
        let before = log_lines(&data).len();
        assert_eq!(before, life, "every result seen so far is in the log");
        let mut player = server.player("crash").await;
        room_with_bots(&player).await;
        let first = match_ended(&mut player).await;
        assert_eq!(first, 1);
        match life {
            // Killed as soon as a player has seen the result.
            0 => server.kill_9(),
            // Killed once the next match is under way.
            1 => {
                assert_eq!(next_match(&mut player).await, 2);
                server.kill_9();
            }
            _ => {
                player.close().await;
                assert!(server.terminate(), "a clean exit");
            }
        }
        let lines = log_lines(&data);
        assert_eq!(
            lines.len(),
            before + 1,
            "the match that ended is in the log"
        );
        for line in &lines[before..] {
            assert_eq!(line["matchNo"], 1);
            assert_eq!(line["roomName"], "crash");
        }
        ids.extend(lines.iter().map(|l| l["matchId"].to_string()));
        assert_eq!(ids.len(), lines.len(), "every match has its own id");
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_the_players_and_keeps_every_result() {
    let data = data_dir("term");
    let mut server = Proc::start(&data);
    let mut player = server.player("term").await;
    room_with_bots(&player).await;
    match_ended(&mut player).await;
    next_match(&mut player).await;
    let conn = player.connection().clone();
    // Mid-match: the match being played is not a result; the one before it is.
    assert!(server.terminate(), "a clean exit within the deadline");
    let closed = tokio::time::timeout(WAIT, conn.closed())
        .await
        .expect("the connection closes");
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, quinn::VarInt::from_u32(3), "{close:?}");
        }
        other => panic!("closed by {other:?}, not by the server's shutdown"),
    }
    let lines = log_lines(&data);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let _ = std::fs::remove_dir_all(&data);
}
