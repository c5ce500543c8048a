//! The load ladder: a release `tickwire-server` pinned to one core, `tickwire-bots` on the other,
//! for each transport and bot count of the ladder; prints a table, and with `--json` one JSON
//! object as the last line.
//!
//!   cargo build --release -p tickwire-server -p tickwire-bots
//!   cargo run --release -p tickwire-benches --bin tickrate -- --bots 100,500,1000 --secs 10
//!
//! The standard workload (DESIGN.md), the default: the `standard` mode, rooms of 16 players,
//! 50 drones each whose velocity changes every tick, 60 Hz simulation, 30 Hz snapshots, and
//! light bots (`Walker`s) sending a step `{dx, dy}` of 4 units, slowly turning, 30 times a
//! second. `--mode arena` runs the arena instead (its drones fly straight and turn every
//! 0.5–2 s, so settling makes them nearly free: not the standard workload); `--full` bots
//! decode every world and play (in the arena they aim and fire, so snapshots grow). Server and bot CPU come from /proc (utime + stime over the
//! steady-state window, as a share of one core); tick percentiles from the server's own tick histogram
//! (interpolated within its buckets); delivery from what the bots received.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOM_SIZE: usize = 16;
const DRONES: u32 = 50;
const TICK_RATE: u32 = 60;
const SNAPSHOT_RATE: u32 = 30;
const INPUT_HZ: u32 = 30;
/// The server's gauge of connected players (summed over transports).
const PLAYERS_CONNECTED: &str = "tickwire_players_connected";

struct Args {
    bots: Vec<usize>,
    /// Server nodes per step (`--nodes 1,2`): one node runs pinned to core 0 with the bots on
    /// core 1, as every earlier ladder did; more nodes run on every core, which the bots then
    /// share.
    nodes: Vec<usize>,
    transports: Vec<String>,
    secs: u64,
    json: bool,
    /// Light bots (`tickwire-bots --light`, the default): exactly the standard workload — they
    /// move with 30 inputs a second and acknowledge snapshots from their headers, and do not
    /// aim or fire. `--full` bots decode every world and play (they also shoot, so snapshots
    /// grow).
    light: bool,
    /// `standard` (the standard workload) or `arena`.
    mode: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bots: vec![100, 500, 1000, 2000],
        nodes: vec![1],
        transports: vec!["quic".into(), "socketio".into()],
        secs: 10,
        json: false,
        light: true,
        mode: "standard".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--bots" => {
                args.bots = value()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|e| format!("--bots: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--nodes" => {
                args.nodes = value()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|e| format!("--nodes: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--transports" => args.transports = value()?.split(',').map(str::to_owned).collect(),
            "--secs" => args.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--json" => args.json = true,
            "--light" => args.light = true,
            "--full" => args.light = false,
            "--mode" => args.mode = value()?,
            "-h" | "--help" => {
                return Err("usage: tickrate [--bots 100,1000] [--nodes 1,2] [--transports quic,socketio] [--secs N] [--mode standard|arena] [--light | --full] [--json]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args
        .transports
        .iter()
        .any(|t| t != "quic" && t != "socketio")
    {
        return Err("--transports takes quic and/or socketio".into());
    }
    if args.mode != "standard" && args.mode != "arena" {
        return Err("--mode takes standard or arena".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    let mut rows = Vec::new();
    for transport in &args.transports {
        for &nodes in &args.nodes {
            for &bots in &args.bots {
                eprintln!(
                    "{transport}, {nodes} node(s): {bots} bots for {} s ...",
                    args.secs
                );
                let step = Step {
                    mode: &args.mode,
                    transport,
                    nodes,
                    bots,
                    secs: args.secs,
                    light: args.light,
                };
                match run_step(&bin, &step) {
                    Ok(row) => {
                        if std::io::stderr().is_terminal() {
                            eprintln!("  {}", row.line());
                        }
                        rows.push(row)
                    }
                    Err(e) => eprintln!("  step failed: {e}"),
                }
            }
        }
    }
    println!("{}", Row::header());
    for r in &rows {
        println!("{}", r.line());
    }
    if args.json {
        println!("{}", serde_json::json!({ "rows": rows }));
    }
}

#[derive(serde::Serialize)]
struct Row {
    mode: String,
    transport: String,
    nodes: usize,
    bots: usize,
    rooms: usize,
    connected: u64,
    server_cpu_core_share: f64,
    /// The server's CPU per 1,000 connected players, in cores.
    server_cpu_per_1000_players: f64,
    /// The bot process's CPU over the same window (a share of its one core).
    bots_cpu_core_share: f64,
    server_rss_mb: f64,
    tick_ms_p50: f64,
    tick_ms_p99: f64,
    tick_ms_max: f64,
    missed_ticks: u64,
    snapshot_delivery: f64,
    bytes_per_sec_per_player: f64,
}

impl Row {
    fn header() -> String {
        "mode | transport | nodes | bots | rooms | connected | server CPU (core) | per 1,000 players | bots CPU (core) | RSS MB | tick p50 ms | tick p99 ms | tick max ms | missed ticks | delivery | bytes/s/player".into()
    }

    fn line(&self) -> String {
        format!(
            "{} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {:.3} | {:.3} | {:.3} | {} | {:.4} | {:.0}",
            self.mode,
            self.transport,
            self.nodes,
            self.bots,
            self.rooms,
            self.connected,
            self.server_cpu_core_share,
            self.server_cpu_per_1000_players,
            self.bots_cpu_core_share,
            self.server_rss_mb,
            self.tick_ms_p50,
            self.tick_ms_p99,
            self.tick_ms_max,
            self.missed_ticks,
            self.snapshot_delivery,
            self.bytes_per_sec_per_player
        )
    }
}

/// Kills the child when dropped, so a failed step leaves no server behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `program` on `cores` (a taskset list such as `0` or `0-1`), or anywhere without
/// taskset.
fn pinned(cores: &str, program: PathBuf) -> Command {
    if PathBuf::from("/usr/bin/taskset").exists() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cores).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// One step of the ladder.
struct Step<'a> {
    mode: &'a str,
    transport: &'a str,
    nodes: usize,
    bots: usize,
    secs: u64,
    light: bool,
}

fn run_step(bin: &std::path::Path, step: &Step<'_>) -> Result<Row, String> {
    let Step {
        mode,
        transport,
        nodes,
        bots,
        secs,
        light,
    } = *step;
    let rooms = bots.div_ceil(ROOM_SIZE);
    // One node: server and bots a core each. More: everything on every core.
    let all = format!("0-{}", cores().saturating_sub(1));
    let (server_cores, bot_cores) = match nodes {
        1 => ("0", "1"),
        _ => (all.as_str(), all.as_str()),
    };
    let mut server = Reaped(
        pinned(server_cores, bin.join("tickwire-server"))
            .args([
                "--http",
                "127.0.0.1:0",
                "--quic",
                "127.0.0.1:0",
                "--no-match-log",
            ])
            .args(["--nodes", &nodes.to_string()])
            .args(["--drones", &DRONES.to_string()])
            .args(["--standard-drones", &DRONES.to_string()])
            .args(["--tick-rate", &TICK_RATE.to_string()])
            .args(["--snapshot-rate", &SNAPSHOT_RATE.to_string()])
            .args(["--max-rooms", &(rooms + 10).to_string()])
            // Every bot connects from this machine's one address.
            .args(["--per-address-connections", &(2 * bots + 16).to_string()])
            .args(["--match-secs", "100000", "--score-limit", "1000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start tickwire-server (build it in release first): {e}")
            })?,
    );
    let pid = server.0.id();
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let field = |k: &str| {
        tickwire_server::Server::listening_field(&line, k)
            .map(str::to_owned)
            .ok_or(format!("no {k}= in {line:?}"))
    };
    let (http, quic, cert) = (field("http")?, field("quic")?, field("cert-sha256")?);
    let mut cmd = pinned(bot_cores, bin.join("tickwire-bots"));
    match transport {
        "quic" => cmd.args(["--server", &quic, "--cert-sha256", &cert]),
        _ => cmd.args([
            "--transport",
            "socketio",
            "--url",
            &format!("http://{http}"),
        ]),
    };
    if light {
        cmd.arg("--light");
    }
    // The bots play for the measured seconds plus time to connect and join; the measurement
    // window starts when the server counts them all connected (see below).
    let ramp = Duration::from_secs(5 + bots as u64 / 200);
    cmd.args(["--mode", mode])
        .args(["--bots", &bots.to_string(), "--rooms", &rooms.to_string()])
        .args([
            "--duration",
            &(secs + ramp.as_secs()).to_string(),
            "--input-hz",
            &INPUT_HZ.to_string(),
        ])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run tickwire-bots: {e}"))?;
    // Steady state only: CPU and tick times are taken from the moment every bot is connected
    // (or the ramp allowance is over), so handshakes and joins do not dilute them.
    let ramp_over = Instant::now() + ramp;
    while Instant::now() < ramp_over {
        if scrape(&http).is_ok_and(|m| counter(&m, PLAYERS_CONNECTED) >= bots as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let cpu_before = cpu_ticks(pid)?;
    let metrics_before = scrape(&http)?;
    let started = Instant::now();
    // The bots' own CPU over the same window, so a row says which side was the limit; their
    // /proc entry goes with them, so the last sample is taken just before they exit.
    let bots_pid = child.id();
    let bots_before = cpu_ticks(bots_pid)?;
    let mut bots_last = (bots_before, started);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if let Ok(ticks) = cpu_ticks(bots_pid) {
            bots_last = (ticks, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("tickwire-bots: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_ticks(pid)?;
    let metrics_after = scrape(&http)?;
    let rss = rss_mb(pid)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or("bots printed no report")?;
    let num = |k: &str| report[k].as_f64().unwrap_or(0.0);
    let hz = clock_ticks_per_sec();
    // Due: one snapshot per 1/30 s for every second a bot sat in its room (connecting and
    // joining are not counted; a bot that never got in is missing from `connected`).
    let due = (num("seated_secs") * SNAPSHOT_RATE as f64).max(1.0);
    let hist = Histogram::diff(&metrics_before, &metrics_after);
    let server_cpu = (cpu_after - cpu_before) as f64 / hz / elapsed;
    Ok(Row {
        mode: mode.to_owned(),
        transport: transport.to_owned(),
        nodes,
        bots,
        rooms,
        connected: num("connected") as u64,
        server_cpu_core_share: server_cpu,
        server_cpu_per_1000_players: server_cpu * 1000.0 / num("connected").max(1.0),
        bots_cpu_core_share: (bots_last.0 - bots_before) as f64
            / hz
            / bots_last.1.duration_since(started).as_secs_f64().max(1e-3),
        server_rss_mb: rss,
        tick_ms_p50: hist.quantile(0.50) * 1000.0,
        tick_ms_p99: hist.quantile(0.99) * 1000.0,
        tick_ms_max: hist.max_bound() * 1000.0,
        missed_ticks: (counter(&metrics_after, "tickwire_missed_ticks_total")
            - counter(&metrics_before, "tickwire_missed_ticks_total")) as u64,
        snapshot_delivery: (num("snapshots") / due).min(1.0),
        bytes_per_sec_per_player: num("snapshot_bytes") / num("seated_secs").max(1e-3),
    })
}

fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().ok_or("bad stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).ok_or("no utime")?;
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).ok_or("no stime")?;
    Ok(utime + stime)
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn rss_mb(pid: u32) -> Result<f64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or("no VmRSS")?;
    Ok(kb / 1024.0)
}

fn scrape(http: &str) -> Result<String, String> {
    let mut conn = TcpStream::connect(http).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut body = String::new();
    conn.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

/// Sums a metric over its label sets.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The tick-duration histogram's buckets (upper bound, count in the run), summed over modes.
struct Histogram {
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    fn parse(text: &str) -> Vec<(f64, f64)> {
        let mut out: Vec<(f64, f64)> = Vec::new();
        for l in text
            .lines()
            .filter(|l| l.starts_with("tickwire_tick_duration_seconds_bucket"))
        {
            let le = l
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(|v| {
                    if v == "+Inf" {
                        f64::INFINITY
                    } else {
                        v.parse().unwrap_or(f64::INFINITY)
                    }
                });
            let count = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if let (Some(le), Some(count)) = (le, count) {
                match out.iter_mut().find(|(b, _)| *b == le) {
                    Some(e) => e.1 += count,
                    None => out.push((le, count)),
                }
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    fn diff(before: &str, after: &str) -> Histogram {
        let b = Self::parse(before);
        let buckets = Self::parse(after)
            .into_iter()
            .map(|(le, c)| {
                let old = b.iter().find(|(x, _)| *x == le).map_or(0.0, |x| x.1);
                (le, c - old)
            })
            .collect();
        Histogram { buckets }
    }

    /// Linear interpolation inside the bucket that holds the quantile (cumulative buckets).
    fn quantile(&self, q: f64) -> f64 {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            return 0.0;
        }
        let target = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, cum) in &self.buckets {
            if cum >= target {
                if le.is_infinite() {
                    return prev.0;
                }
                let within = if cum > prev.1 {
                    (target - prev.1) / (cum - prev.1)
                } else {
                    1.0
                };
                return prev.0 + (le - prev.0) * within;
            }
            prev = (le, cum);
        }
        prev.0
    }

    /// The upper bound of the highest bucket any tick fell in (the exact max is not kept).
    fn max_bound(&self) -> f64 {
        let total = self.buckets.last().map_or(0.0, |b| b.1);
        let mut prev_cum = 0.0;
        let mut bound = 0.0;
        for &(le, cum) in &self.buckets {
            if cum > prev_cum {
                bound = le;
            }
            prev_cum = cum;
            if cum >= total {
                break;
            }
        }
        if bound.is_infinite() { 0.05 } else { bound }
    }
}

/// The cores this machine has.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
