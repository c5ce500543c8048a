//! Snapshot delta encode and decode, in entities per second: a full snapshot of 516 entities,
//! and a delta one tick after its baseline (every drone moved); and settling a captured snapshot
//! against the one before it.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_arena::view as arena;
use tickwire_benches::snapshot_pair;
use tickwire_protocol::delta;

fn codec(c: &mut Criterion) {
    let (base, next) = snapshot_pair(16, 500, 1);
    let schema = arena::schema();
    let entities = next.len() as u64;
    let full = delta::encode(&schema, None, &next);
    let diff = delta::encode(&schema, Some(&base), &next);
    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Elements(entities));
    group.bench_function("encode_full_516", |b| {
        b.iter(|| black_box(delta::encode(&schema, None, black_box(&next))))
    });
    group.bench_function("encode_delta_516", |b| {
        b.iter(|| black_box(delta::encode(&schema, Some(&base), black_box(&next))))
    });
    group.bench_function("settle_516", |b| {
        b.iter_batched_ref(
            || next.clone(),
            |n| delta::settle(&schema, &base, black_box(n)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_full_516", |b| {
        b.iter(|| black_box(delta::decode(&schema, black_box(&full), None).unwrap()))
    });
    group.bench_function("decode_delta_516", |b| {
        b.iter(|| black_box(delta::decode(&schema, black_box(&diff), Some(&base)).unwrap()))
    });
    group.finish();
    println!(
        "snapshot sizes: full {} bytes, delta {} bytes, {} entities",
        full.len(),
        diff.len(),
        entities
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
