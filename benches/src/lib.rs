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

/// Feeds every player one input for this step: circling, aiming around, firing in bursts;
/// each acks the tick before last (as if its acks arrive a little late).
pub fn feed_inputs(sim: &mut RoomSim, players: u32) {
    let tick = sim.tick().0;
    for p in 1..=players {
        let phase = (tick as f32 * 0.02) + p as f32;
        let aim = (phase * 1.7).sin() * std::f32::consts::PI;
        let input = ArenaInput {
            move_dir: Vec2::from_angle(phase),
            aim,
            fire: (tick / 30 + p).is_multiple_of(3),
        };
        let slots = input.to_slots().expect("within the arena's input");
        sim.receive(
            PlayerId(p),
            &InputBatch {
                ack_tick: tick.checked_sub(2).map(Tick),
                inputs: vec![Input {
                    seq: tick + 1,
                    slots,
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
