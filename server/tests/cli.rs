//! The `tickwire-server` binary keeps the contract: one `listening ...` line on stdout with
//! both addresses and the certificate hash, a working /healthz, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tickwire_server::Server;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn prints_the_listening_line_serves_health_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire-server"))
        .args(["--http", "127.0.0.1:0", "--quic", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(std::env::temp_dir().join(format!("tickwire-cli-{}", std::process::id())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Anything more on stdout breaks the contract.
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let _ = tx.send(rest.join("\n"));
    });
    let line = rx.recv_timeout(WAIT).expect("a listening line");
    assert!(line.starts_with("listening "), "{line}");
    let field = |key: &str| {
        Server::listening_field(&line, key)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    };
    let http = field("http");
    let quic: std::net::SocketAddr = field("quic").parse().unwrap();
    assert_eq!(quic.ip().to_string(), "127.0.0.1");
    assert_ne!(quic.port(), 0);
    let hash = field("cert-sha256");
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));

    let mut conn = TcpStream::connect(&http).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let exit = done_rx.recv_timeout(WAIT).expect("server exits").unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "", "nothing else on stdout");
}
