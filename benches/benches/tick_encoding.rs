//! One tick's snapshot encoding for 32 players, with the shared-baseline cache (one encode per
//! distinct acknowledged baseline) against encoding for each player.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_benches::{feed_inputs, warm_room};
use tickwire_protocol::{Tick, delta};
use tickwire_server::replication::{EncodeCache, History};

const PLAYERS: u32 = 32;
const DRONES: u32 = 500;

fn tick_encoding(c: &mut Criterion) {
    // A room's last few snapshots, and 32 players whose acks are 1 to 4 ticks old.
    let mut sim = warm_room(PLAYERS, DRONES, 120);
    let mut history = History::default();
    for _ in 0..8 {
        feed_inputs(&mut sim, PLAYERS);
        sim.step();
        history.push(sim.capture().clone());
    }
    let schema = sim.schema().clone();
    let latest = history.latest().unwrap().tick;
    let acks: Vec<Option<Tick>> = (0..PLAYERS)
        .map(|p| Some(Tick(latest.0 - 1 - p % 4)))
        .collect();

    let mut group = c.benchmark_group("tick_32_players");
    group.throughput(Throughput::Elements(PLAYERS as u64));
    group.bench_function("shared_baseline_cache", |b| {
        b.iter(|| {
            let mut cache = EncodeCache::default();
            let mut bytes = 0;
            for ack in &acks {
                bytes += cache.encode(&schema, &history, *ack).unwrap().len();
            }
            black_box(bytes)
        })
    });
    group.bench_function("encode_per_player", |b| {
        b.iter(|| {
            let next = history.latest().unwrap();
            let mut bytes = 0;
            for ack in &acks {
                let base = ack.and_then(|t| history.get(t));
                bytes += delta::encode(&schema, base, next).len();
            }
            black_box(bytes)
        })
    });
    group.finish();
}

criterion_group!(benches, tick_encoding);
criterion_main!(benches);
