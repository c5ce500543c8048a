//! One arena room step: 16 players (with inputs) and 500 drones, and the step together with
//! capturing that tick's snapshot (the game's capture and settling), and with capturing and
//! encoding it for all 16 players.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_benches::{feed_inputs, warm_room};

const PLAYERS: u32 = 16;
const DRONES: u32 = 500;

fn room_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("arena_room");
    let mut sim = warm_room(PLAYERS, DRONES, 120);
    group.bench_function("step_16p_500d", |b| {
        b.iter(|| {
            feed_inputs(&mut sim, PLAYERS);
            black_box(sim.step())
        })
    });
    let mut sim = warm_room(PLAYERS, DRONES, 120);
    group.bench_function("step_and_capture_16p_500d", |b| {
        b.iter(|| {
            feed_inputs(&mut sim, PLAYERS);
            sim.step();
            black_box(sim.capture().len())
        })
    });
    let mut sim = warm_room(PLAYERS, DRONES, 120);
    let mut out = Vec::new();
    group.bench_function("step_and_snapshot_16p_500d", |b| {
        b.iter(|| {
            feed_inputs(&mut sim, PLAYERS);
            sim.step();
            out.clear();
            sim.snapshot(&mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, room_step);
criterion_main!(benches);
