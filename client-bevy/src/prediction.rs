//! The local player: inputs sent every fixed tick, movement predicted with the server's own
//! rules ([`tickwire_arena::movement`]), and reconciled against each snapshot.
//!
//! Every fixed step (at the server's tick rate) the game's [`PlayerIntent`] goes out as one
//! input and the predicted position takes one step with it; the position after each input is
//! remembered. The server applies each input for exactly one step (its input queue) and says in
//! every snapshot which input it applied last. On a snapshot, the position predicted after that
//! input is compared with the server's (the prediction error), the acknowledged inputs are
//! dropped, and the rest are replayed from the server's position. The difference between the
//! old and the replayed prediction is not shown at once: it fades out over about 100 ms, so a
//! correction is a glide, not a snap. A jump too large to glide (a respawn) is shown at once.

use crate::connection::{CurrentRoom, NetLink, NetStatus, SnapshotMessage};
use crate::replication::{LocalPlayer, NetState, ReplicationSet, SnapshotBuffer, is_arena_room};
use bevy::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;
use tickwire_arena::view as arena;
use tickwire_arena::{ArenaInput, movement};

/// Inputs remembered while unacknowledged, at most (two seconds at 60 Hz): past it the oldest
/// are forgotten and simply not replayed.
const MAX_PENDING: usize = 120;
/// How quickly a correction fades: the remaining offset halves every this many seconds.
const CORRECTION_HALF_LIFE: f32 = 0.035;
/// A correction longer than this (world units) is a teleport: shown at once.
const TELEPORT_DISTANCE: f32 = 64.0;

/// What the local player wants this tick; the game (keyboard and mouse, or a bot) writes it.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct PlayerIntent {
    /// Direction to move; longer than 1 is shortened to 1.
    pub move_dir: Vec2,
    /// Aim angle, radians.
    pub aim: f32,
    pub fire: bool,
}

struct Pending {
    seq: u32,
    move_dir: Vec2,
    /// Where the player is predicted to be after this input (None while not predicting).
    after: Option<Vec2>,
}

/// The prediction state: inputs not yet acknowledged and the predicted position.
#[derive(Resource, Default)]
pub struct Prediction {
    pending: VecDeque<Pending>,
    predicted: Option<Vec2>,
    /// The prediction one fixed step earlier: frames between two steps show a blend of the two
    /// (a frame rate above the tick rate would otherwise see the player move in steps).
    previous: Option<Vec2>,
    /// What is still to fade of past corrections, added to what is shown.
    correction: Vec2,
}

impl Prediction {
    /// Where the local player is predicted to be after the inputs sent so far, if it is alive
    /// and known.
    pub fn predicted(&self) -> Option<Vec2> {
        self.predicted
    }

    /// Where it is shown, `fraction` of a fixed step after the last one: between the last two
    /// predictions, plus what is left of the corrections.
    pub fn shown(&self, fraction: f32) -> Option<Vec2> {
        let predicted = self.predicted?;
        let previous = self.previous.unwrap_or(predicted);
        Some(previous.lerp(predicted, fraction.clamp(0.0, 1.0)) + self.correction)
    }
}

/// How well prediction did: distances in world units (a player is 32 units across) between
/// the position predicted after an input and the server's after the same input. Jumps the
/// game makes (respawns, match starts) are counted as teleports, not errors.
#[derive(Resource, Clone, Debug, Default)]
pub struct PredictionStats {
    pub samples: u64,
    pub error_sum: f64,
    pub error_max: f64,
    /// Corrections too large to glide (respawns, or being far off).
    pub teleports: u64,
    pub inputs_sent: u64,
    pub send_errors: u64,
}

impl PredictionStats {
    pub fn error_avg(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.error_sum / self.samples as f64
        }
    }
}

#[derive(Default)]
pub struct PredictionPlugin;

impl Plugin for PredictionPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PlayerIntent>()
            .init_resource::<Prediction>()
            .init_resource::<PredictionStats>()
            .add_systems(FixedUpdate, send_and_predict)
            .add_systems(
                Update,
                (
                    follow_tick_rate,
                    reconcile.after(ReplicationSet::Sync),
                    show_local.after(reconcile).in_set(ReplicationSet::Show),
                ),
            );
    }
}

/// Runs the fixed step at the server's tick rate, so one input is one server step.
fn follow_tick_rate(status: Res<NetStatus>, mut fixed: ResMut<Time<Fixed>>) {
    if let NetStatus::Connected { tick_rate, .. } = *status
        && tick_rate > 0
    {
        let step = Duration::from_secs_f64(1.0 / tick_rate as f64);
        if fixed.timestep() != step {
            fixed.set_timestep(step);
        }
    }
}

fn send_and_predict(
    link: Option<ResMut<NetLink>>,
    room: Res<CurrentRoom>,
    intent: Res<PlayerIntent>,
    buffer: Res<SnapshotBuffer>,
    fixed: Res<Time<Fixed>>,
    mut prediction: ResMut<Prediction>,
    mut stats: ResMut<PredictionStats>,
) {
    let Some(mut link) = link else {
        return;
    };
    let Some(inputs) = link.inputs.as_mut() else {
        return;
    };
    if !is_arena_room(&room) {
        // Another game's room: its input is not the arena's; acknowledge what arrived so the
        // server keeps sending deltas.
        if room.joined.is_some() && inputs.ack(buffer.newest_tick()).is_err() {
            stats.send_errors += 1;
        }
        return;
    }
    if room.joined.as_ref().is_none_or(|j| j.entity.0 == 0) {
        return;
    }
    // The wire refuses NaN and over-long moves; a game's bad intent must not cost the input.
    let move_dir = if intent.move_dir.is_finite() {
        intent.move_dir.clamp_length_max(1.0)
    } else {
        Vec2::ZERO
    };
    let aim = if intent.aim.is_finite() {
        intent.aim
    } else {
        0.0
    };
    // Predicted by what the server applies: the input after quantisation, clamped as the
    // arena clamps it.
    let input = ArenaInput {
        move_dir,
        aim,
        fire: intent.fire,
    }
    .as_applied();
    let move_dir = input.move_dir.clamp_length_max(1.0);
    let seq = match inputs.send(&input, buffer.newest_tick()) {
        Ok(seq) => seq,
        Err(e) => {
            debug!("cannot send an input: {e}");
            stats.send_errors += 1;
            return;
        }
    };
    stats.inputs_sent += 1;
    let dt = fixed.timestep().as_secs_f32();
    let after = prediction
        .predicted
        .map(|p| movement::step_player(p, move_dir, dt).0);
    prediction.previous = prediction.predicted;
    prediction.predicted = after;
    if prediction.pending.len() == MAX_PENDING {
        prediction.pending.pop_front();
    }
    prediction.pending.push_back(Pending {
        seq,
        move_dir,
        after,
    });
}

fn reconcile(
    mut incoming: MessageReader<SnapshotMessage>,
    room: Res<CurrentRoom>,
    fixed: Res<Time<Fixed>>,
    mut prediction: ResMut<Prediction>,
    mut stats: ResMut<PredictionStats>,
) {
    let Some(local) = room.joined.as_ref().map(|j| j.entity).filter(|e| e.0 != 0) else {
        incoming.clear();
        *prediction = Prediction::default();
        return;
    };
    let dt = fixed.timestep().as_secs_f32();
    for received in incoming.read() {
        let me = arena::get(&received.snapshot, local);
        let Some(me) = me.filter(|m| m.health > 0) else {
            // Dead or not there: nothing to predict until the server shows it alive.
            prediction.predicted = None;
            prediction.previous = None;
            prediction.correction = Vec2::ZERO;
            continue;
        };
        let server = me.position();
        let ack = received.input_ack;
        while let Some(front) = prediction.pending.front() {
            if front.seq > ack {
                break;
            }
            if front.seq == ack
                && let Some(after) = front.after
            {
                // A jump past the teleport distance is the game moving the player (a respawn,
                // a new match), not a misprediction: counted below as a teleport instead.
                let error = after.distance(server);
                if error <= TELEPORT_DISTANCE {
                    stats.samples += 1;
                    stats.error_sum += error as f64;
                    stats.error_max = stats.error_max.max(error as f64);
                }
            }
            prediction.pending.pop_front();
        }
        // Replay what the server has not applied yet, from where it says the player is.
        let mut pos = server;
        for pending in &mut prediction.pending {
            pos = movement::step_player(pos, pending.move_dir, dt).0;
            pending.after = Some(pos);
        }
        // Keep what is shown where it was: the change goes into the correction, which fades.
        // (Starting to predict, what was shown is the server's position.)
        let moved = match prediction.predicted {
            Some(before) => pos - before,
            None => pos - server,
        };
        prediction.previous = Some(prediction.previous.unwrap_or(server) + moved);
        prediction.predicted = Some(pos);
        prediction.correction -= moved;
        if prediction.correction.length() > TELEPORT_DISTANCE {
            stats.teleports += 1;
            prediction.correction = Vec2::ZERO;
            prediction.previous = Some(pos);
        }
    }
}

/// Shows the local player: the server's newest state, with the predicted position and the
/// player's own aim when it is alive.
fn show_local(
    time: Res<Time>,
    fixed: Res<Time<Fixed>>,
    intent: Res<PlayerIntent>,
    room: Res<CurrentRoom>,
    buffer: Res<SnapshotBuffer>,
    mut prediction: ResMut<Prediction>,
    mut local: Query<&mut NetState, With<LocalPlayer>>,
) {
    let fade = 0.5f32.powf(time.delta_secs() / CORRECTION_HALF_LIFE);
    prediction.correction *= fade;
    let Some(id) = room.joined.as_ref().map(|j| j.entity) else {
        return;
    };
    let Some(newest) = buffer.newest().and_then(|r| arena::get(&r.snapshot, id)) else {
        return;
    };
    let mut state = NetState::from_state(&newest);
    if let Some(shown) = prediction.shown(fixed.overstep_fraction()) {
        state.pos = shown;
        state.aim = intent.aim;
    }
    for mut current in &mut local {
        if *current != state {
            *current = state;
        }
    }
}
