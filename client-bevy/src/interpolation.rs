//! Remote entities drawn between two snapshots, a little in the past.
//!
//! The render clock runs in server ticks. From each snapshot's arrival it learns the offset
//! between the server's tick clock and ours (smoothed), how far apart snapshots arrive (the
//! snapshot rate, with losses) and how much arrivals wander (jitter). It shows the world
//! `delay` behind the newest tick it expects to have, where
//! `delay = interval + 3 × jitter + one tick`: one snapshot interval so a later snapshot has
//! usually arrived to interpolate towards, three mean deviations of arrival jitter, and a tick
//! for the frame's own phase. The clock never jumps while the error is small: it runs up to
//! 10% fast or slow to follow a changing delay, so motion stays smooth; past a quarter second
//! of error (a stall, a new room) it resets. When the newest snapshot is older than the clock
//! (loss), entities carry on along their velocity for at most 100 ms, then wait.

use crate::connection::SnapshotMessage;
use crate::replication::{
    LocalPlayer, NetEntity, NetState, RenderTick, ReplicationSet, SnapshotBuffer,
};
use bevy::prelude::*;
use std::f32::consts::{PI, TAU};
use std::time::Instant;
use tickwire_arena::EntityState;
use tickwire_arena::view as arena;
use tickwire_protocol::Snapshot;

/// Bounds of the render delay, seconds.
const MIN_DELAY: f64 = 0.010;
const MAX_DELAY: f64 = 0.300;
/// How far past the newest snapshot entities are extrapolated, seconds.
const MAX_EXTRAPOLATION: f64 = 0.100;
/// How much of each new sample the offset, interval and jitter estimates take in.
const SMOOTHING: f64 = 0.1;
/// The fastest the render clock speeds up or slows down to follow its target.
const MAX_RATE_CHANGE: f64 = 0.1;
/// Beyond this error the render clock jumps instead of easing, seconds.
const RESET_ERROR: f64 = 0.25;

/// The render clock's estimates, in seconds.
#[derive(Resource, Debug)]
pub struct RenderClock {
    origin: Instant,
    /// Server time minus local time, from arrivals.
    offset: Option<f64>,
    /// Mean absolute deviation of arrivals from the offset.
    pub jitter: f64,
    /// Mean time between the ticks of consecutive snapshots.
    pub interval: f64,
    /// The delay behind the expected newest tick that the clock aims for.
    pub delay: f64,
    /// Where the clock shows, server seconds.
    at: Option<f64>,
    last_tick: Option<u32>,
    tick_rate: f64,
}

impl Default for RenderClock {
    fn default() -> Self {
        RenderClock {
            origin: Instant::now(),
            offset: None,
            jitter: 0.0,
            interval: 1.0 / 30.0,
            delay: 0.1,
            at: None,
            last_tick: None,
            tick_rate: 60.0,
        }
    }
}

impl RenderClock {
    fn local(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }

    /// Learns from one snapshot's arrival.
    fn observe(&mut self, snapshot: &Snapshot, arrived: Instant) {
        if snapshot.tick_rate > 0 {
            self.tick_rate = snapshot.tick_rate as f64;
        }
        let tick = snapshot.tick.0;
        if self.last_tick.is_some_and(|last| tick <= last) {
            return;
        }
        let sample = tick as f64 / self.tick_rate - self.local(arrived);
        match self.offset {
            None => self.offset = Some(sample),
            Some(offset) => {
                let error = sample - offset;
                self.offset = Some(offset + error * SMOOTHING);
                self.jitter += (error.abs() - self.jitter) * SMOOTHING;
            }
        }
        if let Some(last) = self.last_tick {
            let gap = (tick - last) as f64 / self.tick_rate;
            self.interval += (gap - self.interval) * SMOOTHING;
        }
        self.last_tick = Some(tick);
        self.delay =
            (self.interval + 3.0 * self.jitter + 1.0 / self.tick_rate).clamp(MIN_DELAY, MAX_DELAY);
    }

    /// Moves the clock on to `now`; returns where it shows, in fractional ticks.
    fn advance(&mut self, now: Instant, frame: f64) -> Option<f64> {
        let offset = self.offset?;
        let target = self.local(now) + offset - self.delay;
        let at = match self.at {
            Some(at) if (target - (at + frame)).abs() < RESET_ERROR => {
                let error = target - (at + frame);
                let nudge = error.clamp(-MAX_RATE_CHANGE * frame, MAX_RATE_CHANGE * frame);
                at + frame + nudge
            }
            _ => target,
        };
        self.at = Some(at);
        Some(at * self.tick_rate)
    }

    /// Forgets everything (a new room numbers its ticks afresh).
    fn reset(&mut self) {
        *self = RenderClock::default();
    }
}

#[derive(Default)]
pub struct InterpolationPlugin;

impl Plugin for InterpolationPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<RenderClock>()
            .add_systems(
                Update,
                (
                    advance_clock.before(ReplicationSet::Sync),
                    interpolate.in_set(ReplicationSet::Show),
                ),
            )
            .configure_sets(Update, ReplicationSet::Sync.before(ReplicationSet::Show));
    }
}

fn advance_clock(
    mut clock: ResMut<RenderClock>,
    mut incoming: MessageReader<SnapshotMessage>,
    buffer: Res<SnapshotBuffer>,
    time: Res<Time>,
    mut render: ResMut<RenderTick>,
) {
    if buffer.newest().is_none() {
        if clock.offset.is_some() {
            clock.reset();
        }
        render.0 = None;
        incoming.clear();
        return;
    }
    for received in incoming.read() {
        clock.observe(&received.snapshot, received.at);
    }
    render.0 = clock.advance(Instant::now(), time.delta_secs_f64());
}

fn interpolate(
    buffer: Res<SnapshotBuffer>,
    render: Res<RenderTick>,
    clock: Res<RenderClock>,
    mut remote: Query<(&NetEntity, &mut NetState), Without<LocalPlayer>>,
) {
    let Some(at) = render.0 else {
        return;
    };
    let (from, to, t) = buffer.around(at);
    for (net, mut shown) in &mut remote {
        let a = from.and_then(|s| arena::get(s, net.id));
        let b = to.and_then(|s| arena::get(s, net.id));
        let state = match (from, a, to, b) {
            (Some(_), Some(a), Some(_), Some(b)) => blend(&a, &b, (t as f32).clamp(0.0, 1.0)),
            // Nothing newer yet: carry on along the velocity, for a short while.
            (Some(from), Some(a), None, _) => {
                let ahead =
                    ((at - from.tick.0 as f64) / clock.tick_rate).clamp(0.0, MAX_EXTRAPOLATION);
                let mut state = NetState::from_state(&a);
                state.pos += state.vel * ahead as f32;
                state
            }
            // It leaves at the next snapshot: hold it where it was last seen.
            (_, Some(a), _, None) => NetState::from_state(&a),
            // It has just appeared: show its first position.
            (_, None, _, Some(b)) => NetState::from_state(&b),
            _ => continue,
        };
        if *shown != state {
            *shown = state;
        }
    }
}

/// The state a fraction `t` of the way from `a` to `b`; aim turns the short way round.
fn blend(a: &EntityState, b: &EntityState, t: f32) -> NetState {
    let (a, b) = (NetState::from_state(a), NetState::from_state(b));
    let mut turn = (b.aim - a.aim).rem_euclid(TAU);
    if turn > PI {
        turn -= TAU;
    }
    NetState {
        pos: a.pos.lerp(b.pos, t),
        vel: a.vel.lerp(b.vel, t),
        aim: a.aim + turn * t,
        health: if t < 1.0 { a.health } else { b.health },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tickwire_protocol::Tick;

    fn snapshot(tick: u32) -> Snapshot {
        arena::capture(Tick(tick), [])
    }

    #[test]
    fn the_delay_follows_the_snapshot_interval_and_jitter() {
        let mut clock = RenderClock::default();
        let start = clock.origin;
        // 30 Hz snapshots of a 60 Hz simulation, arriving on time.
        for i in 0..100u32 {
            clock.observe(
                &snapshot(i * 2),
                start + Duration::from_micros(i as u64 * 33_333),
            );
        }
        assert!((clock.interval - 1.0 / 30.0).abs() < 0.002, "{clock:?}");
        assert!(clock.jitter < 0.001);
        let steady = clock.delay;
        assert!(
            (steady - (1.0 / 30.0 + 1.0 / 60.0)).abs() < 0.005,
            "{steady}"
        );

        // Every other snapshot lost, and arrivals wandering by ±8 ms.
        for i in 0..100u32 {
            let tick = 200 + i * 4;
            let wobble = if i % 2 == 0 { 8_000 } else { 0 };
            let at = start + Duration::from_micros(tick as u64 * 16_667 + wobble);
            clock.observe(&snapshot(tick), at);
        }
        assert!(clock.interval > 0.06, "{clock:?}");
        assert!(clock.delay > steady + 0.03, "{clock:?}");
    }

    #[test]
    fn the_clock_eases_towards_its_target_and_resets_when_far_off() {
        let mut clock = RenderClock::default();
        let start = clock.origin;
        clock.observe(&snapshot(60), start + Duration::from_secs(1));
        let first = clock
            .advance(start + Duration::from_secs(1), 0.016)
            .unwrap();
        // One second of server time behind the local clock, minus the delay.
        assert!((first - (60.0 - clock.delay * 60.0)).abs() < 1e-6);
        // A frame later, the clock moved one frame on.
        let next = clock
            .advance(start + Duration::from_millis(1016), 0.016)
            .unwrap();
        assert!((next - first - 0.96).abs() < 1e-3, "{first} {next}");
        // The target jumps by a second (a stall): the clock follows at once.
        let far = clock
            .advance(start + Duration::from_millis(2032), 0.016)
            .unwrap();
        assert!((far - next - 60.96).abs() < 1e-3);
    }

    #[test]
    fn aim_turns_the_short_way() {
        let at = |aim| {
            EntityState::quantise(
                tickwire_protocol::NetId(1),
                tickwire_arena::EntityKind::Drone,
                None,
                Vec2::ZERO,
                Vec2::ZERO,
                aim,
                100.0,
            )
        };
        let mid = blend(&at(3.0), &at(-3.0), 0.5).aim;
        assert!((mid.rem_euclid(TAU) - PI).abs() < 0.05, "{mid}");
    }
}
