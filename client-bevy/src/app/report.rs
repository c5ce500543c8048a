//! The run's end and its report: after `--duration` seconds (or when the connection fails)
//! print what the client saw, readable or as one JSON line, and exit.

use bevy::prelude::*;
use std::time::Instant;
use tickwire_client_bevy::interpolation::RenderClock;
use tickwire_client_bevy::{CurrentRoom, NetStats, NetStatus, PredictionStats, ReplicationStats};

#[derive(Resource)]
pub struct Report {
    pub duration: Option<f64>,
    pub json: bool,
    started: Instant,
    frames: u64,
    done: bool,
}

impl Report {
    pub fn new(duration: Option<f64>, json: bool) -> Report {
        Report {
            duration,
            json,
            started: Instant::now(),
            frames: 0,
            done: false,
        }
    }
}

pub struct ReportPlugin;

impl Plugin for ReportPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Last, finish);
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    mut report: ResMut<Report>,
    status: Res<NetStatus>,
    room: Res<CurrentRoom>,
    net: Res<NetStats>,
    replication: Res<ReplicationStats>,
    prediction: Res<PredictionStats>,
    clock: Res<RenderClock>,
    mut exit: MessageWriter<AppExit>,
) {
    report.frames += 1;
    if report.done {
        return;
    }
    let elapsed = report.started.elapsed().as_secs_f64();
    let closed = matches!(*status, NetStatus::Closed(_));
    let timed_out = report.duration.is_some_and(|d| elapsed >= d);
    if !closed && !timed_out {
        return;
    }
    report.done = true;
    let error = match &*status {
        NetStatus::Closed(why) => Some(why.clone()),
        _ => None,
    };
    let line = serde_json::json!({
        "duration_secs": elapsed,
        "room": room.joined.as_ref().map(|j| j.room.id.0),
        "snapshots": net.snapshots,
        "entities_seen": replication.entities_seen,
        "entities_despawned": replication.despawned,
        "frames": report.frames,
        "inputs_sent": prediction.inputs_sent,
        "prediction_samples": prediction.samples,
        "prediction_error_avg": prediction.error_avg(),
        "prediction_error_max": prediction.error_max,
        "prediction_teleports": prediction.teleports,
        "render_delay_ms": clock.delay * 1000.0,
        "rtt_ms_p50": net.rtt_ms_p50(),
        "error": error,
    });
    if report.json {
        println!("{line}");
    } else {
        println!(
            "{:.1} s: {} snapshots, {} entities seen, {} frames; prediction error avg {:.3} max {:.3} units over {} inputs; rtt p50 {} ms",
            elapsed,
            net.snapshots,
            replication.entities_seen,
            report.frames,
            prediction.error_avg(),
            prediction.error_max,
            prediction.samples,
            net.rtt_ms_p50().map_or("-".into(), |r| format!("{r:.2}")),
        );
        if let Some(e) = &error {
            eprintln!("connection closed: {e}");
        }
    }
    exit.write(if error.is_some() {
        AppExit::error()
    } else {
        AppExit::Success
    });
}
