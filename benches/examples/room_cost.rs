//! The criterion `room_step` bench's `step_and_snapshot_16p_500d` workload as a plain loop, for
//! counting instructions where wall-clock time is too noisy to compare (a shared machine):
//! `scripts/room-cost` runs it under callgrind for two tick counts and prints the difference
//! per tick, so warm-up and start-up cancel out.

use std::hint::black_box;
use tickwire_benches::{feed_inputs, warm_room};

const PLAYERS: u32 = 16;
const DRONES: u32 = 500;

fn main() {
    let ticks: u32 = std::env::args()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(200);
    let mut sim = warm_room(PLAYERS, DRONES, 120);
    let mut out = Vec::new();
    for _ in 0..ticks {
        feed_inputs(&mut sim, PLAYERS);
        sim.step();
        out.clear();
        sim.snapshot(&mut out);
        black_box(out.len());
    }
}
