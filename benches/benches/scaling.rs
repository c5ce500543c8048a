//! How the room's costs grow: one step against entity count (100 to 10,000) and player count
//! (2 to 64); the replication fan-out (capture + encode for every player) against players per
//! room; and one whole server tick for R rooms of the standard workload (16 players, 50 drones).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_benches::{feed_inputs, warm_room};

fn step_vs_entities(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_vs_entities");
    for drones in [100u32, 1_000, 10_000] {
        let mut sim = warm_room(16, drones, 60);
        group.throughput(Throughput::Elements(drones as u64 + 16));
        group.bench_with_input(BenchmarkId::from_parameter(drones + 16), &drones, |b, _| {
            b.iter(|| {
                feed_inputs(&mut sim, 16);
                black_box(sim.step())
            })
        });
    }
    group.finish();
}

fn step_vs_players(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_vs_players");
    for players in [2u32, 16, 64] {
        let mut sim = warm_room(players, 50, 60);
        group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, &p| {
            b.iter(|| {
                feed_inputs(&mut sim, p);
                black_box(sim.step())
            })
        });
    }
    group.finish();
}

fn fan_out_vs_players(c: &mut Criterion) {
    let mut group = c.benchmark_group("fan_out_vs_players");
    for players in [2u32, 16, 64] {
        let mut sim = warm_room(players, 50, 60);
        let mut out = Vec::new();
        group.throughput(Throughput::Elements(players as u64));
        group.bench_with_input(BenchmarkId::from_parameter(players), &players, |b, &p| {
            b.iter(|| {
                feed_inputs(&mut sim, p);
                sim.step();
                out.clear();
                sim.snapshot(&mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn server_tick_vs_rooms(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_tick_vs_rooms");
    for rooms in [1usize, 16, 64] {
        let mut sims: Vec<_> = (0..rooms).map(|_| warm_room(16, 50, 60)).collect();
        let mut out = Vec::new();
        group.throughput(Throughput::Elements(rooms as u64 * 16));
        group.bench_with_input(BenchmarkId::from_parameter(rooms), &rooms, |b, _| {
            b.iter(|| {
                for sim in &mut sims {
                    feed_inputs(sim, 16);
                    sim.step();
                    out.clear();
                    sim.snapshot(&mut out);
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    step_vs_entities,
    step_vs_players,
    fan_out_vs_players,
    server_tick_vs_rooms
);
criterion_main!(benches);
