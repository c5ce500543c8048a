//! tickwire's bots play a game of one's own: `coins-bots --local` seats bots that play coins
//! with its `Greedy` AI in an in-process server and reports like `tickwire-bots`.

use std::process::Command;

#[test]
fn the_bots_play_coins_with_its_own_ai() {
    let out = Command::new(env!("CARGO_BIN_EXE_coins-bots"))
        .args([
            "--local",
            "--bots",
            "4",
            "--rooms",
            "1",
            "--duration",
            "4",
            "--json",
        ])
        .output()
        .expect("coins-bots runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "coins-bots failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a report line")).expect("JSON");
    assert_eq!(report["connected"], 4, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["snapshots"].as_u64().unwrap() > 0, "{report}");
    assert!(report["inputs_sent"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn a_mode_the_bots_were_not_given_is_refused_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_coins-bots"))
        .args(["--local", "--mode", "chess", "--duration", "1"])
        .output()
        .expect("coins-bots runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"chess\"") && stderr.contains("coins"),
        "{stderr}"
    );
}
