//! A headless Bevy app with the tickwire plugins against an in-process server over loopback
//! QUIC: remote entities appear and move, the local player's prediction matches the server,
//! and entities that leave the room are despawned. Also the app binary's headless bot run.

use bevy::prelude::*;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tickwire_arena::EntityKind;
use tickwire_arena::movement::PLAYER_SPEED;
use tickwire_client_bevy::bot::BotPlugin;
use tickwire_client_bevy::prediction::Prediction;
use tickwire_client_bevy::replication::SnapshotBuffer;
use tickwire_client_bevy::{
    CurrentRoom, LobbyRequest, NetEntity, NetIndex, NetState, NetStatus, PlayerIntent,
    PredictionStats, TickwirePlugins, TickwireSettings,
};
use tickwire_protocol::NetId;
use tickwire_tests::{Chaos, GameClient, LossyRelay, arena_room, connect, pin, server};

mod common;
use common::{frames_until, frames_until_within};

fn headless_app(settings: TickwireSettings) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(settings)
        .add_plugins(TickwirePlugins);
    app
}

fn shown(world: &mut World, id: NetId) -> Option<NetState> {
    let entity = *world.resource::<NetIndex>().get(&id)?;
    world.get::<NetState>(entity).copied()
}

fn with_net_id(world: &mut World, id: NetId) -> usize {
    let mut query = world.query::<&NetEntity>();
    query.iter(world).filter(|n| n.id == id).count()
}

#[test]
fn a_headless_bevy_player_sees_others_predicts_itself_and_sees_them_leave() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server(|c| c.arena.drones = 10));
    let mut app = headless_app(TickwireSettings::new(
        server.quic_addr,
        pin(&server),
        "bevy",
    ));

    frames_until(&mut app, "the connection", |w| {
        w.resource::<NetStatus>().player().is_some()
    });
    app.world_mut()
        .write_message(LobbyRequest::Create(arena_room("bevy", 4)));
    frames_until(&mut app, "the room", |w| {
        w.resource::<CurrentRoom>().joined.is_some()
    });
    let joined = app
        .world()
        .resource::<CurrentRoom>()
        .joined
        .clone()
        .unwrap();

    // Another player joins and walks right, as a plain client would.
    let mut other = rt.block_on(connect(&server, "other"));
    let their = rt.block_on(other.join_room(joined.room.id)).unwrap();
    let walker = rt.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(16));
        for _ in 0..600 {
            every.tick().await;
            if other
                .send_input(&tickwire_tests::steer(Vec2::X, 0.0, 0))
                .is_err()
            {
                break;
            }
        }
        other
    });

    // Remote entities appear: the other player and the drones.
    frames_until(&mut app, "the other player and the drones", |w| {
        let drones = w
            .query::<&NetEntity>()
            .iter(w)
            .filter(|n| n.arena_kind() == Some(EntityKind::Drone))
            .count();
        shown(w, their.entity).is_some() && drones == 10
    });
    let players = |w: &mut World| {
        w.resource::<CurrentRoom>()
            .joined
            .as_ref()
            .map(|j| j.room.players)
    };
    frames_until(&mut app, "the room to count two players", |w| {
        players(w) == Some(2)
    });
    // ...and move, smoothly: between two snapshots the interpolated position is in between.
    let start = shown(app.world_mut(), their.entity).unwrap().pos;
    frames_until(&mut app, "the other player to move", |w| {
        shown(w, their.entity).is_some_and(|s| s.pos.x > start.x + 40.0)
    });

    // The local player walks an L and stops; prediction keeps up with the server.
    let mine = joined.entity;
    for (dir, secs) in [(Vec2::X, 1.0), (Vec2::Y, 1.0), (Vec2::new(-0.6, -0.8), 0.5)] {
        app.world_mut().resource_mut::<PlayerIntent>().move_dir = dir;
        let until = Instant::now() + Duration::from_secs_f64(secs);
        frames_until(&mut app, "walking", |_| Instant::now() >= until);
    }
    app.world_mut().resource_mut::<PlayerIntent>().move_dir = Vec2::ZERO;
    // Once the server has applied the last input, prediction and server agree to within the
    // wire's quantisation (1/16 unit).
    frames_until(
        &mut app,
        "prediction to settle on the server's position",
        |w| {
            let server_pos = w
                .resource::<SnapshotBuffer>()
                .newest()
                .and_then(|r| tickwire_arena::view::get(&r.snapshot, mine))
                .map(|e| e.position());
            let predicted = w.resource::<Prediction>().predicted();
            let sent = w.resource::<PredictionStats>().inputs_sent;
            match (server_pos, predicted) {
                (Some(s), Some(p)) => sent > 150 && s.distance(p) < 0.1,
                _ => false,
            }
        },
    );
    let stats = app.world().resource::<PredictionStats>().clone();
    assert!(stats.samples > 40, "{stats:?}");
    assert!(
        stats.error_avg() < 0.5,
        "prediction error averages {:.3} units: {stats:?}",
        stats.error_avg()
    );
    assert!(stats.error_max < 8.0, "{stats:?}");
    // The shown local player is where the prediction says (its correction has faded).
    // ...and the shown player comes to rest there too (corrections fade out).
    frames_until(
        &mut app,
        "the shown player to rest on the prediction",
        |w| {
            let predicted = w.resource::<Prediction>().predicted();
            shown(w, mine)
                .zip(predicted)
                .is_some_and(|(s, p)| s.pos.distance(p) < 0.1)
        },
    );

    // The other player leaves: its entity goes.
    let mut other = rt.block_on(walker).unwrap();
    rt.block_on(other.leave_room()).unwrap();
    frames_until(&mut app, "the other player's entity to be despawned", |w| {
        with_net_id(w, their.entity) == 0 && !w.resource::<NetIndex>().contains_key(&their.entity)
    });
    assert_eq!(with_net_id(app.world_mut(), mine), 1);
    frames_until(&mut app, "the room to count one player", |w| {
        players(w) == Some(1)
    });
}

#[test]
fn prediction_glides_instead_of_snapping_on_a_lossy_path() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server(|c| c.arena.drones = 10));
    // 5% of datagrams lost each way, inputs 20 ms late.
    let relay = rt
        .block_on(LossyRelay::start(
            server.quic_addr,
            Chaos::loss(0.05).uplink_delay(Duration::from_millis(20)),
            7,
        ))
        .unwrap();
    let mut app = headless_app(TickwireSettings::new(relay.addr, pin(&server), "lossy"));
    app.add_plugins(BotPlugin { seed: 3 });
    frames_until(&mut app, "the connection", |w| {
        w.resource::<NetStatus>().player().is_some()
    });
    app.world_mut()
        .write_message(LobbyRequest::Create(arena_room("lossy", 4)));
    frames_until(&mut app, "the room", |w| {
        w.resource::<CurrentRoom>().joined.is_some()
    });
    let mine = app
        .world()
        .resource::<CurrentRoom>()
        .joined
        .as_ref()
        .unwrap()
        .entity;

    // Watch the shown local player frame by frame while the bot walks for 300 inputs: it may
    // never move further in a frame than the player can run, plus a little for a correction.
    // Time is the app's own (what its fixed steps and fades run on): the wall clock read here
    // would run ahead of it or behind it by however long each frame's work took on a busy
    // machine.
    let mut last: Option<(f32, Vec2)> = None;
    let mut worst_excess = 0.0f32;
    frames_until(&mut app, "300 inputs", |w| {
        if let Some(now) = shown(w, mine).map(|s| s.pos) {
            let at = w.resource::<Time<Virtual>>().elapsed_secs();
            if let Some((then, before)) = last {
                let dt = at - then;
                let excess = now.distance(before) - PLAYER_SPEED * dt;
                worst_excess = worst_excess.max(excess);
            }
            last = Some((at, now));
        }
        w.resource::<PredictionStats>().inputs_sent >= 300
    });
    let stats = app.world().resource::<PredictionStats>().clone();
    assert!(relay.counts.dropped.load(Ordering::Relaxed) > 0);
    assert!(stats.samples > 100, "{stats:?}");
    assert!(stats.error_avg() < 1.0, "{stats:?}");
    assert_eq!(stats.teleports, 0, "{stats:?}");
    assert!(
        worst_excess < 1.5,
        "the shown player jumped {worst_excess:.2} units further than it can run in a frame"
    );
}

/// The snapshots the app decoded, as its systems got them.
#[derive(Resource, Default)]
struct Decoded(Vec<std::sync::Arc<tickwire_protocol::Snapshot>>);

fn keep_decoded(
    mut incoming: MessageReader<tickwire_client_bevy::connection::SnapshotMessage>,
    mut decoded: ResMut<Decoded>,
) {
    decoded
        .0
        .extend(incoming.read().map(|m| m.snapshot.clone()));
}

/// A bot-driven Bevy player through the relay at `loss` with 0–50 ms of jitter and 2%
/// duplicates (connected at 5%, as tests/tests/chaos.rs explains): every snapshot it decodes
/// is the server's world at that tick, and prediction stays close. Prints its figures.
fn bevy_player_through_a_bad_network(loss: f64, seed: u64, max_error_avg: f64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server(|c| c.arena.drones = 20));
    let relay = rt
        .block_on(LossyRelay::start(server.quic_addr, Chaos::bad(0.05), seed))
        .unwrap();
    let mut app = headless_app(TickwireSettings::new(relay.addr, pin(&server), "chaos"));
    app.add_plugins(BotPlugin { seed })
        .init_resource::<Decoded>()
        .add_systems(Update, keep_decoded);
    frames_until(&mut app, "the connection", |w| {
        w.resource::<NetStatus>().player().is_some()
    });
    app.world_mut()
        .write_message(LobbyRequest::Create(arena_room("chaos", 4)));
    frames_until(&mut app, "the room", |w| {
        w.resource::<CurrentRoom>().joined.is_some()
    });
    let room = app
        .world()
        .resource::<CurrentRoom>()
        .joined
        .as_ref()
        .unwrap()
        .room
        .id;
    relay.set_chaos(Chaos::bad(loss));
    // 5 s of inputs (one a fixed step, 60 a second), or as long as scripts/chaos asks.
    let run = tickwire_tests::chaos_run(5.0);
    let inputs = (run.as_secs_f64() * 60.0) as u64;
    let inputs_before = app.world().resource::<PredictionStats>().inputs_sent;
    let (mut compared, mut ticks) = (0usize, Vec::new());
    let limit = run + tickwire_tests::WAIT;
    frames_until_within(&mut app, "the inputs on the bad path", limit, |w| {
        for snapshot in std::mem::take(&mut w.resource_mut::<Decoded>().0) {
            ticks.push(snapshot.tick.0);
            if let Some(truth) = rt.block_on(server.inspect(room, snapshot.tick)) {
                assert_eq!(
                    *snapshot, truth,
                    "the app's world differs at {:?}",
                    snapshot.tick
                );
                compared += 1;
            }
        }
        w.resource::<PredictionStats>().inputs_sent >= inputs_before + inputs
    });
    let stats = app.world().resource::<PredictionStats>().clone();
    let made = match (ticks.first(), ticks.last()) {
        (Some(first), Some(last)) => (last - first) / server.config.ticks_per_snapshot() + 1,
        _ => 0,
    };
    eprintln!(
        "chaos loss {:.0}%: bevy: {} of {made} snapshots decoded ({:.3}), {compared} compared \
         equal to the server's; prediction error avg {:.3} max {:.3} units over {} samples, \
         {} teleports; relay {}",
        loss * 100.0,
        ticks.len(),
        ticks.len() as f64 / f64::from(made.max(1)),
        stats.error_avg(),
        stats.error_max,
        stats.samples,
        stats.teleports,
        relay.counts,
    );
    assert!(compared >= 50, "compared only {compared}");
    assert!(
        ticks.len() as f64 > f64::from(made) * (1.0 - loss) * 0.6,
        "{} of {made} snapshots at {loss} loss",
        ticks.len()
    );
    assert!(stats.samples > 50, "{stats:?}");
    // Each input batch repeats the last four inputs, so the server applies nearly every input
    // the client predicted and the prediction stays a fraction of a unit off (a player is 32
    // across); at 30% loss four batches in a row go missing about once a second, and the
    // server holds the last input it had for those steps.
    assert!(stats.error_avg() < max_error_avg, "{stats:?}");
    assert_eq!(stats.teleports, 0, "{stats:?}");
}

#[test]
fn a_bevy_player_converges_at_5_percent_loss_with_jitter_and_duplicates() {
    bevy_player_through_a_bad_network(0.05, 5, 0.5);
}

#[test]
fn a_bevy_player_converges_at_30_percent_loss_with_jitter_and_duplicates() {
    bevy_player_through_a_bad_network(0.30, 30, 2.0);
}

#[test]
fn the_headless_app_plays_with_a_bot_and_reports() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(server(|c| c.arena.drones = 20));
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-client-bevy"))
        .args([
            "--server",
            &server.quic_addr.to_string(),
            "--cert-sha256",
            &server.cert_sha256,
            "--headless",
            "--bot",
            "--duration",
            "3",
            "--json",
        ])
        .output()
        .expect("the app runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a report line");
    let report: serde_json::Value = serde_json::from_str(last).expect("JSON");
    let num = |k: &str| {
        report[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} in {report}"))
    };
    assert!(num("snapshots") > 0.0, "{report}");
    assert!(num("entities_seen") >= 21.0, "{report}");
    assert!(num("frames") > 60.0, "{report}");
    assert!(num("prediction_error_avg") < 1.0, "{report}");
    assert!(num("rtt_ms_p50") > 0.0, "{report}");

    // A wrong pin is refused with an error, not a hang.
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-client-bevy"))
        .args([
            "--server",
            &server.quic_addr.to_string(),
            "--cert-sha256",
            &"ab".repeat(32),
            "--headless",
            "--duration",
            "10",
            "--json",
        ])
        .output()
        .expect("the app runs");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(report["error"].is_string(), "{report}");
}
