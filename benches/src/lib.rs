//! Workloads shared by tickwire's benchmarks and report binaries, built on the sans-IO room so a
//! measurement involves no sockets and no clock.

use glam::Vec2;
use tickwire_arena::{Arena, ArenaConfig, ArenaInput};
use tickwire_protocol::{Input, InputBatch, PlayerId, Record, Snapshot, Tick};
use tickwire_server::room::RoomSim;

/// An arena room at 60 Hz with `players` joined and `drones` wandering.
pub fn arena_room(players: u32, drones: u32) -> RoomSim {
    let arena = Arena::new(ArenaConfig {
        drones,
        // Long enough that no match ends inside a benchmark.
        score_limit: i32::MAX,
        match_secs: f32::MAX,
        seed: 42,
    });
    let mut sim = RoomSim::new(arena, 60, 1);
    for p in 1..=players {
        sim.join(PlayerId(p), &format!("p{p}"))
            .expect("the game seats every player");
    }
    sim
}

/// Ticks of inputs in [`feed_inputs`]'s tape, and players it holds (more wrap around).
const TAPE_TICKS: u32 = 1024;
const TAPE_PLAYERS: u32 = 64;

/// Player `p`'s input at `tick`: circling, aiming around, firing in bursts.
fn input_at(tick: u32, p: u32) -> ArenaInput {
    let phase = (tick as f32 * 0.02) + p as f32;
    ArenaInput {
        move_dir: Vec2::from_angle(phase),
        aim: (phase * 1.7).sin() * std::f32::consts::PI,
        fire: (tick / 30 + p).is_multiple_of(3),
    }
}

/// Every player's slots for the tape's ticks, quantised once: a room receives slots (the
/// client quantised them), so the measured step pays for what the server does, not for the
/// client's encoding.
fn tape() -> &'static [Vec<u32>] {
    static TAPE: std::sync::OnceLock<Vec<Vec<u32>>> = std::sync::OnceLock::new();
    TAPE.get_or_init(|| {
        (0..TAPE_TICKS)
            .flat_map(|t| (0..TAPE_PLAYERS).map(move |p| input_at(t, p)))
            .map(|i| i.to_slots().expect("within the arena's input"))
            .collect()
    })
}

/// Feeds every player one input for this step (from a tape of 1,024 ticks, then again);
/// each acks the tick before last (as if its acks arrive a little late).
pub fn feed_inputs(sim: &mut RoomSim, players: u32) {
    let tick = sim.tick().0;
    let tape = tape();
    for p in 1..=players {
        let at = (tick % TAPE_TICKS) * TAPE_PLAYERS + p % TAPE_PLAYERS;
        sim.receive(
            PlayerId(p),
            &InputBatch {
                ack_tick: tick.checked_sub(2).map(Tick),
                inputs: vec![Input {
                    seq: tick + 1,
                    slots: tape[at as usize].clone(),
                }],
            },
        );
    }
}

/// Runs a room for `ticks` steps with inputs, so projectiles and scores are in play.
pub fn warm_room(players: u32, drones: u32, ticks: u32) -> RoomSim {
    let mut sim = arena_room(players, drones);
    for _ in 0..ticks {
        feed_inputs(&mut sim, players);
        sim.step();
    }
    sim
}

/// Two snapshots `gap` ticks apart from a warmed room: a baseline and the snapshot after it.
pub fn snapshot_pair(players: u32, drones: u32, gap: u32) -> (Snapshot, Snapshot) {
    let mut sim = warm_room(players, drones, 120);
    let base = sim.capture().clone();
    for _ in 0..gap {
        feed_inputs(&mut sim, players);
        sim.step();
    }
    let next = sim.capture().clone();
    (base, next)
}
