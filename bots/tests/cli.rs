//! `tickwire-bots` keeps its contract: a local match and a match against a separately started
//! `tickwire-server` both end with one JSON report line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn bots() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tickwire-bots"))
}

/// The server binary sits beside ours in the target directory (the workspace's test run builds
/// it for the server's own CLI test).
fn server_binary() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_BIN_EXE_tickwire-bots"));
    here.with_file_name(format!("tickwire-server{}", std::env::consts::EXE_SUFFIX))
}

fn report(output: std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "bots failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a report line");
    serde_json::from_str(last).expect("the last line is JSON")
}

fn assert_clean_match(report: &serde_json::Value, bots: u64) {
    for key in [
        "bots",
        "connected",
        "rooms",
        "snapshots",
        "snapshot_bytes",
        "avg_snapshot_bytes",
        "inputs_sent",
        "rtt_ms_p50",
        "rtt_ms_p99",
        "matches_finished",
        "errors",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}: {report}");
    }
    assert_eq!(report["connected"], bots, "{report}");
    assert!(report["snapshots"].as_u64().unwrap() > 0, "{report}");
    assert!(report["inputs_sent"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn a_local_bot_match_reports_in_json() {
    let out = bots()
        .args([
            "--local",
            "--bots",
            "8",
            "--rooms",
            "2",
            "--duration",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert_clean_match(&report(out), 8);
}

#[test]
fn bots_play_against_a_separately_started_server() {
    let server = server_binary();
    if !server.exists() {
        panic!(
            "{} is not built; run the workspace's tests",
            server.display()
        );
    }
    let mut child = Command::new(server)
        .args([
            "--http",
            "127.0.0.1:0",
            "--quic",
            "127.0.0.1:0",
            "--no-match-log",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let field = |key: &str| {
        tickwire_server::Server::listening_field(&line, key)
            .map(str::to_owned)
            .unwrap()
    };
    // Where each kind of bot connects: QUIC with the server's pin, or its Socket.IO URL.
    let quic = [
        "--server".to_owned(),
        field("quic"),
        "--cert-sha256".to_owned(),
        field("cert-sha256"),
    ];
    let wrong_pin = [
        "--server".to_owned(),
        field("quic"),
        "--cert-sha256".to_owned(),
        "0".repeat(64),
    ];
    let socketio = [
        "--transport".to_owned(),
        "socketio".to_owned(),
        "--url".to_owned(),
        format!("http://{}", field("http")),
    ];
    let run = |target: &[String], rest: &str| {
        bots()
            .args(target)
            .args(rest.split_whitespace())
            .output()
            .unwrap()
    };
    let out = run(&quic, "--bots 4 --rooms 2 --duration 2 --json");
    let over_socketio = run(&socketio, "--bots 8 --rooms 2 --duration 3 --json");
    let over_socketio_light = run(&socketio, "--light --bots 4 --rooms 1 --duration 2 --json");
    // Light QUIC bots: the fleet that drives quinn's state machines itself.
    let light = run(&quic, "--light --bots 12 --rooms 2 --duration 3 --json");
    // A wrong pin is refused, by either kind of bot. A run whose every bot has failed ends
    // then, so the long duration only bounds a slow handshake on a busy machine.
    let wrong = run(&wrong_pin, "--bots 1 --duration 30 --json");
    let wrong_light = run(&wrong_pin, "--light --bots 1 --duration 30 --json");
    let _ = child.kill();
    let _ = child.wait();
    assert_clean_match(&report(out), 4);
    let over_socketio = report(over_socketio);
    assert_clean_match(&over_socketio, 8);
    assert_eq!(over_socketio["transport"], "socketio");
    assert_clean_match(&report(over_socketio_light), 4);
    let light = report(light);
    assert_clean_match(&light, 12);
    // Every seated second is due 60 snapshots (the server's default rate); most must arrive.
    let due = light["seated_secs"].as_f64().unwrap() * 60.0;
    assert!(
        light["snapshots"].as_f64().unwrap() > 0.5 * due,
        "light bots received too few snapshots: {light}"
    );
    assert!(light["rtt_ms_p50"].as_f64().unwrap() > 0.0, "{light}");
    for wrong in [report(wrong), report(wrong_light)] {
        assert_eq!(wrong["connected"], 0, "{wrong}");
        assert_eq!(wrong["errors"], 1, "{wrong}");
    }
}
